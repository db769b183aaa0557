#include "rlhf/grpo.h"

#include <torch/torch.h>

#include "rlhf/gae.h"
#include "rlhf/kl.h"
#include "rlhf/ppo.h"

namespace rlhf {

torch::Tensor grpo_advantages(const torch::Tensor& scores, int64_t group_size, double eps) {
  TORCH_CHECK(scores.dim() == 1 && scores.size(0) % group_size == 0, "grpo_advantages: scores ", scores.sizes(),
              " is not a multiple of group_size ", group_size);
  TORCH_CHECK(group_size >= 2, "grpo_advantages: group_size must be >= 2");
  auto s = scores.view({-1, group_size});                              // (P, G)
  auto mean = s.mean(1, /*keepdim=*/true);
  auto std = s.std(1, /*unbiased=*/true, /*keepdim=*/true);
  return ((s - mean) / (std + eps)).reshape({-1});
}

torch::Tensor rloo_advantages(const torch::Tensor& rewards, int64_t group_size) {
  TORCH_CHECK(rewards.dim() == 1 && rewards.size(0) % group_size == 0, "rloo_advantages: rewards ",
              rewards.sizes(), " is not a multiple of group_size ", group_size);
  TORCH_CHECK(group_size >= 2, "rloo_advantages: group_size must be >= 2");
  auto r = rewards.view({-1, group_size});                       // (P, G)
  auto baseline = (r.sum(1, /*keepdim=*/true) - r) / static_cast<double>(group_size - 1);
  return (r - baseline).reshape({-1});
}

GRPOLoss grpo_loss(const torch::Tensor& logp, const torch::Tensor& old_logp, const torch::Tensor& ref_logp,
                   const torch::Tensor& advantages, const torch::Tensor& mask, double clip_eps, double beta) {
  TORCH_CHECK(advantages.dim() == 1 && advantages.size(0) == logp.size(0), "grpo_loss: advantages ",
              advantages.sizes(), " vs logp ", logp.sizes());
  auto adv = advantages.unsqueeze(1).expand_as(logp);
  auto pg = ppo_policy_loss(logp, old_logp, adv, mask, clip_eps);
  GRPOLoss out;
  out.clip_frac = pg.clip_frac;
  out.approx_kl = pg.approx_kl;
  out.pg_loss = pg.loss.detach();
  out.loss = pg.loss;
  if (beta > 0) {
    auto kl = masked_mean(kl_per_token(logp, ref_logp, KLEstimator::k3), mask);
    out.kl = kl.detach();
    out.loss = out.loss + beta * kl;
  } else {
    out.kl = torch::zeros({});
  }
  return out;
}

}  // namespace rlhf
