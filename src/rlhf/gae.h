// Generalised advantage estimation (Schulman et al. 2016) over right-padded response tokens, and whitening.
//
//   δ_t = r_t + γ·V_{t+1} − V_t          V beyond the last valid token = 0
//   A_t = δ_t + γλ·A_{t+1}               A beyond the last valid token = 0
//   R_t = A_t + V_t                      (the value target)
// rewards, values, mask: (B, T); mask is 1 on a prefix of each row (the response up to and including EOS).
#pragma once
#include <torch/types.h>

namespace rlhf {

struct GAEOutput {
  torch::Tensor advantages;  // (B, T), 0 where mask = 0
  torch::Tensor returns;     // (B, T), 0 where mask = 0
};

// The slow reference: a plain backward loop over every row, in double precision.
GAEOutput gae_reference(const torch::Tensor& rewards, const torch::Tensor& values, const torch::Tensor& mask,
                        double gamma, double lambda);
// Vectorised: δ for all tokens at once, then A = δ · M with M[k, t] = (γλ)^{k−t} for k ≥ t (one (T, T) matmul).
GAEOutput gae(const torch::Tensor& rewards, const torch::Tensor& values, const torch::Tensor& mask, double gamma,
              double lambda);

// Mean and (Bessel-corrected) variance of x over mask = 1 entries: x, mask (B, T).
torch::Tensor masked_mean(const torch::Tensor& x, const torch::Tensor& mask);
torch::Tensor masked_var(const torch::Tensor& x, const torch::Tensor& mask);
// (x − mean)/sqrt(var + 1e−8) over the mask = 1 entries; shift_mean = false adds the mean back (reward whitening
// that keeps the sign of the rewards). Masked-out entries are 0 in the result.
torch::Tensor masked_whiten(const torch::Tensor& x, const torch::Tensor& mask, bool shift_mean = true);

}  // namespace rlhf
