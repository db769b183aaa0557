#include "rlhf/kl.h"

#include <torch/torch.h>

#include <algorithm>

#include "common/error.h"

namespace rlhf {

KLEstimator parse_kl_estimator(const std::string& name) {
  if (name == "k1") return KLEstimator::k1;
  if (name == "k3") return KLEstimator::k3;
  fail("unknown KL estimator \"", name, "\" (allowed: k1, k3)");
}

torch::Tensor kl_per_token(const torch::Tensor& logp, const torch::Tensor& ref_logp, KLEstimator estimator) {
  TORCH_CHECK(logp.sizes() == ref_logp.sizes(), "kl_per_token: logp ", logp.sizes(), " vs ref_logp ",
              ref_logp.sizes());
  if (estimator == KLEstimator::k1) return logp - ref_logp;
  auto log_ratio = ref_logp - logp;  // log(π_ref / π)
  return torch::expm1(log_ratio) - log_ratio;
}

void KLController::update(double kl_batch, int64_t n_steps) {
  if (!adaptive) return;
  const double e = std::clamp(kl_batch / target - 1.0, -0.2, 0.2);
  beta *= 1.0 + e * static_cast<double>(n_steps) / horizon;
}

nlohmann::json KLController::to_json() const {
  return {{"beta", beta}, {"adaptive", adaptive}, {"target", target}, {"horizon", horizon}};
}

KLController KLController::from_json(const nlohmann::json& j) {
  KLController c;
  c.beta = j.at("beta").get<double>();
  c.adaptive = j.at("adaptive").get<bool>();
  c.target = j.at("target").get<double>();
  c.horizon = j.at("horizon").get<double>();
  return c;
}

}  // namespace rlhf
