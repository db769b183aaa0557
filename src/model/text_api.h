// Text in, text out: the model API for callers that know nothing of tensors (the labelling server, the demo).
// Implemented in text_api.cpp on top of the models, the tokenizer and the sampler.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace rlhf {

struct SamplingOptions {
  float temperature = 1.0f;  // logits / temperature before softmax
  int top_k = 0;             // 0: off
  float top_p = 1.0f;        // 1: off
  int max_new_tokens = 64;
  bool greedy = false;       // argmax, ignores temperature/top-k/top-p
  bool stop_at_eos = true;   // stop a sequence at its first EOS (the EOS is not part of the text)
  uint64_t seed = 0;
};

// k samples for each prompt from the causal LM in model_dir (needs tokenizer.json there).
// chat: format each prompt as one user message with the tokenizer's chat template.
// Returns texts[prompt][sample], decoded with skip_special_tokens.
std::vector<std::vector<std::string>> generate_texts(const std::string& model_dir,
                                                     const std::vector<std::string>& prompts, int k,
                                                     const SamplingOptions& sampling, bool chat,
                                                     const std::string& device = "cpu");

// Reward-model scores r(prompt, response) from the *ForSequenceClassification folder rm_dir, formatted and
// tokenized exactly as `rlhf reward` does in training.
std::vector<float> score_texts(const std::string& rm_dir,
                               const std::vector<std::pair<std::string, std::string>>& prompt_response,
                               const std::string& device = "cpu");

}  // namespace rlhf
