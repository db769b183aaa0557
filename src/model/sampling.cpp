#include "model/sampling.h"

#include "model/decode_kernels.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/version.h>
#include <ATen/core/DistributionsHelper.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <mutex>
#include <vector>

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

// The draw order and transformations below are libtorch 1.13's (CPU); 2.x changed exponential_ on the CPU, so
// other versions use torch::multinomial (and do not compile this replica).
#if TORCH_VERSION_MAJOR == 1 && TORCH_VERSION_MINOR == 13
#define RLHF_EXACT_MULTINOMIAL 1

// Rows that torch::multinomial accepts: finite, non-negative, positive sum (some entry > 0). On the float's bits,
// so the compiler vectorises it: +0 .. +max are 0 .. 0x7F7FFFFF; -0 (0x80000000) counts as 0; all else is NaN, inf
// or negative.
bool valid_rows(const float* p, int64_t B, int64_t V) {
  constexpr uint32_t kMaxFinite = 0x7F7FFFFFu, kNegZero = 0x80000000u;
  for (int64_t b = 0; b < B; ++b) {
    uint32_t bad = 0, positive = 0;
    for (int64_t j = 0; j < V; ++j) {
      uint32_t bits;
      std::memcpy(&bits, p + b * V + j, sizeof bits);
      bad |= (bits > kMaxFinite) & (bits != kNegZero);
      positive |= (bits != 0) & (bits <= kMaxFinite);
    }
    if (bad || !positive) return false;
  }
  return true;
}

// The next n outputs of a Mersenne Twister, exactly as n calls of at::mt19937::operator() would give them (and
// leaving it where they would): the state refills and the tempering run as plain loops over arrays, which the
// compiler vectorises, instead of one inline call with a branch per draw.
class BulkTwister {
 public:
  explicit BulkTwister(const at::mt19937& engine) : d_(engine.data()) {}
  at::mt19937 engine() const {
    at::mt19937 e;
    e.set_data(d_);
    return e;
  }
  void next(uint32_t* out, int64_t n) {
    int64_t i = 0;
    while (i < n) {
      if (d_.left_ == 1) {  // this call refills the state (left_ = N, next_ = 0), then reads state_[0]
        refill();
        out[i++] = temper(d_.state_[d_.next_++]);
        continue;
      }
      const int64_t take = std::min<int64_t>(n - i, d_.left_ - 1);  // calls before the next refill
      const uint32_t* st = d_.state_.data() + d_.next_;
      for (int64_t k = 0; k < take; ++k) out[i + k] = temper(st[k]);
      d_.next_ += static_cast<uint32_t>(take);
      d_.left_ -= static_cast<int>(take);
      i += take;
    }
  }

 private:
  static constexpr int N = at::MERSENNE_STATE_N, M = at::MERSENNE_STATE_M;
  static uint32_t temper(uint32_t y) {
    y ^= (y >> 11);
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    return y ^ (y >> 18);
  }
  static uint32_t twist(uint32_t u, uint32_t v) {
    return (((u & at::UMASK) | (v & at::LMASK)) >> 1) ^ (v & 1 ? at::MATRIX_A : 0);
  }
  void refill() {  // mt19937_engine::next_state
    uint32_t* p = d_.state_.data();
    d_.left_ = N;
    d_.next_ = 0;
    for (int j = 0; j < N - M; ++j) p[j] = p[j + M] ^ twist(p[j], p[j + 1]);
    for (int j = N - M; j < N - 1; ++j) p[j] = p[j + M - N] ^ twist(p[j], p[j + 1]);
    p[N - 1] = p[M - 1] ^ twist(p[N - 1], p[0]);
  }
  at::mt19937_data_pod d_;
};

// torch::multinomial(probs, 1, false, gen) for valid CPU float32 rows (B, V), see multinomial_one.
torch::Tensor exact_multinomial(const torch::Tensor& probs, at::Generator& gen) {
  const int64_t B = probs.size(0), V = probs.size(1);
  auto out = torch::empty({B}, torch::kInt64);
  auto* o = out.data_ptr<int64_t>();
  const float* p = probs.data_ptr<float>();
  auto* g = at::check_generator<at::CPUGeneratorImpl>(gen);
  std::lock_guard<std::mutex> lock(g->mutex_);
  // The generator's Mersenne Twister, stepped here in bulk and put back afterwards. Each entry takes one
  // random64() = (first 32-bit draw) << 32 | second; uniform_real_distribution<double> keeps its low 53 bits.
  BulkTwister twister(g->engine());
  constexpr int64_t kChunk = 2048;  // entries per batch of draws
  std::vector<uint32_t> raw(2 * kChunk);
  std::vector<uint8_t> keep(kChunk);
  constexpr double kMargin = 1.0 - 1e-6;  // >> the float rounding of q and of p / q (3 · 2^-24)
  for (int64_t b = 0; b < B; ++b) {
    const float* row = p + b * V;
    float best = -1.0f;  // every ratio is >= 0 (or NaN, which torch's argmax takes first)
    int64_t arg = 0;
    bool nan = false;
    for (int64_t j0 = 0; j0 < V; j0 += kChunk) {
      const int64_t n = std::min(kChunk, V - j0);
      twister.next(raw.data(), 2 * n);
      // A vectorised pre-filter with the best ratio so far (it only grows, so an older one is conservative): u is
      // at least u_lo = (top 21 of its 53 bits) · 2^-21, so p < best · u_lo · (1 - 2e-6) already means p < best · u ·
      // kMargin; the rest (a few per row once best is large) go through the exact test below.
      const float t = best > 0 ? best * static_cast<float>(kMargin * (1.0 - 1e-6)) * 0x1p-21f : 0.0f;
      const float* pj = row + j0;
      for (int64_t i = 0; i < n; ++i) keep[i] = pj[i] >= t * static_cast<float>(raw[2 * i] & 0x1FFFFFu);
      for (int64_t i = 0; i < n; ++i) {
        if (!keep[i]) {
          uint64_t word;  // skip 8 rejected entries at a time
          while (i + 8 <= n && (std::memcpy(&word, &keep[i], 8), word == 0)) i += 8;
          if (i >= n || !keep[i]) continue;
        }
        const int64_t j = j0 + i;
        // exponential_distribution<double>: u in [0, 1), q = -1/λ · log(1 - u)
        const double u = at::transformation::uniform_real<double>(uint64_t{raw[2 * i]} << 32 | raw[2 * i + 1], 0.0, 1.0);
        if (nan || (u > 0 && row[j] < best * u * kMargin)) continue;
        const float q = static_cast<float>(-1.0 / 1.0 * std::log(1.0 - u));
        const float r = row[j] / q;  // float32 division, as torch's div_out
        if (std::isnan(r)) {
          arg = j, nan = true;
        } else if (r > best) {  // strict: the first index wins a tie, as argmax
          best = r, arg = j;
        }
      }
    }
    o[b] = arg;
  }
  g->set_engine(twister.engine());
  return out;
}
#else
#define RLHF_EXACT_MULTINOMIAL 0
#endif
}  // namespace

bool multinomial_one_has_replica() { return RLHF_EXACT_MULTINOMIAL; }

torch::Tensor multinomial_one(const torch::Tensor& probs, at::Generator& gen) {
  if (!probs.device().is_cpu()) return torch::multinomial(probs, 1, /*replacement=*/false).squeeze(-1);
#if RLHF_EXACT_MULTINOMIAL
  const bool fast = fast_cpu_kernels() && probs.dim() == 2 && probs.scalar_type() == torch::kFloat32 &&
                    probs.is_contiguous() && probs.size(1) > 0;
  if (fast && valid_rows(probs.data_ptr<float>(), probs.size(0), probs.size(1))) return exact_multinomial(probs, gen);
#endif
  return torch::multinomial(probs, 1, /*replacement=*/false, gen).squeeze(-1);
}

torch::Tensor sample_next(const torch::Tensor& logits, const SamplingOptions& opts, at::Generator& gen) {
  if (opts.greedy) return logits.argmax(-1);
  auto probs = sampling_logits(logits, opts).softmax(-1);
  if (probs.device().is_cpu()) return multinomial_one(probs, gen);
  return torch::multinomial(probs, 1, /*replacement=*/false).squeeze(-1);
}

torch::Tensor sample_next_rows(const torch::Tensor& logits, const SamplingOptions& opts,
                               std::vector<at::Generator>& gens) {
  TORCH_CHECK(logits.dim() == 2 && logits.size(0) == static_cast<int64_t>(gens.size()), "sample_next_rows: logits ",
              logits.sizes(), " for ", gens.size(), " generators");
  if (opts.greedy) return logits.argmax(-1);
  auto probs = sampling_logits(logits, opts).softmax(-1).contiguous();
  if (!probs.device().is_cpu()) return torch::multinomial(probs, 1, /*replacement=*/false).squeeze(-1);
  auto out = torch::empty({probs.size(0)}, torch::kInt64);
  auto* o = out.data_ptr<int64_t>();
  for (int64_t b = 0; b < probs.size(0); ++b) o[b] = multinomial_one(probs.narrow(0, b, 1), gens[b])[0].item<int64_t>();
  return out;
}

}  // namespace rlhf
