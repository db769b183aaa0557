// Critic-free variants on the same rollout and scoring code as PPO (ppo.h's loop calls these).
//
// GRPO (Shao et al. 2024): G samples per prompt, scores s (P, G)
//   A_i = (s_i − mean_g s) / (std_g s + ε)                 for every token of sample i (std: Bessel-corrected)
//   L = mean_valid(max(−A·ρ, −A·clip(ρ, 1−ε_c, 1+ε_c))) + β·mean_valid(k3(π_θ, π_ref))
//   (a token-level mean over the batch; k3 = e^{ref − logp} − 1 − (ref − logp) with its gradient)
// RLOO (Ahmadian et al. 2024): the KL goes into the reward, as in PPO, per sequence
//   R_i = s_i − β·Σ_t KL_t,   A_i = R_i − 1/(G−1)·Σ_{j≠i} R_j         (leave-one-out baseline)
//   L = mean_valid(max(−A·ρ, −A·clip(ρ, 1−ε_c, 1+ε_c)))
#pragma once
#include <torch/types.h>

namespace rlhf {

// scores: (P·G,) ordered prompt-major (sample g of prompt p at p·G + g). Returns (P·G,).
torch::Tensor grpo_advantages(const torch::Tensor& scores, int64_t group_size, double eps);
torch::Tensor rloo_advantages(const torch::Tensor& rewards, int64_t group_size);

// logp, old_logp, ref_logp, mask: (B, N); advantages: (B,). beta = 0: no KL term.
struct GRPOLoss {
  torch::Tensor loss;    // scalar, differentiable
  torch::Tensor pg_loss, kl;  // detached scalars
  double clip_frac = 0, approx_kl = 0;
};
GRPOLoss grpo_loss(const torch::Tensor& logp, const torch::Tensor& old_logp, const torch::Tensor& ref_logp,
                   const torch::Tensor& advantages, const torch::Tensor& mask, double clip_eps, double beta);

}  // namespace rlhf
