// KL penalty to the reference policy: per-token estimators and the β controller.
//
//   k1_t = logp_t − ref_logp_t                                  (unbiased for KL(π‖π_ref), can be < 0)
//   k3_t = (e^{ref_logp_t − logp_t} − 1) − (ref_logp_t − logp_t) (unbiased, always ≥ 0; Schulman's estimator)
// with y_t ~ π, so E_π[k] = KL(π‖π_ref) for both.
//
// β fixed, or adaptive (Ziegler et al. 2019):
//   e = clip(KL_batch / KL_target − 1, −0.2, 0.2);   β ← β·(1 + e·n_steps / horizon)
// KL_batch is the mean per-sequence KL (sum over response tokens), n_steps the number of samples in the batch.
#pragma once
#include <torch/types.h>

#include <nlohmann/json.hpp>
#include <string>

namespace rlhf {

enum class KLEstimator { k1, k3 };
KLEstimator parse_kl_estimator(const std::string& name);  // "k1" | "k3"; anything else is an error

// logp, ref_logp: (B, T) log-probs of the sampled tokens. Returns the per-token estimate (B, T); the caller masks.
torch::Tensor kl_per_token(const torch::Tensor& logp, const torch::Tensor& ref_logp, KLEstimator estimator);

struct KLController {
  double beta = 0.05;       // current coefficient
  bool adaptive = false;    // false: β stays fixed
  double target = 6.0;      // KL_target (nats per sequence), adaptive only
  double horizon = 10000;   // samples over which β moves by at most ±20 %, adaptive only

  // kl_batch: mean per-sequence KL of the batch; n_steps: samples in the batch.
  void update(double kl_batch, int64_t n_steps);
  nlohmann::json to_json() const;
  static KLController from_json(const nlohmann::json& j);
};

}  // namespace rlhf
