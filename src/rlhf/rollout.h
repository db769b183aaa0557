// Rollouts: prompts in, sampled responses out, with everything PPO / GRPO / RLOO need about them.
//
//   prompts  (JSONL {"prompt": str} or {"messages": [...]}) --Formatter--> token ids, left padded: (B, P)
//   response y ~ π(·|x) at temperature τ (top-k, top-p), at most N new tokens, truncated after the first EOS
//   response_mask (B, N): 1 up to and including the first EOS, 0 after (right padding)
//   logp_t = log softmax(logits_t / τ)[y_t]   (the sampler's temperature, never top-k/top-p renormalised)
// A full sequence is [prompt | response] = (B, P + N); position ids = cumsum(mask) − 1, as in generation, so a
// fresh forward reproduces the sampler's log-probs (pinned by a test).
#pragma once
#include <torch/types.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "model/model.h"
#include "model/text_api.h"
#include "rlhf/prompts.h"
#include "train/format.h"

namespace rlhf {

struct Rollout {
  torch::Tensor prompt_ids, prompt_mask;  // (B, P) int64, left padded
  torch::Tensor response_ids;             // (B, N) int64, pad_id after EOS
  torch::Tensor response_mask;            // (B, N) float32, 1 up to and including EOS
  torch::Tensor logprobs;                 // (B, N) float32, the sampler's logp_t, 0 on padding
  torch::Tensor has_eos;                  // (B,) bool: the response ended with a stop token
  torch::Tensor input_ids() const;        // (B, P + N) [prompt | response]
  torch::Tensor attention_mask() const;   // (B, P + N) int64
  int64_t batch() const { return response_ids.size(0); }
  int64_t prompt_len() const { return prompt_ids.size(1); }
  int64_t response_len() const { return response_ids.size(1); }
  Rollout select(const torch::Tensor& rows) const;  // a subset of rows (index tensor), e.g. a minibatch
};

// Samples one response per prompt (repeat prompts for G samples each). opts.stop_at_eos must be true. Greedy
// decoding (opts.greedy) is for evaluation only: its log-probs are not those of a sampling distribution.
Rollout rollout_generate(TransformerLM& policy, const std::vector<std::vector<int64_t>>& prompts,
                         const SamplingOptions& opts, const std::vector<int64_t>& stop_ids, int64_t pad_id,
                         at::Generator& gen);

// The same with one generator per prompt row: a row's response depends on its prompt and generator only, not on
// the other rows of the batch (generate_rows), so rows split over ranks sample as one batch would.
Rollout rollout_generate_rows(TransformerLM& policy, const std::vector<std::vector<int64_t>>& prompts,
                              const SamplingOptions& opts, const std::vector<int64_t>& stop_ids, int64_t pad_id,
                              std::vector<at::Generator>& row_gens);

struct ResponseForward {
  torch::Tensor logprobs;  // (B, N) log softmax(logits/τ)[y_t], float32 (0 where response_mask = 0)
  torch::Tensor entropy;   // (B, N) entropy of softmax(logits/τ), float32 (only when asked)
};

// One forward of an LM over [prompt | response]; log-probs of the response tokens at temperature τ.
// Runs with or without grad as the caller's mode says.
ResponseForward response_logprobs(TransformerLM& model, const Rollout& r, double temperature,
                                  bool with_entropy = false);

// Per-token values V_t (B, N) of a value model (score head with 1 label): the value of the state before y_t,
// read at the position whose logits predict y_t (as TRL). 0 where response_mask = 0.
torch::Tensor response_values(TransformerLM& critic, const Rollout& r);

// Reward-model score of each full sequence at its last real token (the EOS when present): (B,) float32.
torch::Tensor sequence_scores(TransformerLM& reward_model, const Rollout& r);

}  // namespace rlhf
