// LoRA attached to a model: the adapters on its targeted linear layers, the heads trained in full beside them
// (PEFT's modules_to_save), the switch that turns them off, and merging them into the base weights.
//
//   attached:      y = W·x + b + s·B·A·x on every targeted site, base weights frozen (requires_grad = false)
//   adapters off:  y = W·x + b exactly (the delta is skipped, not added as zero): the base model bit for bit, so the
//                  same weights serve as DPO's and PPO's reference without a second copy
//   merged:        W ← W + s·B·A (Conv1D: + s·(B·A)ᵀ); the adapters are removed, the model is a plain model again
//
// A reward or value model keeps its `score` head trainable and saves it with the adapter (modules_to_save
// ["classifier", "score"], as PEFT's SEQ_CLS task sets it); turning the adapters off does not touch that head,
// unless the model keeps a copy of it for the adapters (TransformerLM::make_adapter_score_head, PEFT's
// ModulesToSaveWrapper: the PPO critic as an adapter on the reward model): then the copy trains and is saved, and
// adapters off give the original head, the reward model exactly as loaded.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "lora/lora_linear.h"
#include "lora/options.h"
#include "model/model.h"

namespace rlhf::lora {

struct LoraAdapters {
  struct Entry {
    int64_t site = 0;            // index into model.linear_sites()
    std::string module;          // HF module path, e.g. "model.layers.0.self_attn.q_proj"
    bool fan_in_fan_out = false; // the base weight is Conv1D (in, out)
    std::shared_ptr<LoraLinear> lora;
  };
  LoraOptions options;                        // r, α, dropout, rsLoRA (targets as given)
  std::vector<std::string> target_modules;    // adapter_config.json's target_modules
  std::vector<Entry> entries;                 // in site order
  std::vector<std::string> modules_to_save;   // heads trained in full: {"classifier", "score"} for SEQ_CLS, else {}
  std::string task_type;                      // "CAUSAL_LM" | "SEQ_CLS"
};

// Freezes every parameter of model (except the score head of a classifier) and puts fresh adapters (B = 0) on
// every site the options target. Errors when no site matches, listing the model's module names.
std::shared_ptr<LoraAdapters> attach_lora(TransformerLM& model, const LoraOptions& options, uint64_t seed);

// Installs given adapters (e.g. read from a file) on model: freezes it, puts each entry on its site.
void install_adapters(TransformerLM& model, const LoraAdapters& adapters);

// The trainable tensors under their PEFT names, in a fixed order: base_model.model.<module>.lora_A.weight,
// .lora_B.weight per entry, then base_model.model.score.weight for a classifier. These are also the names in
// adapter_model.safetensors and the keys of the optimizer state.
std::vector<NamedWeight> adapter_weights(TransformerLM& model, const LoraAdapters& adapters);

// Writes every adapter into its base weight (W ← W + ΔW) and removes the adapters from the model; the result is a
// plain model that save_model writes as a Hugging Face folder.
void merge_adapters(TransformerLM& model, const LoraAdapters& adapters);

// Turns the adapters off for its lifetime (PEFT's `with model.disable_adapter():`), restoring the previous state.
class AdaptersOff {
 public:
  explicit AdaptersOff(TransformerLM& model) : model_(model), was_(model.linear_deltas_enabled()) {
    model_.set_linear_deltas_enabled(false);
  }
  ~AdaptersOff() { model_.set_linear_deltas_enabled(was_); }
  AdaptersOff(const AdaptersOff&) = delete;
  AdaptersOff& operator=(const AdaptersOff&) = delete;

 private:
  TransformerLM& model_;
  bool was_;
};

// PEFT's prefix of every tensor name in adapter_model.safetensors.
inline const char* kPeftPrefix = "base_model.model.";

}  // namespace rlhf::lora
