// The kernels of rows_gemm.h, compiled once per instruction set by kernels_<isa>.cpp (see vec.h).
#include "kernels/rows_gemm.h"
#include "kernels/vec.h"

namespace rlhf::kernels {
namespace {

// ---- kn: y[m,n] = b[n] + Σ_k x[m,k]·W[k,n], W (K, N). A block is MR rows × NV vectors of columns, accumulated in
// registers over all k; each y[m,n] is (b + x0·w0) + x1·w1 + ... whichever block computes it.
template <int MR, int NV>
void kn_block(const RowsGemm& g, int64_t m0, int64_t n) {
  const float* x = g.x + m0 * g.ldx;
  const int64_t K = g.K, N = g.N, ldx = g.ldx;
  vf acc[MR][NV];
  for (int c = 0; c < NV; ++c) {
    const vf bc = g.b ? vload(g.b + n + c * VW) : vsplat(0.0f);
    for (int r = 0; r < MR; ++r) acc[r][c] = bc;
  }
  const float* w = g.w + n;
  for (int64_t k = 0; k < K; ++k, w += N) {
    vf wv[NV];
    for (int c = 0; c < NV; ++c) wv[c] = vload(w + c * VW);
    // W's rows are N apart: no hardware stream to follow, so ask for the block 8 rows ahead.
    for (int c = 0; c < NV; ++c) __builtin_prefetch(w + 8 * N + c * VW);
    for (int r = 0; r < MR; ++r) {
      const float xs = x[r * ldx + k];
      for (int c = 0; c < NV; ++c) acc[r][c] += xs * wv[c];
    }
  }
  for (int r = 0; r < MR; ++r)
    for (int c = 0; c < NV; ++c) vstore(g.y + (m0 + r) * g.ldy + n + c * VW, acc[r][c]);
}

// All rows for the columns of one block, 8 rows at a time (8 × 2 vectors = 16 accumulators), then the rest.
template <int NV>
void kn_columns(const RowsGemm& g, int64_t n) {
  int64_t m = 0;
  for (; m + 8 <= g.M; m += 8) kn_block<8, NV>(g, m, n);
  switch (g.M - m) {
    case 7: kn_block<7, NV>(g, m, n); break;
    case 6: kn_block<6, NV>(g, m, n); break;
    case 5: kn_block<5, NV>(g, m, n); break;
    case 4: kn_block<4, NV>(g, m, n); break;
    case 3: kn_block<3, NV>(g, m, n); break;
    case 2: kn_block<2, NV>(g, m, n); break;
    case 1: kn_block<1, NV>(g, m, n); break;
    default: break;
  }
}

void kn_run(const RowsGemm& g, int64_t n0, int64_t n1) {
  int64_t n = n0;
  for (; n + 2 * VW <= n1; n += 2 * VW) kn_columns<2>(g, n);
  for (; n + VW <= n1; n += VW) kn_columns<1>(g, n);
  for (; n < n1; ++n) {  // scalar columns, same order: bias, then k ascending
    for (int64_t m = 0; m < g.M; ++m) {
      float s = g.b ? g.b[n] : 0.0f;
      for (int64_t k = 0; k < g.K; ++k) s += g.x[m * g.ldx + k] * g.w[k * g.N + n];
      g.y[m * g.ldy + n] = s;
    }
  }
}

// ---- nk: y[m,n] = b[n] + Σ_k x[m,k]·W[n,k], W (N, K): dot products of x rows with W rows. MR x rows by NR W rows
// of vector accumulators over k; then lanes summed (reduce_lanes, or hsum in the same order), the k tail added, then
// the bias.
template <int MR, int NR>
void nk_tile(const RowsGemm& g, int64_t m0, int64_t n) {
  const int64_t K = g.K, Kv = K - K % VW;
  const float* x = g.x + m0 * g.ldx;
  const float* w = g.w + n * K;
  vf acc[MR][NR];
  for (int r = 0; r < MR; ++r)
    for (int c = 0; c < NR; ++c) acc[r][c] = vsplat(0.0f);
  for (int64_t k = 0; k < Kv; k += VW) {
    vf wv[NR];
    for (int c = 0; c < NR; ++c) {
      wv[c] = vload(w + c * K + k);
      __builtin_prefetch(w + (NR + c) * K + k);  // the next tile's W rows: streams from L3/DRAM ahead of use
    }
    for (int r = 0; r < MR; ++r) {
      const vf xv = vload(x + r * g.ldx + k);
      for (int c = 0; c < NR; ++c) acc[r][c] += xv * wv[c];
    }
  }
  float sums[MR][NR];
  if constexpr ((MR * NR) % VW == 0) {
    for (int i0 = 0; i0 < MR * NR; i0 += VW) {
      vf v[VW];
      for (int i = 0; i < VW; ++i) v[i] = acc[(i0 + i) / NR][(i0 + i) % NR];
      const vf red = reduce_lanes(v);
      for (int i = 0; i < VW; ++i) sums[(i0 + i) / NR][(i0 + i) % NR] = red[i];
    }
  } else {
    for (int r = 0; r < MR; ++r)
      for (int c = 0; c < NR; ++c) sums[r][c] = hsum(acc[r][c]);
  }
  for (int r = 0; r < MR; ++r) {
    for (int c = 0; c < NR; ++c) {
      float s = sums[r][c];
      for (int64_t k = Kv; k < K; ++k) s += x[r * g.ldx + k] * w[c * K + k];
      g.y[(m0 + r) * g.ldy + n + c] = g.b ? s + g.b[n + c] : s;
    }
  }
}

// All rows against NR rows of W (read once, then from L1 for the other row blocks).
template <int NR>
void nk_columns(const RowsGemm& g, int64_t n) {
  int64_t m = 0;
  for (; m + 4 <= g.M; m += 4) nk_tile<4, NR>(g, m, n);
  switch (g.M - m) {
    case 3: nk_tile<3, NR>(g, m, n); break;
    case 2: nk_tile<2, NR>(g, m, n); break;
    case 1: nk_tile<1, NR>(g, m, n); break;
    default: break;
  }
}

void nk_run(const RowsGemm& g, int64_t n0, int64_t n1) {
  int64_t n = n0;
  for (; n + 4 <= n1; n += 4) nk_columns<4>(g, n);
  for (; n < n1; ++n) nk_columns<1>(g, n);
}

void run(const RowsGemm& g, int64_t n0, int64_t n1) {
  if (g.layout == Layout::kn) kn_run(g, n0, n1);
  else nk_run(g, n0, n1);
}

}  // namespace

namespace RLHF_ISA {
void rows_gemm(const RowsGemm& g, int64_t n0, int64_t n1) { run(g, n0, n1); }
}  // namespace RLHF_ISA

}  // namespace rlhf::kernels
