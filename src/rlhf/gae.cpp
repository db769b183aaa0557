#include "rlhf/gae.h"

#include <torch/torch.h>

namespace rlhf {

GAEOutput gae_reference(const torch::Tensor& rewards, const torch::Tensor& values, const torch::Tensor& mask,
                        double gamma, double lambda) {
  TORCH_CHECK(rewards.dim() == 2 && rewards.sizes() == values.sizes() && rewards.sizes() == mask.sizes(),
              "gae_reference: rewards ", rewards.sizes(), ", values ", values.sizes(), ", mask ", mask.sizes());
  auto r = rewards.to(torch::kCPU, torch::kFloat64).contiguous();
  auto v = values.to(torch::kCPU, torch::kFloat64).contiguous();
  auto m = mask.to(torch::kCPU, torch::kFloat64).contiguous();
  const int64_t B = r.size(0), T = r.size(1);
  auto adv = torch::zeros({B, T}, torch::kFloat64);
  auto ra = r.accessor<double, 2>(), va = v.accessor<double, 2>(), ma = m.accessor<double, 2>();
  auto aa = adv.accessor<double, 2>();
  for (int64_t b = 0; b < B; ++b) {
    double next_adv = 0, next_value = 0;
    for (int64_t t = T - 1; t >= 0; --t) {
      if (ma[b][t] == 0) {  // padding: nothing flows back through it
        next_adv = 0;
        next_value = 0;
        continue;
      }
      const double delta = ra[b][t] + gamma * next_value - va[b][t];
      aa[b][t] = delta + gamma * lambda * next_adv;
      next_adv = aa[b][t];
      next_value = va[b][t];
    }
  }
  auto ret = (adv + v) * m;
  return {adv.to(rewards.options()), ret.to(rewards.options())};
}

GAEOutput gae(const torch::Tensor& rewards, const torch::Tensor& values, const torch::Tensor& mask, double gamma,
              double lambda) {
  TORCH_CHECK(rewards.dim() == 2 && rewards.sizes() == values.sizes() && rewards.sizes() == mask.sizes(),
              "gae: rewards ", rewards.sizes(), ", values ", values.sizes(), ", mask ", mask.sizes());
  const int64_t T = rewards.size(1);
  auto opts = rewards.options().dtype(torch::kFloat64);
  auto m = mask.to(torch::kFloat64);
  auto v = values.to(torch::kFloat64) * m;
  auto r = rewards.to(torch::kFloat64) * m;
  // V_{t+1}, 0 past the end of each row (the mask is a prefix, so v is already 0 there).
  auto next_v = torch::cat({v.narrow(1, 1, T - 1), torch::zeros({v.size(0), 1}, opts)}, 1);
  auto delta = (r + gamma * next_v - v) * m;  // (B, T)
  // M[k, t] = (γλ)^{k−t} for k ≥ t, else 0: A_t = Σ_k δ_k M[k, t].
  auto idx = torch::arange(T, opts);
  auto expo = idx.unsqueeze(1) - idx.unsqueeze(0);  // k − t
  auto M = torch::where(expo >= 0, torch::pow(torch::full({}, gamma * lambda, opts), expo.clamp_min(0)),
                        torch::zeros({}, opts));
  auto adv = torch::matmul(delta, M) * m;
  auto ret = (adv + v) * m;
  return {adv.to(rewards.scalar_type()), ret.to(rewards.scalar_type())};
}

torch::Tensor masked_mean(const torch::Tensor& x, const torch::Tensor& mask) {
  auto m = mask.to(x.scalar_type());
  return (x * m).sum() / m.sum().clamp_min(1);
}

torch::Tensor masked_var(const torch::Tensor& x, const torch::Tensor& mask) {
  auto m = mask.to(x.scalar_type());
  auto n = m.sum();
  auto mean = (x * m).sum() / n.clamp_min(1);
  auto var = ((x - mean).pow(2) * m).sum() / n.clamp_min(1);
  return var * n / (n - 1).clamp_min(1);  // Bessel's correction
}

torch::Tensor masked_whiten(const torch::Tensor& x, const torch::Tensor& mask, bool shift_mean) {
  auto mean = masked_mean(x, mask);
  auto var = masked_var(x, mask);
  auto w = (x - mean) * torch::rsqrt(var + 1e-8);
  if (!shift_mean) w = w + mean;
  return w * mask.to(x.scalar_type());
}

}  // namespace rlhf
