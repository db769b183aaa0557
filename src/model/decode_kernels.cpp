#include "model/decode_kernels.h"

#include <atomic>
#include <cmath>

#include "common/worker_pool.h"
#include "kernels/decode_attention.h"
#include "kernels/rows_gemm.h"

namespace rlhf {

namespace {

std::atomic<bool> g_fast_kernels{true};

bool no_grad(std::initializer_list<const torch::Tensor*> ts) {
  if (!at::GradMode::is_enabled()) return true;
  for (const auto* t : ts)
    if (t->defined() && t->requires_grad()) return false;
  return true;
}

bool use_rows_kernel(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b) {
  if (!g_fast_kernels.load(std::memory_order_relaxed)) return false;
  if (!x.device().is_cpu() || x.scalar_type() != torch::kFloat32 || w.scalar_type() != torch::kFloat32) return false;
  if (b.defined() && (b.scalar_type() != torch::kFloat32 || !b.is_contiguous())) return false;
  if (!w.is_contiguous() || w.dim() != 2 || x.size(-1) == 0) return false;
  if (!no_grad({&x, &w, &b})) return false;
  return x.numel() / x.size(-1) <= kRowsKernelMaxRows;
}

// y (M, N) from x (..., K). Columns go to the WorkerPool's threads in multiples of 64 (so each column is computed
// by the same code whatever the split, rows_gemm.h); a product is split only when it has at least kMinMacsToSplit
// multiply-adds (about 10 µs): below that the hand-off costs more than it saves.
torch::Tensor rows_linear(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b,
                          kernels::Layout layout) {
  const int64_t K = x.size(-1);
  const int64_t N = layout == kernels::Layout::kn ? w.size(1) : w.size(0);
  TORCH_CHECK((layout == kernels::Layout::kn ? w.size(0) : w.size(1)) == K, "linear: x has ", K,
              " features, the weight is ", w.sizes());
  TORCH_CHECK(!b.defined() || b.numel() == N, "linear: bias of ", b.numel(), " for ", N, " outputs");
  // Each libtorch call costs microseconds here: no reshape/view when x is already contiguous.
  const torch::Tensor x2 = x.is_contiguous() ? x : x.contiguous();
  const int64_t M = x2.numel() / K;
  auto sizes = x.sizes().vec();
  sizes.back() = N;
  auto y = torch::empty(sizes, x.options());
  const kernels::RowsGemm g{x2.data_ptr<float>(), M, K, K, w.data_ptr<float>(), N,
                            b.defined() ? b.data_ptr<float>() : nullptr, y.data_ptr<float>(), N, layout};
  constexpr int64_t kBlock = 64, kMinMacsToSplit = int64_t{1} << 18;
  auto& pool = WorkerPool::get();
  const int64_t blocks = (N + kBlock - 1) / kBlock;
  const int parts = M * K * N < kMinMacsToSplit ? 1 : static_cast<int>(std::min<int64_t>(pool.size(), blocks));
  if (parts <= 1) {
    kernels::rows_gemm(g, 0, N);
  } else {
    pool.run(parts, [&](int i) {
      const int64_t lo = blocks * i / parts * kBlock, hi = std::min(blocks * (i + 1) / parts * kBlock, N);
      kernels::rows_gemm(g, lo, hi);
    });
  }
  return y;
}

}  // namespace

namespace {
// A weight stored in another dtype than x (TransformerLM::store_frozen_weights: bf16 at rest) is computed in x's.
torch::Tensor as_x(const torch::Tensor& x, const torch::Tensor& t) {
  return !t.defined() || t.scalar_type() == x.scalar_type() ? t : t.to(x.scalar_type());
}
}  // namespace

torch::Tensor linear_kn(const torch::Tensor& x, const torch::Tensor& w_stored, const torch::Tensor& b_stored) {
  const auto w_kn = as_x(x, w_stored), b = as_x(x, b_stored);
  if (use_rows_kernel(x, w_kn, b)) return rows_linear(x, w_kn, b, kernels::Layout::kn);
  auto sizes = x.sizes().vec();
  sizes.back() = w_kn.size(1);
  auto x2 = x.reshape({-1, x.size(-1)});
  return (b.defined() ? torch::addmm(b, x2, w_kn) : torch::mm(x2, w_kn)).view(sizes);
}

torch::Tensor linear_nk(const torch::Tensor& x, const torch::Tensor& w_stored, const torch::Tensor& b_stored) {
  const auto w_nk = as_x(x, w_stored), b = as_x(x, b_stored);
  if (use_rows_kernel(x, w_nk, b)) return rows_linear(x, w_nk, b, kernels::Layout::nk);
  return b.defined() ? torch::nn::functional::linear(x, w_nk, b) : torch::nn::functional::linear(x, w_nk);
}

torch::Tensor decode_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                               const torch::Tensor& bias) {
  if (!g_fast_kernels.load(std::memory_order_relaxed) || q.dim() != 4 || q.size(2) != 1) return {};
  for (const auto* t : {&q, &k, &v, &bias})
    if (!t->device().is_cpu() || t->scalar_type() != torch::kFloat32) return {};
  const int64_t B = q.size(0), H = q.size(1), D = q.size(3), Hkv = k.size(1), S = k.size(2);
  if (!no_grad({&q, &k, &v, &bias}) || D > kernels::kDecodeAttentionMaxHeadDim || H % Hkv != 0) return {};
  if (q.stride(3) != 1 || k.stride(3) != 1 || v.stride(3) != 1 || bias.dim() != 4 || bias.size(3) != S ||
      bias.size(2) != 1 || bias.stride(3) != 1 || (bias.size(0) != B && bias.size(0) != 1))
    return {};
  auto out = torch::empty({B, 1, H * D}, q.options());
  auto scratch = torch::empty({B, S}, q.options());
  const kernels::DecodeAttention a{q.data_ptr<float>(), q.stride(0), q.stride(1),
                                   k.data_ptr<float>(), k.stride(0), k.stride(1), k.stride(2),
                                   v.data_ptr<float>(), v.stride(0), v.stride(1), v.stride(2),
                                   bias.data_ptr<float>(), bias.size(0) == 1 ? 0 : bias.stride(0),
                                   out.data_ptr<float>(), scratch.data_ptr<float>(), B, H, Hkv, S, D};
  kernels::decode_attention(a, 0, B);
  return out;
}

namespace {
bool small_float_cpu(std::initializer_list<const torch::Tensor*> ts) {
  if (!g_fast_kernels.load(std::memory_order_relaxed) || !no_grad(ts)) return false;
  for (const auto* t : ts)
    if (!t->device().is_cpu() || t->scalar_type() != torch::kFloat32 || t->numel() > kSmallOpElements) return false;
  return true;
}
}  // namespace

torch::Tensor small_rms_norm(const torch::Tensor& x, const torch::Tensor& weight, double eps) {
  if (!small_float_cpu({&x, &weight}) || x.dim() < 1 || weight.dim() != 1 || weight.size(0) != x.size(-1)) return {};
  const int64_t C = x.size(-1);
  auto xc = x.contiguous();
  auto w = weight.contiguous();
  auto y = torch::empty_like(xc);
  const float* xp = xc.data_ptr<float>();
  const float* wp = w.data_ptr<float>();
  float* yp = y.data_ptr<float>();
  const float feps = static_cast<float>(eps);
  for (int64_t r = 0, rows = xc.numel() / std::max<int64_t>(C, 1); r < rows; ++r) {
    const float* xr = xp + r * C;
    double ss = 0;  // double: the mean of C squares as exactly as float32's cascade sum or better
    for (int64_t i = 0; i < C; ++i) ss += static_cast<double>(xr[i]) * xr[i];
    const float inv = 1.0f / std::sqrt(static_cast<float>(ss / C) + feps);
    for (int64_t i = 0; i < C; ++i) yp[r * C + i] = wp[i] * (xr[i] * inv);
  }
  return y;
}

torch::Tensor small_rope(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin) {
  if (!small_float_cpu({&x, &cos, &sin}) || x.dim() != 4 || cos.dim() != 4 || !cos.is_contiguous() ||
      !sin.is_contiguous() || cos.sizes() != sin.sizes() || x.stride(3) != 1)
    return {};
  const int64_t B = x.size(0), H = x.size(1), T = x.size(2), D = x.size(3), half = D / 2;
  if (cos.size(0) != B || cos.size(1) != 1 || cos.size(2) != T || cos.size(3) != D || D % 2) return {};
  auto y = torch::empty({B, H, T, D}, x.options());
  const float* xp = x.data_ptr<float>();
  const float* cp = cos.data_ptr<float>();
  const float* sp = sin.data_ptr<float>();
  float* yp = y.data_ptr<float>();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t t = 0; t < T; ++t) {
        const float* xr = xp + b * x.stride(0) + h * x.stride(1) + t * x.stride(2);
        const float* c = cp + (b * T + t) * D;
        const float* sn = sp + (b * T + t) * D;
        float* yr = yp + ((b * H + h) * T + t) * D;
        for (int64_t d = 0; d < half; ++d) yr[d] = xr[d] * c[d] + (-xr[d + half]) * sn[d];
        for (int64_t d = half; d < D; ++d) yr[d] = xr[d] * c[d] + xr[d - half] * sn[d];
      }
  return y;
}

void set_fast_cpu_kernels(bool on) { g_fast_kernels.store(on); }
bool fast_cpu_kernels() { return g_fast_kernels.load(); }

}  // namespace rlhf
