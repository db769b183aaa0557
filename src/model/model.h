// The transformer language model: one base class, one file per architecture (gpt2.cpp, llama.cpp for
// Llama/Qwen2/Qwen3), each with its table of Hugging Face weight names.
//
//   hidden = body(input_ids, attention_mask, position_ids, cache)   (B, T, C), after the final norm
//   logits = hidden · W_lm^T                                         (B, T, V)   causal LM (W_lm tied to wte or not)
//   scores = hidden · W_score^T                                      (B, T, L)   *ForSequenceClassification / value head
#pragma once
#include <torch/torch.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "model/config.h"
#include "model/grad_checkpoint.h"
#include "model/layers.h"

namespace rlhf {

// One entry of an architecture's weight-name table: the HF name and the parameter it loads into.
struct NamedWeight {
  std::string name;
  torch::Tensor tensor;
};

// One linear layer of the body, by its Hugging Face module path (the weight's name without ".weight").
//   nn.Linear: y = x·Wᵀ + b, weight (out, in);  GPT-2's Conv1D (fan_in_fan_out): y = x·W + b, weight (in, out).
struct LinearSite {
  std::string module;           // e.g. "model.layers.0.self_attn.q_proj", "transformer.h.0.attn.c_attn"
  torch::Tensor weight;         // the parameter itself (merging writes into it)
  bool fan_in_fan_out = false;  // weight stored (in, out)
  int64_t in_features = 0, out_features = 0;
};

// A trainable addition to one linear layer, y = W·x + b + delta(x): the hook LoRA (src/lora) plugs into. The model
// knows nothing else about it. x (..., in) -> (..., out); training: the model's train flag (for dropout).
class LinearDelta {
 public:
  virtual ~LinearDelta() = default;
  virtual torch::Tensor forward(const torch::Tensor& x, bool training) = 0;
  // Its trainable tensors (gradient checkpointing passes them to the recomputed block).
  virtual std::vector<torch::Tensor> parameters() const = 0;
};

class TransformerLM : public torch::nn::Module {
 public:
  explicit TransformerLM(ModelConfig config) : config_(std::move(config)) {}
  const ModelConfig& config() const { return config_; }
  ModelConfig& mutable_config() { return config_; }
  int64_t parameter_count();  // elements of all parameters (heads included)

  // input_ids, position_ids: (B, T) int64. attention_mask: (B, S), S = cache length + T, 1 = real token.
  // Returns the final-normed hidden states (B, T, C). With a cache, appends this step's keys/values and
  // advances cache->length by T.
  virtual torch::Tensor body(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                             const torch::Tensor& position_ids, KVCache* cache) = 0;
  // HF names of the body's weights (without the head), in a fixed order.
  virtual std::vector<NamedWeight> body_weights() = 0;
  // The token embedding matrix (V, C), tied to the LM head when config().tie_word_embeddings.
  virtual torch::Tensor token_embedding() = 0;
  // The body's linear layers in a fixed order (layer by layer, each layer's in forward order); a site's index in
  // this list is its id for set_linear_delta. Heads (lm_head, score) are not sites.
  virtual std::vector<LinearSite> linear_sites() = 0;

  // Deltas on linear layers (LoRA). With none installed, or all switched off, every linear computes exactly what
  // the plain model computes (the delta is skipped, not added as zero): adapters-off logits are bit-identical.
  void set_linear_delta(int64_t site, std::shared_ptr<LinearDelta> delta);
  void clear_linear_deltas() { deltas_.clear(); }
  bool has_linear_deltas() const;
  void set_linear_deltas_enabled(bool on) { deltas_enabled_ = on; }
  bool linear_deltas_enabled() const { return deltas_enabled_; }

  // PEFT's modules_to_save for the score head of a model whose body serves twice (the reward model and, through
  // its adapters, the PPO critic): a trainable copy of the head that score() uses while the deltas are on, the
  // original while they are off. adapter_score_head() is that copy, or the head itself when none was made.
  void make_adapter_score_head();
  torch::Tensor adapter_score_head() { return score_copy_.defined() ? score_copy_ : score_; }
  bool has_adapter_score_head() const { return score_copy_.defined(); }

  // Frozen weights at rest in `dtype` (bf16: half of fp32's memory), computed in the dtype they had: each use casts
  // them up, which is exact, so the model computes what the fp32 model with bf16-rounded weights computes, bit for
  // bit. Converts every floating parameter that does not require grad; the trainable ones (LoRA, a trained head)
  // stay as they are. Call it once the model's requires_grad flags are final. --frozen-dtype bf16.
  void store_frozen_weights(torch::ScalarType dtype);
  bool has_stored_weights() const { return compute_dtype_.has_value(); }
  std::optional<torch::ScalarType> stored_weights_compute_dtype() const { return compute_dtype_; }

  // Gradient checkpointing (model/grad_checkpoint.h, --gradient-checkpointing): with grad mode on and no KV cache,
  // each block keeps only its input and recomputes its activations in backward. Same gradients, less memory.
  void set_gradient_checkpointing(bool on) { gradient_checkpointing_ = on; }
  bool gradient_checkpointing() const { return gradient_checkpointing_; }

  // Heads. has_lm_head(): causal LM; has_score_head(): classifier / value model.
  bool has_lm_head() const { return !config_.is_classifier; }
  bool has_score_head() const { return config_.is_classifier; }
  torch::Tensor lm_logits(const torch::Tensor& hidden);  // (B, T, V)
  torch::Tensor score(const torch::Tensor& hidden);      // (B, T, num_labels)

  // Full table: body + heads ("lm_head.weight" when untied, "score.weight" for classifiers).
  std::vector<NamedWeight> weights();

  // Sets up the heads after the body registered its parameters. score_init: "normal" (std 0.02, as
  // transformers initialises a new head) or "zeros" (PPO value head).
  void init_heads(const std::string& score_init = "normal");

  // Convenience: logits of a full forward, position_ids = cumsum(mask) - 1 clamped at 0 when undefined.
  torch::Tensor forward_logits(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                               torch::Tensor position_ids = {});
  // Sequence scores (B, num_labels) at the last real token (the rightmost mask = 1 position).
  torch::Tensor forward_scores(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                               torch::Tensor position_ids = {});

  // Stored dtype of each loaded tensor, so that saving writes the same dtypes back.
  std::map<std::string, torch::ScalarType> saved_dtypes;

  KVCache make_cache(int64_t capacity) const {
    KVCache c;
    c.capacity = capacity;
    return c;
  }

 protected:
  // y + delta_site(x) when site has an enabled delta, else y itself. x: the linear's input, y: its output.
  torch::Tensor add_delta(int64_t site, const torch::Tensor& x, torch::Tensor y) {
    if (deltas_enabled_ && site < static_cast<int64_t>(deltas_.size()) && deltas_[site])
      return y + deltas_[site]->forward(x, is_training());
    return y;
  }

  // One block x -> block(x): checkpointed (grad_checkpoint.h) when gradient checkpointing is on, grad mode is on and
  // there is no cache; else simply called. layer_tensors: the block's own weights; the deltas on sites
  // [site_begin, site_end) are added to them. block must capture by value (it may run again in backward).
  torch::Tensor run_block(const torch::Tensor& x, const KVCache* cache, std::vector<torch::Tensor> layer_tensors,
                          int64_t site_begin, int64_t site_end, BlockFn block);

  // t in the compute dtype (store_frozen_weights): a stored weight cast up, or an embedding row gathered from one.
  torch::Tensor computed(const torch::Tensor& t) const {
    return compute_dtype_ && t.defined() && t.scalar_type() != *compute_dtype_ ? t.to(*compute_dtype_) : t;
  }

  ModelConfig config_;
  std::optional<torch::ScalarType> compute_dtype_;  // set by store_frozen_weights
  torch::Tensor lm_head_;  // (V, C), untied only
  torch::Tensor score_;    // (L, C)
  torch::Tensor score_copy_;  // (L, C): make_adapter_score_head's trainable copy; undefined without one
  std::vector<std::shared_ptr<LinearDelta>> deltas_;  // by site id; null = none
  bool deltas_enabled_ = true;
  bool gradient_checkpointing_ = false;
};

// For a stretch of many small forwards (generation: one per new token), the stored weights of a model
// (store_frozen_weights) held in the compute dtype, so that each decode step does not cast them all again; back to
// their stored dtype at the end of the scope. Costs the compute-dtype copy's memory meanwhile (the rollout, when the
// training state that sets the peak is not yet in use). A no-op for a model without stored weights.
class ComputeDtypeWeights {
 public:
  explicit ComputeDtypeWeights(TransformerLM& model);
  ~ComputeDtypeWeights();
  ComputeDtypeWeights(const ComputeDtypeWeights&) = delete;
  ComputeDtypeWeights& operator=(const ComputeDtypeWeights&) = delete;

 private:
  std::vector<std::pair<torch::Tensor, torch::Tensor>> stored_;  // (parameter, its stored data)
};

// position_ids = cumsum(attention_mask) - 1, clamped at 0 (left padding gets position 0 on pads).
torch::Tensor default_position_ids(const torch::Tensor& attention_mask);
// Index of the last real token per row: (B,) int64.
torch::Tensor last_token_index(const torch::Tensor& attention_mask);

// A fresh, randomly initialised model for config (transformers' init: normal(0, 0.02), norms 1, biases 0).
std::shared_ptr<TransformerLM> create_model(const ModelConfig& config, uint64_t seed = 0);

struct LoadOptions {
  // "auto": as config.json says. "lm": load as a causal LM. "score": as a sequence classifier with
  // num_labels (an LM checkpoint gets a new score head; its lm_head is dropped).
  std::string head = "auto";
  int64_t num_labels = 1;
  std::string score_init = "normal";  // a new score head: "normal" (reward model) or "zeros" (value model)
  torch::Device device = torch::kCPU;
  torch::ScalarType dtype = torch::kFloat32;  // compute dtype of the parameters
};

// Loads a Hugging Face folder. Every tensor of the table must be present with the expected shape; a tensor
// of the checkpoint that the table does not use is an error (except an lm_head dropped by head = "score").
std::shared_ptr<TransformerLM> load_model(const std::string& dir, const LoadOptions& options = {});

struct SaveOptions {
  std::string source_dir;        // tokenizer files and generation_config.json are copied from here
  uint64_t max_shard_bytes = 0;  // shard above this size (0: one file)
  std::string dtype;             // "" = the config's dtype (so load -> save keeps dtypes)
};

// The --save-dtype flag of the training commands: "" (keep the dtypes the model was loaded with), fp32 | float32,
// bf16 | bfloat16. Returns SaveOptions::dtype ("", "float32" or "bfloat16"); anything else is an error.
std::string save_dtype_from_flag(const std::string& flag);
// The --max-shard-size flag, as save_pretrained's max_shard_size reads it: "5GB" = 5·10⁹ bytes (KB, MB, GB: powers
// of 10), "2GiB" = 2·2³⁰ (KiB, MiB, GiB: powers of 2), a plain number = bytes; "" or "0": one file.
uint64_t parse_shard_size(const std::string& text);

// Copies the tokenizer files and generation_config.json of source_dir ("" = none) into tmp_dir, the folder being
// written that will replace target_dir (a file of source_dir that is target_dir's own is copied from there).
void copy_tokenizer_files(const std::string& source_dir, const std::string& target_dir, const std::string& tmp_dir);

// Writes config.json, safetensors and tokenizer files into a temporary sibling folder, then renames it to dir
// (an existing dir is replaced only once the new one is complete).
void save_model(TransformerLM& model, const std::string& dir, const SaveOptions& options = {});

}  // namespace rlhf
