// AdamW with decoupled weight decay (Loshchilov & Hutter 2019), learning-rate schedules and gradient clipping.
// Shared by sft, reward, dpo and ppo.
//
// For each parameter p with gradient g, at step t = 1, 2, ... (bias-corrected Adam, decay applied to p directly):
//   m = β1·m + (1 − β1)·g
//   v = β2·v + (1 − β2)·g²
//   p = p − lr·wd·p                                   (decoupled: not part of the gradient, skipped when wd = 0)
//   p = p − lr · (m / (1 − β1^t)) / (sqrt(v / (1 − β2^t)) + ε)
// This is torch.optim.AdamW's update exactly (same order of operations), so results can be compared with it.
//
// Schedule, step s = 0, 1, ... (the step about to be taken), W warmup steps, N total steps:
//   s < W:  lr = base · (s + 1) / W
//   else:   p = (s − W) / max(1, N − W) clamped to [0, 1];
//           cosine: lr = min + (base − min) · ½(1 + cos(π p));  linear: lr = base − (base − min)·p;  constant: base
//   with min = base · min_lr_ratio.
#pragma once
#include <torch/types.h>

#include <functional>
#include <map>
#include <string>
#include <vector>

namespace rlhf::train {

struct AdamWConfig {
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;          // Adam's ε (Huang et al. list it among the details that matter; torch default)
  double weight_decay = 0.0;  // decoupled decay for the "decay" group
  // transformers' default: no decay on biases and norm weights (every tensor with < 2 dims) and embeddings.
  bool decay_norms_biases_embeddings = false;
};

// A parameter with a unique name (used as the key of its optimizer state in checkpoints).
struct NamedParam {
  std::string name;
  torch::Tensor param;
};

struct ParamGroup {
  std::vector<NamedParam> params;
  double weight_decay = 0.0;
  double lr_scale = 1.0;  // this group's lr = schedule lr · lr_scale
};

// Splits params into {decay, no_decay} groups. no_decay: dim < 2 (biases, norm weights) and names containing
// "embed", "wte" or "wpe" (token and position embeddings; a tied lm_head is the same tensor as the embedding),
// unless cfg.decay_norms_biases_embeddings. Duplicate tensors (tied weights) are kept once. Params that do not
// require grad are left out. Pass e.g. model->weights() converted with named_params().
std::vector<ParamGroup> default_param_groups(const std::vector<NamedParam>& params, const AdamWConfig& cfg);

class AdamW {
 public:
  AdamW(std::vector<ParamGroup> groups, AdamWConfig cfg);

  // One update with learning rate lr (times each group's lr_scale) from the params' .grad(); params without a
  // grad are skipped. Increments step().
  void step(double lr);
  // Sets every grad to undefined (frees memory, as set_to_none=True).
  void zero_grad();

  int64_t steps() const { return step_; }
  const std::vector<ParamGroup>& groups() const { return groups_; }
  std::vector<torch::Tensor> params() const;  // all params, group order
  const AdamWConfig& config() const { return cfg_; }

  // State as named tensors: "exp_avg.<name>", "exp_avg_sq.<name>", "step" (int64 scalar). CPU tensors.
  std::map<std::string, torch::Tensor> state_dict() const;
  // Restores a state_dict() (moved to each param's device). Missing or mismatched tensors are errors naming
  // `source` (e.g. the checkpoint file).
  void load_state_dict(const std::map<std::string, torch::Tensor>& state, const std::string& source);
  // Frees the moments of every param whose name `keep` rejects (ZeRO-1: another rank's tensors).
  void drop_state_unless(const std::function<bool(const std::string& name)>& keep);

 private:
  struct State {
    torch::Tensor exp_avg, exp_avg_sq;
  };
  std::vector<ParamGroup> groups_;
  AdamWConfig cfg_;
  std::map<std::string, State> state_;  // by param name, created lazily on the first step with a grad
  int64_t step_ = 0;
};

struct ScheduleConfig {
  std::string kind = "cosine";  // cosine | linear | constant
  int64_t warmup_steps = 0;     // linear warmup from lr/W to lr
  int64_t total_steps = 1;      // N: the decay reaches min at step N
  double min_lr_ratio = 0.0;    // floor of the decay as a fraction of base
  void validate() const;        // throws with the allowed values
};

// Learning rate for step s (0-based), see the formula at the top.
double schedule_lr(const ScheduleConfig& s, double base_lr, int64_t step);

// Scales all grads so that their global L2 norm is at most max_norm (max_norm <= 0: no clipping). Returns the
// norm before clipping (as torch.nn.utils.clip_grad_norm_). Params without grads are ignored.
double clip_grad_norm(const std::vector<torch::Tensor>& params, double max_norm);

}  // namespace rlhf::train
