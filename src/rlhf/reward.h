// Reward model: the LM body with a linear score head (H -> 1, no bias) read at the last real token.
//
// A group is one prompt with K responses and its preference pairs P (pairwise data: K = 2, |P| = 1; rankings:
// all C(K,2) pairs of distinct ranks, ties give no pair). Each response is scored once, r_i = r_θ(x, y_i):
//
//   L_group = −(1/|P|) Σ_{(w,l) ∈ P} log σ(r_w − r_l − m_wl)          (Bradley-Terry; m: optional margin)
//   L       = mean over the groups of the batch  [+ c · mean over pairs of (r_w + r_l)², TRL's centring term]
//
// InstructGPT's K-wise loss is this with 1/C(K,2) per ranking; the pairs of one ranking share a batch element, so
// they do not overfit as separate examples would.
//
// Normalisation (after training, InstructGPT / Huang et al.): with μ, σ the mean and std of the scores on a
// reference set, make the model output (r − μ)/σ (std: optional) by changing weights only, so that any loader
// (rlhf, transformers) gets normalised scores:
//   gain:   score.weight ← score.weight / σ                             (r ← r/σ)
//   offset: the head has no bias, but GPT-2's final LayerNorm has one (h = n ⊙ γ + β, r = w·h). Setting
//           β ← β − (μ'/|w|²)·w shifts every score by exactly −μ' (μ' = μ/σ after the gain) and nothing else the
//           classifier computes. RMSNorm families (Llama, Qwen) have no bias anywhere after the last layer: there
//           the offset cannot be expressed in weights, and normalisation with an offset is an error (use gain only).
#pragma once
#include <torch/types.h>

#include <vector>

#include "model/model.h"
#include "rlhf/examples.h"
#include "train/loop.h"

namespace rlhf::reward {

struct RewardConfig {
  int64_t batch_size = 8;        // groups per batch (a group holds K responses)
  double center_coef = 0.0;      // c of the centring term (TRL: 0.01 when used)
  int64_t pad_id = 0;
  torch::Device device = torch::kCPU;
};

// Scores (N,) of N sequences (prompt ++ response), one forward of a right-padded batch.
torch::Tensor score_sequences(TransformerLM& model, const std::vector<const train::TokenSeq*>& seqs, int64_t pad_id,
                              torch::Device device);

struct LossParts {
  torch::Tensor loss;         // scalar
  double accuracy = 0;        // fraction of pairs with r_w > r_l
  double margin = 0;          // mean r_w − r_l
  int64_t pairs = 0;
};
// scores: (N,) for the groups' responses laid out group after group.
LossParts preference_loss(const torch::Tensor& scores, const std::vector<const PreferenceGroup*>& groups,
                          double center_coef = 0.0);
// Slow reference: a loop over groups and pairs. Pinned to preference_loss by a test.
torch::Tensor preference_loss_reference(const torch::Tensor& scores, const std::vector<const PreferenceGroup*>& groups);

struct EvalResult {
  double accuracy = 0, margin = 0, loss = 0, reward_mean = 0, reward_min = 0, reward_max = 0;
  int64_t pairs = 0;
  train::Metrics metrics() const;
};
EvalResult evaluate(TransformerLM& model, const std::vector<PreferenceGroup>& data, const RewardConfig& cfg);

train::LoopResult train_reward(TransformerLM& model, const std::vector<PreferenceGroup>& train_data,
                               const std::vector<PreferenceGroup>& eval_data, const RewardConfig& cfg,
                               const train::LoopOptions& loop);

struct NormalizeResult {
  double mean_before = 0, std_before = 0, mean_after = 0, std_after = 0;
};
// Normalises the model in place so that its scores on ref have mean 0 (and std 1 when with_std). See the top.
NormalizeResult normalize_scores(TransformerLM& model, const std::vector<train::TokenSeq>& ref, bool with_std,
                                 int64_t batch_size, int64_t pad_id, torch::Device device);

}  // namespace rlhf::reward
