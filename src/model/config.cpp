#include "model/config.h"

#include <cmath>
#include <filesystem>
#include <limits>
#include <type_traits>
#include <fstream>

#include "common/error.h"

using nlohmann::json;

namespace rlhf {

namespace {

const char* kSupported =
    "GPT2LMHeadModel, GPT2ForSequenceClassification, LlamaForCausalLM, LlamaForSequenceClassification, "
    "Qwen2ForCausalLM, Qwen2ForSequenceClassification, Qwen3ForCausalLM, Qwen3ForSequenceClassification";

struct ArchEntry {
  const char* arch;
  const char* family;
  bool classifier;
};
const ArchEntry kArchs[] = {
    {"GPT2LMHeadModel", "gpt2", false},   {"GPT2ForSequenceClassification", "gpt2", true},
    {"LlamaForCausalLM", "llama", false}, {"LlamaForSequenceClassification", "llama", true},
    {"Qwen2ForCausalLM", "qwen2", false}, {"Qwen2ForSequenceClassification", "qwen2", true},
    {"Qwen3ForCausalLM", "qwen3", false}, {"Qwen3ForSequenceClassification", "qwen3", true},
};

// A value of the wrong kind: parse_model_config adds the path.
struct BadValue : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// An integer field. nlohmann's get<int64_t>() of a float casts it, which is undefined behaviour out of range
// (UBSan under fuzz_config: 1.6e25); integral floats in range (2048.0) are taken, anything else is an error.
int64_t as_int(const json& v, const char* key) {
  if (v.is_number_integer()) {
    if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      throw BadValue(cat("\"", key, "\" is too large: ", v.dump()));
    return v.get<int64_t>();
  }
  if (v.is_number_float()) {
    const double d = v.get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.0e18) return static_cast<int64_t>(d);
  }
  throw BadValue(cat("\"", key, "\" must be an integer, got ", v.dump()));
}

template <typename T>
T get_or(const json& j, const char* key, T fallback) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  if constexpr (std::is_same_v<T, int64_t>) return as_int(j[key], key);
  else return j[key].get<T>();
}

int64_t get_int(const json& j, const char* key) { return as_int(j.at(key), key); }

std::optional<int64_t> get_opt_id(const json& j, const char* key) {
  if (!j.contains(key) || j[key].is_null()) return std::nullopt;
  if (j[key].is_array()) {
    if (j[key].empty()) return std::nullopt;
    return as_int(j[key][0], key);
  }
  return as_int(j[key], key);
}

// Sizes the models are built from: a zero or negative one would divide by zero here (found by fuzz_config) or
// make an empty or absurd tensor later.
int64_t positive(const json& j, const char* key, int64_t value, const std::string& path) {
  RLHF_CHECK(value > 0, path, ": \"", key, "\" must be a positive integer, got ", j.contains(key) ? j[key].dump() : "none");
  // 2^40: far above any real model's sizes, and products of a few of them (4 · n_embd) cannot overflow.
  RLHF_CHECK(value <= (int64_t(1) << 40), path, ": \"", key, "\" is implausibly large: ", value);
  return value;
}

}  // namespace

std::string classifier_architecture(const std::string& family) {
  for (const auto& a : kArchs)
    if (family == a.family && a.classifier) return a.arch;
  fail("unknown model family \"", family, "\"");
}

std::string causal_lm_architecture(const std::string& family) {
  for (const auto& a : kArchs)
    if (family == a.family && !a.classifier) return a.arch;
  fail("unknown model family \"", family, "\"");
}

ModelConfig parse_model_config(const json& j, const std::string& path) {
  ModelConfig c;
  c.raw = j;
  try {
    RLHF_CHECK(j.contains("architectures") && j["architectures"].is_array() && !j["architectures"].empty(), path,
               ": no \"architectures\" list (supported: ", kSupported, ")");
    c.architecture = j["architectures"][0].get<std::string>();
    bool found = false;
    for (const auto& a : kArchs)
      if (c.architecture == a.arch) {
        c.family = a.family;
        c.is_classifier = a.classifier;
        found = true;
      }
    RLHF_CHECK(found, path, ": unsupported architecture \"", c.architecture, "\" (supported: ", kSupported, ")");

    if (c.is_classifier) {
      c.num_labels = get_or<int64_t>(j, "num_labels", 0);
      if (c.num_labels == 0 && j.contains("id2label")) c.num_labels = static_cast<int64_t>(j["id2label"].size());
      if (c.num_labels == 0) c.num_labels = 2;  // transformers' PretrainedConfig default
      RLHF_CHECK(c.num_labels >= 1 && c.num_labels <= 65536, path, ": num_labels must be between 1 and 65536, got ",
                 c.num_labels);
    }
    c.vocab_size = positive(j, "vocab_size", get_int(j, "vocab_size"), path);
    if (j.contains("dtype") && j["dtype"].is_string()) c.dtype = j["dtype"].get<std::string>();
    else if (j.contains("torch_dtype") && j["torch_dtype"].is_string()) c.dtype = j["torch_dtype"].get<std::string>();
    c.pad_token_id = get_opt_id(j, "pad_token_id");
    c.bos_token_id = get_opt_id(j, "bos_token_id");
    if (j.contains("eos_token_id") && !j["eos_token_id"].is_null()) {
      if (j["eos_token_id"].is_array())
        for (const json& id : j["eos_token_id"]) c.eos_token_ids.push_back(as_int(id, "eos_token_id"));
      else c.eos_token_ids = {as_int(j["eos_token_id"], "eos_token_id")};
    }

    if (c.family == "gpt2") {
      c.hidden_size = positive(j, "n_embd", get_int(j, "n_embd"), path);
      c.num_layers = positive(j, "n_layer", get_int(j, "n_layer"), path);
      c.num_heads = positive(j, "n_head", get_int(j, "n_head"), path);
      RLHF_CHECK(c.hidden_size % c.num_heads == 0, path, ": n_embd (", c.hidden_size, ") must be a multiple of n_head (",
                 c.num_heads, ")");
      c.num_kv_heads = c.num_heads;
      c.head_dim = c.hidden_size / c.num_heads;
      c.intermediate_size = positive(j, "n_inner", get_or<int64_t>(j, "n_inner", 4 * c.hidden_size), path);
      c.max_position = positive(j, "n_positions", get_int(j, "n_positions"), path);
      c.norm_eps = get_or<double>(j, "layer_norm_epsilon", 1e-5);
      c.activation = get_or<std::string>(j, "activation_function", "gelu_new");
      c.tie_word_embeddings = get_or<bool>(j, "tie_word_embeddings", true);
      c.attention_bias = true;
      c.mlp_bias = true;
      RLHF_CHECK(!get_or<bool>(j, "scale_attn_by_inverse_layer_idx", false), path,
                 ": scale_attn_by_inverse_layer_idx=true is not supported");
      RLHF_CHECK(!get_or<bool>(j, "reorder_and_upcast_attn", false), path,
                 ": reorder_and_upcast_attn=true is not supported");
      RLHF_CHECK(get_or<bool>(j, "scale_attn_weights", true), path, ": scale_attn_weights=false is not supported");
      RLHF_CHECK(!get_or<bool>(j, "add_cross_attention", false), path, ": add_cross_attention is not supported");
    } else {
      c.hidden_size = positive(j, "hidden_size", get_int(j, "hidden_size"), path);
      c.num_layers = positive(j, "num_hidden_layers", get_int(j, "num_hidden_layers"), path);
      c.num_heads = positive(j, "num_attention_heads", get_int(j, "num_attention_heads"), path);
      c.num_kv_heads =
          positive(j, "num_key_value_heads", get_or<int64_t>(j, "num_key_value_heads", c.num_heads), path);
      c.head_dim = positive(j, "head_dim", get_or<int64_t>(j, "head_dim", c.hidden_size / c.num_heads), path);
      c.intermediate_size = positive(j, "intermediate_size", get_int(j, "intermediate_size"), path);
      c.max_position =
          positive(j, "max_position_embeddings", get_or<int64_t>(j, "max_position_embeddings", 2048), path);
      c.norm_eps = get_or<double>(j, "rms_norm_eps", 1e-6);
      c.activation = get_or<std::string>(j, "hidden_act", "silu");
      c.tie_word_embeddings = get_or<bool>(j, "tie_word_embeddings", false);
      c.mlp_bias = get_or<bool>(j, "mlp_bias", false);
      if (c.family == "qwen2") c.attention_bias = true;  // Qwen2 always has q/k/v biases, o_proj none
      else c.attention_bias = get_or<bool>(j, "attention_bias", false);
      c.qk_norm = c.family == "qwen3";
      RLHF_CHECK(c.num_heads % c.num_kv_heads == 0, path, ": num_attention_heads (", c.num_heads,
                 ") must be a multiple of num_key_value_heads (", c.num_kv_heads, ")");
      RLHF_CHECK(get_or<int64_t>(j, "pretraining_tp", 1) == 1, path, ": pretraining_tp > 1 is not supported");
      if (get_or<bool>(j, "use_sliding_window", false))
        fail(path, ": use_sliding_window=true is not supported (sliding-window attention)");

      // RoPE: transformers <= 4.x writes rope_theta + rope_scaling; 5.x writes rope_parameters.
      json rope = json::object();
      if (j.contains("rope_parameters") && j["rope_parameters"].is_object()) rope = j["rope_parameters"];
      else if (j.contains("rope_scaling") && j["rope_scaling"].is_object()) rope = j["rope_scaling"];
      c.rope_theta = get_or<double>(rope, "rope_theta", get_or<double>(j, "rope_theta", 10000.0));
      std::string type = get_or<std::string>(rope, "rope_type", get_or<std::string>(rope, "type", "default"));
      c.rope_scaling.type = type;
      c.rope_scaling.factor = get_or<double>(rope, "factor", 1.0);
      if (type == "llama3") {
        c.rope_scaling.low_freq_factor = get_or<double>(rope, "low_freq_factor", 1.0);
        c.rope_scaling.high_freq_factor = get_or<double>(rope, "high_freq_factor", 4.0);
        c.rope_scaling.original_max_position = get_int(rope, "original_max_position_embeddings");
      } else if (type == "dynamic") {
        c.rope_scaling.original_max_position =
            get_or<int64_t>(rope, "original_max_position_embeddings", c.max_position);
      } else if (type != "default" && type != "linear") {
        fail(path, ": rope type \"", type, "\" is not supported (supported: default, linear, dynamic, llama3)");
      }
      if (get_or<double>(rope, "partial_rotary_factor", 1.0) != 1.0)
        fail(path, ": partial_rotary_factor != 1 is not supported");
    }
    static const char* kActs[] = {"gelu_new", "gelu_pytorch_tanh", "gelu", "silu", "relu"};
    bool act_ok = false;
    for (const char* a : kActs) act_ok |= c.activation == a;
    RLHF_CHECK(act_ok, path, ": activation \"", c.activation,
               "\" is not supported (supported: gelu_new, gelu_pytorch_tanh, gelu, silu, relu)");
  } catch (const json::exception& e) {
    fail(path, ": malformed config (", e.what(), ")");
  } catch (const BadValue& e) {
    fail(path, ": ", e.what());
  }
  RLHF_CHECK(c.hidden_size > 0 && c.num_layers > 0 && c.num_heads > 0 && c.vocab_size > 0, path,
             ": hidden size, layers, heads and vocab_size must be positive");
  return c;
}

ModelConfig load_model_config(const std::string& dir) {
  const std::string path = (std::filesystem::path(dir) / "config.json").string();
  std::ifstream in(path);
  RLHF_CHECK(in, path, ": cannot open (hint: --model must be a Hugging Face model folder with config.json)");
  json j;
  try {
    j = json::parse(in);
  } catch (const json::exception& e) {
    fail(path, ": not valid JSON (", e.what(), ")");
  }
  return parse_model_config(j, path);
}

json ModelConfig::to_json() const {
  json j = raw;
  j["architectures"] = {architecture};
  if (is_classifier) {
    j["num_labels"] = num_labels;
    json id2label = json::object(), label2id = json::object();
    for (int64_t i = 0; i < num_labels; ++i) {
      id2label[std::to_string(i)] = "LABEL_" + std::to_string(i);
      label2id["LABEL_" + std::to_string(i)] = i;
    }
    j["id2label"] = id2label;
    j["label2id"] = label2id;
  } else {
    j.erase("id2label");
    j.erase("label2id");
    j.erase("num_labels");
  }
  j["dtype"] = dtype;
  if (j.contains("torch_dtype")) j["torch_dtype"] = dtype;
  j["vocab_size"] = vocab_size;
  return j;
}

}  // namespace rlhf
