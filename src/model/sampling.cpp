#include "model/sampling.h"

#include "model/decode_kernels.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/DistributionsHelper.h>

#include <cmath>
#include <limits>
#include <mutex>

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

namespace {

#if TORCH_VERSION_MAJOR == 1 && TORCH_VERSION_MINOR == 13
constexpr bool kExactReplica = true;  // the draw order and transformation below are libtorch 1.13's (CPU)
#else
constexpr bool kExactReplica = false;  // 2.x changed exponential_ on the CPU: use torch::multinomial
#endif

// Rows that torch::multinomial accepts: finite, non-negative, positive sum.
bool valid_rows(const float* p, int64_t B, int64_t V) {
  for (int64_t b = 0; b < B; ++b) {
    double sum = 0;
    for (int64_t j = 0; j < V; ++j) {
      const float v = p[b * V + j];
      if (!(v >= 0.0f) || std::isinf(v)) return false;
      sum += v;
    }
    if (!(sum > 0)) return false;
  }
  return true;
}
}  // namespace

torch::Tensor multinomial_one(const torch::Tensor& probs, at::Generator& gen) {
  const bool fast = kExactReplica && fast_cpu_kernels() && probs.device().is_cpu() && probs.dim() == 2 &&
                    probs.scalar_type() == torch::kFloat32 && probs.is_contiguous();
  const int64_t B = fast ? probs.size(0) : 0, V = fast ? probs.size(1) : 0;
  if (!fast || V == 0 || !valid_rows(probs.data_ptr<float>(), B, V)) {
    if (!probs.device().is_cpu()) return torch::multinomial(probs, 1, /*replacement=*/false).squeeze(-1);
    return torch::multinomial(probs, 1, /*replacement=*/false, gen).squeeze(-1);
  }
  auto out = torch::empty({B}, torch::kInt64);
  auto* o = out.data_ptr<int64_t>();
  const float* p = probs.data_ptr<float>();
  auto* g = at::check_generator<at::CPUGeneratorImpl>(gen);
  std::lock_guard<std::mutex> lock(g->mutex_);
  // The generator's Mersenne Twister, stepped here without a virtual call per draw and put back afterwards.
  // random64() is (first 32-bit draw) << 32 | second; uniform_real_distribution<double> keeps its low 53 bits.
  at::mt19937 engine = g->engine();
  auto uniform = [&engine] {
    const uint64_t hi = engine(), lo = engine();
    return at::transformation::uniform_real<double>((hi << 32) | lo, 0.0, 1.0);
  };
  constexpr double kMargin = 1.0 - 1e-6;  // >> the float rounding of q and of p / q (3 · 2^-24)
  for (int64_t b = 0; b < B; ++b) {
    const float* row = p + b * V;
    float best = -1.0f;  // every ratio is >= 0 (or NaN, which torch's argmax takes first)
    int64_t arg = 0;
    bool nan = false;
    for (int64_t j = 0; j < V; ++j) {
      const double u = uniform();  // exponential_distribution<double>: u in [0, 1), q = -1/λ · log(1 - u)
      if (nan || (u > 0 && row[j] < best * u * kMargin)) continue;
      const float q = static_cast<float>(-1.0 / 1.0 * std::log(1.0 - u));
      const float r = row[j] / q;  // float32 division, as torch's div_out
      if (std::isnan(r)) {
        arg = j, nan = true;
      } else if (r > best) {  // strict: the first index wins a tie, as argmax
        best = r, arg = j;
      }
    }
    o[b] = arg;
  }
  g->set_engine(engine);
  return out;
}

torch::Tensor sample_next(const torch::Tensor& logits, const SamplingOptions& opts, at::Generator& gen) {
  if (opts.greedy) return logits.argmax(-1);
  auto probs = sampling_logits(logits, opts).softmax(-1);
  if (probs.device().is_cpu()) return multinomial_one(probs, gen);
  return torch::multinomial(probs, 1, /*replacement=*/false).squeeze(-1);
}

}  // namespace rlhf
