// config.json of a Hugging Face causal LM / sequence classifier, resolved into one flat struct.
// Families: gpt2 (GPT2LMHeadModel, GPT2ForSequenceClassification), llama, qwen2, qwen3
// (*ForCausalLM, *ForSequenceClassification). Unknown architectures or options are errors listing what works.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace rlhf {

struct RopeScaling {
  std::string type = "default";  // default | linear | dynamic | llama3
  double factor = 1.0;
  double low_freq_factor = 1.0, high_freq_factor = 4.0;  // llama3
  int64_t original_max_position = 0;                      // llama3 / dynamic
};

struct ModelConfig {
  std::string architecture;  // e.g. "LlamaForCausalLM"
  std::string family;        // gpt2 | llama | qwen2 | qwen3
  bool is_classifier = false;  // *ForSequenceClassification: a `score` head (H -> num_labels) instead of lm_head
  int64_t num_labels = 1;

  int64_t vocab_size = 0;
  int64_t hidden_size = 0;         // C
  int64_t num_layers = 0;
  int64_t num_heads = 0;           // H
  int64_t num_kv_heads = 0;        // grouped-query attention: H / num_kv_heads queries share a k/v head
  int64_t head_dim = 0;            // D (qwen3 sets it explicitly; else C / H)
  int64_t intermediate_size = 0;   // MLP width (gpt2: n_inner or 4C)
  int64_t max_position = 0;        // gpt2: n_positions (learned table size)
  double norm_eps = 1e-5;          // layer_norm_epsilon | rms_norm_eps
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  bool tie_word_embeddings = false;
  bool attention_bias = false;     // q/k/v (and o for llama's attention_bias) biases; qwen2: q/k/v only
  bool mlp_bias = false;
  bool qk_norm = false;            // qwen3: RMSNorm on q and k per head
  std::string activation;          // gelu_new | silu | gelu | relu ...
  std::string dtype = "float32";   // torch_dtype / dtype of the stored weights
  std::optional<int64_t> pad_token_id, bos_token_id;
  std::vector<int64_t> eos_token_ids;

  nlohmann::json raw;  // the original config.json, rewritten on save

  // The config.json to save: raw with architectures/num_labels/dtype updated.
  nlohmann::json to_json() const;
};

ModelConfig parse_model_config(const nlohmann::json& j, const std::string& path);
ModelConfig load_model_config(const std::string& dir);  // dir/config.json

// "LlamaForCausalLM" -> "LlamaForSequenceClassification" and back.
std::string classifier_architecture(const std::string& family);
std::string causal_lm_architecture(const std::string& family);

}  // namespace rlhf
