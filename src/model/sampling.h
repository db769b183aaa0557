// Next-token sampling on whole batches: temperature, top-k, top-p (nucleus), greedy.
#pragma once
#include <torch/torch.h>

#include "model/text_api.h"

namespace rlhf {

// logits: (B, V) float. Returns the processed logits (B, V): logits / T, then entries outside the top-k and
// outside the smallest set whose probability reaches top_p set to -inf (transformers' warpers, same order).
torch::Tensor sampling_logits(const torch::Tensor& logits, const SamplingOptions& opts);

// Next tokens (B,) int64: argmax when greedy, else a draw from softmax(sampling_logits).
torch::Tensor sample_next(const torch::Tensor& logits, const SamplingOptions& opts, at::Generator& gen);

}  // namespace rlhf
