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

// Next tokens (B,) with one generator per row (gens.size() == B): row b's draw depends on gens[b] alone, so a row
// samples the same token whatever rows share its batch (data-parallel rollouts: rl_shard.h). CPU draws only; on
// another device, one unseeded multinomial on the device.
torch::Tensor sample_next_rows(const torch::Tensor& logits, const SamplingOptions& opts, std::vector<at::Generator>& gens);

// One draw per row of probs (B, V) (rows sum to > 0): torch::multinomial(probs, 1, false, gen).squeeze(-1),
// bit for bit, with the generator left in the same state. libtorch 1.13 draws q ~ Exp(1) for every entry (one
// random64 each, in memory order) and takes argmax_j p_j / q_j (the Gumbel-max trick); this does the same in one
// pass without the (B, V) temporaries and skips the log for entries that cannot win: q_j = -log(1 - u_j) >= u_j,
// so p_j / q_j <= p_j / u_j, and an entry with p_j < best · u_j (with a margin for rounding) is not the argmax.
// Falls back to torch::multinomial for other libtorch versions, devices, dtypes and invalid rows (its errors), and
// after set_fast_cpu_kernels(false) (decode_kernels.h).
torch::Tensor multinomial_one(const torch::Tensor& probs, at::Generator& gen);
// Whether this build has the replica (libtorch 1.13), i.e. multinomial_one is not simply torch::multinomial.
bool multinomial_one_has_replica();

}  // namespace rlhf
