// Helpers of the training tests: tiny models built from a config (no files), token-id datasets.
#pragma once
#include <nlohmann/json.hpp>

#include "model/config.h"
#include "model/model.h"

namespace rlhf::test {

// A GPT-2 of 2 layers, 32 wide, 2 heads, vocab V, 64 positions; a classifier (num_labels 1) when classifier.
inline std::shared_ptr<TransformerLM> tiny_gpt2(int64_t vocab, bool classifier, uint64_t seed = 0) {
  nlohmann::json j = {{"architectures", {classifier ? "GPT2ForSequenceClassification" : "GPT2LMHeadModel"}},
                      {"model_type", "gpt2"},
                      {"n_embd", 32},
                      {"n_head", 2},
                      {"n_layer", 2},
                      {"n_positions", 64},
                      {"vocab_size", vocab},
                      {"activation_function", "gelu_new"},
                      {"layer_norm_epsilon", 1e-5},
                      {"tie_word_embeddings", true},
                      {"pad_token_id", 0},
                      {"eos_token_id", 1},
                      {"bos_token_id", 1}};
  if (classifier) j["num_labels"] = 1;
  auto cfg = parse_model_config(j, "<tiny_gpt2>");
  return create_model(cfg, seed);
}

}  // namespace rlhf::test
