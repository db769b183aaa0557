// LoRA's options: one flat struct with commented defaults, validated, printed and saved with every run.
//
// Hu et al. 2021, as PEFT implements it (peft/tuners/lora): each targeted linear layer y = W·x + b becomes
//   y = W·x + b + s·B·(A·dropout(x)),   A (r, in) Kaiming-uniform (a = √5), B (out, r) zero, s = α/r (rsLoRA: α/√r)
// so a fresh adapter leaves the model exactly as it was. Targets use PEFT's module names: a name matches a module
// path when it equals it or is its last dotted components ("q_proj" matches "model.layers.0.self_attn.q_proj").
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace rlhf::lora {

struct LoraOptions {
  int64_t r = 0;             // rank; 0: no LoRA (the whole model trains)
  double alpha = 16;         // α of the scaling α/r (RLHF.md: α = 2r is typical; PEFT's default is 8)
  double dropout = 0.0;      // dropout on x before A, in training only (PEFT's default 0)
  // Comma-separated module names (q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj; GPT-2: c_attn,c_proj,
  // c_fc), "all-linear" (every linear of the body, not the heads), or "" for PEFT's default of the family
  // (gpt2: c_attn; llama, qwen2, qwen3: q_proj,v_proj).
  std::string targets;
  bool use_rslora = false;   // scaling α/√r (Kalajdzievski 2023) instead of α/r

  bool enabled() const { return r > 0; }
  void validate() const;  // throws naming the flag and what is allowed
  nlohmann::json to_json() const;
  // The target names for a model family: the parsed list, {"all-linear"}, or the family's default.
  std::vector<std::string> target_names(const std::string& family) const;
  double scaling() const;  // α/r or α/√r
};

// Whether module path `module` is targeted by `names` (PEFT's rule for a list; "all-linear" matches every site).
bool target_matches(const std::vector<std::string>& names, const std::string& module);

}  // namespace rlhf::lora
