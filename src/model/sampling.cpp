#include "model/sampling.h"

#include <limits>

namespace rlhf {

torch::Tensor sampling_logits(const torch::Tensor& logits, const SamplingOptions& opts) {
  auto x = logits.to(torch::kFloat32);
  if (opts.temperature != 1.0f) x = x / opts.temperature;
  const float neg_inf = -std::numeric_limits<float>::infinity();
  if (opts.top_k > 0 && opts.top_k < x.size(-1)) {
    auto kth = std::get<0>(x.topk(opts.top_k, -1)).narrow(-1, opts.top_k - 1, 1);  // (B, 1)
    x = x.masked_fill(x < kth, neg_inf);
  }
  if (opts.top_p < 1.0f) {
    // transformers' TopPLogitsWarper: sort ascending, drop the tokens whose cumulative probability stays
    // <= 1 - top_p, always keep the most likely one.
    auto [sorted, idx] = x.sort(-1, /*descending=*/false);
    auto cum = sorted.softmax(-1).cumsum(-1);
    auto remove = cum <= (1.0f - opts.top_p);
    remove.select(-1, remove.size(-1) - 1).fill_(false);
    x = x.masked_fill(remove.scatter(-1, idx, remove), neg_inf);
  }
  return x;
}

torch::Tensor sample_next(const torch::Tensor& logits, const SamplingOptions& opts, at::Generator& gen) {
  if (opts.greedy) return logits.argmax(-1);
  auto probs = sampling_logits(logits, opts).softmax(-1);
  if (probs.device().is_cpu()) return torch::multinomial(probs, 1, /*replacement=*/false, gen).squeeze(-1);
  return torch::multinomial(probs, 1, /*replacement=*/false).squeeze(-1);
}

}  // namespace rlhf
