// Batched autoregressive generation with a preallocated KV cache.
//
//   prefill: one forward over the (left-padded) prompts, cache filled
//   step t:  next = sample(logits of the last position); append; forward the B new tokens only
// A sequence that produced EOS (when stop_at_eos) gets pad tokens afterwards, as transformers' generate does;
// the loop ends when every sequence is done or max_new_tokens is reached.
#pragma once
#include <torch/torch.h>

#include <functional>

#include "model/model.h"
#include "model/text_api.h"

namespace rlhf {

struct GenerateOutput {
  torch::Tensor output_ids;      // (B, T + N) prompt + new tokens (N <= max_new_tokens)
  torch::Tensor attention_mask;  // (B, T + N): prompt mask, then 1 up to and including EOS, 0 after
  torch::Tensor logprobs;        // (B, N) log-softmax(logits / temperature) of each sampled token; 0 after EOS
};

// input_ids, attention_mask: (B, T), left padded. eos_ids: tokens that end a sequence. pad_id fills after EOS.
// on_step(step, next_tokens (B,)) is called after each step (for streaming), may be empty.
GenerateOutput generate(TransformerLM& model, const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                        const SamplingOptions& opts, const std::vector<int64_t>& eos_ids, int64_t pad_id,
                        at::Generator& gen,
                        const std::function<void(int64_t, const torch::Tensor&)>& on_step = {});

// The same with one generator per row (row_gens.size() == B): each row's tokens depend on its prompt and its
// generator only, not on the rows beside it (sample_next_rows), so a batch split over ranks samples what the whole
// batch would. CPU draws; on CUDA the draws are unseeded.
GenerateOutput generate_rows(TransformerLM& model, const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                             const SamplingOptions& opts, const std::vector<int64_t>& eos_ids, int64_t pad_id,
                             std::vector<at::Generator>& row_gens,
                             const std::function<void(int64_t, const torch::Tensor&)>& on_step = {});

// The slow reference: no cache, a full forward over the whole sequence at every step. Pinned to generate().
torch::Tensor generate_reference(TransformerLM& model, const torch::Tensor& input_ids,
                                 const torch::Tensor& attention_mask, int64_t max_new_tokens);

// Left-pads token lists into (B, T) ids and mask.
std::pair<torch::Tensor, torch::Tensor> left_pad(const std::vector<std::vector<int64_t>>& seqs, int64_t pad_id);

}  // namespace rlhf
