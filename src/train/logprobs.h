// Per-token log-probabilities of given tokens, the quantity behind SFT's loss, DPO and PPO.
//
//   logp[b,t] = log softmax(logits[b,t,:] / τ)[tokens[b,t]] = z[b,t,tokens[b,t]]/τ − logsumexp_v(z[b,t,v]/τ)
//
// Computed as gather − logsumexp, so the (B,T,V) log-softmax is never materialised (one pass over V for the
// logsumexp; autograd keeps only the softmax it needs). Computed in float32 whatever the logits' dtype.
// Alignment is the caller's: logits[:, t] must already be the distribution of tokens[:, t]; for a causal LM
// use causal_logprobs(), which shifts (position t predicts token t + 1).
#pragma once
#include <torch/types.h>

namespace rlhf::train {

// logits (B,T,V), tokens (B,T) int64 -> (B,T) float32.
torch::Tensor token_logprobs(const torch::Tensor& logits, const torch::Tensor& tokens, double temperature = 1.0);
// Slow reference: full log_softmax, then gather. Pinned to token_logprobs by a test.
torch::Tensor token_logprobs_reference(const torch::Tensor& logits, const torch::Tensor& tokens,
                                       double temperature = 1.0);

// Causal LM: logits (B,T,V) of input_ids (B,T) -> (B,T−1), entry t is log p(input_ids[t+1] | input_ids[..t]).
torch::Tensor causal_logprobs(const torch::Tensor& logits, const torch::Tensor& input_ids, double temperature = 1.0);

// Entropy of softmax(logits/τ) per position: (B,T,V) -> (B,T) float32.
torch::Tensor token_entropy(const torch::Tensor& logits, double temperature = 1.0);

// values, mask: (B,T) -> (B,): Σ_t values·mask.
torch::Tensor masked_sum(const torch::Tensor& values, const torch::Tensor& mask);
// values, mask: (B,T) -> scalar: Σ values·mask / max(1, Σ mask).
torch::Tensor masked_mean(const torch::Tensor& values, const torch::Tensor& mask);

// Sum of log-probs of the masked tokens of each sequence: causal_logprobs(logits, input_ids, τ) summed where
// loss_mask[:, 1:] = 1. logits (B,T,V), input_ids (B,T), loss_mask (B,T) (1 on tokens to score) -> (B,).
torch::Tensor sequence_logprobs(const torch::Tensor& logits, const torch::Tensor& input_ids,
                                const torch::Tensor& loss_mask, double temperature = 1.0);

}  // namespace rlhf::train
