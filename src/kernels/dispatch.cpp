// Run-time choice of the kernels' instruction set, and the slow references.
#include <cmath>
#include <vector>

#include "kernels/decode_attention.h"
#include "kernels/rows_gemm.h"

namespace rlhf::kernels {

namespace {
struct Choice {
  void (*gemm)(const RowsGemm&, int64_t, int64_t);
  void (*attention)(const DecodeAttention&, int64_t, int64_t);
  const char* name;
};
Choice choose() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return {avx512::rows_gemm, avx512::decode_attention, "avx512"};
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    return {avx2::rows_gemm, avx2::decode_attention, "avx2"};
#endif
  return {baseline::rows_gemm, baseline::decode_attention, "baseline"};
}
const Choice& choice() {
  static const Choice c = choose();
  return c;
}
}  // namespace

void rows_gemm(const RowsGemm& g, int64_t n0, int64_t n1) { choice().gemm(g, n0, n1); }
void decode_attention(const DecodeAttention& a, int64_t b0, int64_t b1) { choice().attention(a, b0, b1); }
const char* kernels_isa() { return choice().name; }

void rows_gemm_reference(const RowsGemm& g, int64_t n0, int64_t n1) {
  for (int64_t m = 0; m < g.M; ++m) {
    for (int64_t n = n0; n < n1; ++n) {
      double s = g.b ? g.b[n] : 0.0;
      for (int64_t k = 0; k < g.K; ++k) {
        const float w = g.layout == Layout::kn ? g.w[k * g.N + n] : g.w[n * g.K + k];
        s += static_cast<double>(g.x[m * g.ldx + k]) * w;
      }
      g.y[m * g.ldy + n] = static_cast<float>(s);
    }
  }
}

void decode_attention_reference(const DecodeAttention& a, int64_t b0, int64_t b1) {
  const int64_t S = a.S, D = a.D, n_rep = a.H / a.Hkv;
  std::vector<double> s(S);
  for (int64_t b = b0; b < b1; ++b) {
    for (int64_t h = 0; h < a.H; ++h) {
      const int64_t g = h / n_rep;
      const float* q = a.q + b * a.q_sb + h * a.q_sh;
      double mx = -INFINITY, sum = 0;
      for (int64_t j = 0; j < S; ++j) {
        const float* k = a.k + b * a.k_sb + g * a.k_sh + j * a.k_ss;
        double dot = 0;
        for (int64_t d = 0; d < D; ++d) dot += static_cast<double>(q[d]) * k[d];
        s[j] = dot / std::sqrt(static_cast<double>(D)) + a.bias[b * a.bias_sb + j];
        mx = std::max(mx, s[j]);
      }
      for (int64_t j = 0; j < S; ++j) sum += (s[j] = std::exp(s[j] - mx));
      for (int64_t d = 0; d < D; ++d) {
        double o = 0;
        for (int64_t j = 0; j < S; ++j) o += s[j] / sum * a.v[b * a.v_sb + g * a.v_sh + j * a.v_ss + d];
        a.out[b * a.H * D + h * D + d] = static_cast<float>(o);
      }
    }
  }
}

}  // namespace rlhf::kernels
