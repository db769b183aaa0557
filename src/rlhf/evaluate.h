// Evaluating policies against a known gold preference (the demo; any task with a gold judge).
//
// For each policy π and held-out prompts x: sample y ~ π(·|x) at temperature 1, then report
//   gold        mean gold(x, y)                           (the hidden preference the reward model never saw)
//   reward_model mean r_θ(x, y)                           (the proxy PPO optimises)
//   kl_to_sft   mean Σ_t log π(y_t|·) − log π_sft(y_t|·)  (k1, an unbiased estimate of KL(π ‖ π_sft))
//   length      mean response tokens
//   win_rate_vs_sft  P(gold(y) > gold(y_sft)) + ½·P(=), against SFT's sample for the same prompt and draw
// Best-of-N: N samples from SFT, the reward model's favourite kept; its KL is the analytic log N − (N−1)/N.
#pragma once
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "model/model.h"
#include "train/format.h"

namespace rlhf::eval {

using GoldFn = std::function<double(const std::string& prompt, const std::string& response)>;

struct Sample {
  size_t prompt_index = 0;
  std::vector<int64_t> prompt_ids, response_ids;  // response_ids include the stop token when there is one
  std::string text;                               // decoded response, cut at the stop token
};

// `repeats` samples per prompt, batched; deterministic for a seed.
std::vector<Sample> sample_responses(TransformerLM& policy, const Formatter& fmt,
                                     const std::vector<std::string>& prompts, int repeats, int max_new_tokens,
                                     uint64_t seed, float temperature = 1.0f);

// Σ_t log p(response token) under model for each sample: (N,) on CPU.
std::vector<double> response_logprobs(TransformerLM& model, const std::vector<Sample>& samples);
// Reward-model score of each sample.
std::vector<double> reward_scores(TransformerLM& rm, const std::vector<Sample>& samples);

struct PolicyStats {
  double gold = 0, reward_model = 0, kl_to_sft = 0, length = 0, win_rate_vs_sft = 0.5;
  std::vector<double> golds;
  std::vector<Sample> samples;
  nlohmann::json to_json() const;
};

// Statistics of given samples (policy = the model that drew them; kl_override >= 0 replaces the estimate).
PolicyStats policy_stats(TransformerLM& policy, TransformerLM& sft, TransformerLM& rm,
                         const std::vector<std::string>& prompts, std::vector<Sample> samples, const GoldFn& gold,
                         const std::vector<double>* sft_golds, double kl_override = -1.0);

// Best-of-N with the reward model: per prompt and repeat, the best of n SFT samples.
std::vector<Sample> best_of_n(TransformerLM& sft, TransformerLM& rm, const Formatter& fmt,
                              const std::vector<std::string>& prompts, int repeats, int n, int max_new_tokens,
                              uint64_t seed);

}  // namespace rlhf::eval
