// PEFT's adapter folder, read and written as PEFT 0.21 does (peft/utils/save_and_load.py, PeftModel.save_pretrained):
//
//   DIR/adapter_config.json        LoraConfig.to_dict(): peft_type "LORA", r, lora_alpha, lora_dropout,
//                                  target_modules, fan_in_fan_out (true for GPT-2's Conv1D), bias "none",
//                                  modules_to_save (["classifier", "score"] for SEQ_CLS), base_model_name_or_path,
//                                  task_type "CAUSAL_LM" | "SEQ_CLS", inference_mode true, use_rslora, ... (every
//                                  field of 0.21.2, sorted as PEFT writes them)
//   DIR/adapter_model.safetensors  base_model.model.<module path>.lora_A.weight (r, in) / .lora_B.weight (out, r),
//                                  base_model.model.score.weight (num_labels, C) for SEQ_CLS; PEFT strips the adapter
//                                  name ("default") on save, so none appears
//   DIR/tokenizer files            copied from the base (not part of PEFT's format; they make the folder usable)
//
// Loading takes the sites from the tensor names (every tensor must find its layer, with the shapes the layer
// implies) and r, α, rsLoRA, dropout from the config; features this code does not implement (DoRA, biases,
// rank/alpha patterns, ...) are errors naming the field.
#pragma once
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "lora/adapters.h"

namespace rlhf::lora {

struct AdapterSaveOptions {
  std::string base_model;  // adapter_config.json's base_model_name_or_path (the folder the base was loaded from)
  std::string source_dir;  // tokenizer files are copied from here ("" = none)
};

// Writes DIR atomically (a temporary sibling folder renamed over DIR).
void save_peft_adapter(TransformerLM& model, const LoraAdapters& adapters, const std::string& dir,
                       const AdapterSaveOptions& options);

// adapter_config.json as written by save_peft_adapter.
nlohmann::json peft_adapter_config(const LoraAdapters& adapters, const std::string& base_model, bool fan_in_fan_out);

// Whether DIR holds a PEFT adapter (adapter_config.json).
bool is_peft_adapter(const std::string& dir);
// DIR/adapter_config.json, parsed; errors name the file.
nlohmann::json read_adapter_config(const std::string& dir);

// How to load the base of the adapter in DIR: `base` with head "lm" for CAUSAL_LM, or "score" for SEQ_CLS (num_labels
// from the saved score head; a SEQ_CLS adapter without one needs a base that is already a classifier).
LoadOptions adapter_load_options(const std::string& dir, LoadOptions base);

// Reads DIR and installs its adapters on model (the base, loaded with the adapter's head: an LM for CAUSAL_LM, a
// classifier for SEQ_CLS); a saved score head is copied into the model. The tensors are copies, trainable.
std::shared_ptr<LoraAdapters> load_peft_adapter(TransformerLM& model, const std::string& dir);

}  // namespace rlhf::lora
