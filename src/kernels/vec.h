// Vector helpers for the kernels, written with GCC vector extensions: each kernels_<isa>.cpp defines RLHF_VW
// (floats per vector register) and includes this file, so one source compiles to AVX-512, AVX2 and SSE code.
// Everything here has internal linkage (an unnamed namespace), and nothing calls an inline function from another
// header: a weak symbol compiled with -mavx512f in one unit could otherwise be picked by the linker for all.
#pragma once
#include <cstdint>
#include <utility>

#ifndef RLHF_VW
#error "define RLHF_VW before including kernels/vec.h"
#endif

namespace rlhf::kernels {
namespace {

constexpr int VW = RLHF_VW;
// may_alias + aligned(4): loads and stores of float arrays at any 4-byte boundary.
typedef float vf __attribute__((vector_size(VW * sizeof(float)), aligned(4), may_alias));

typedef int32_t vi __attribute__((vector_size(VW * sizeof(int32_t))));

inline vf vload(const float* p) { return *reinterpret_cast<const vf*>(p); }
inline void vstore(float* p, vf v) { *reinterpret_cast<vf*>(p) = v; }
inline vf vsplat(float s) {
  vf v = {};
  return v + s;
}
// Sum of the lanes by halving: (l0 + l8) + (l4 + l12) ... for VW = 16; log2(VW) vector adds.
inline float hsum(vf v) {
  float a[VW];
  __builtin_memcpy(a, &v, sizeof v);
  for (int w = VW / 2; w >= 1; w /= 2)
    for (int i = 0; i < w; ++i) a[i] += a[i + w];
  return a[0];
}

// Lane sums of VW accumulators at once: v[0..VW) -> one vector whose lane i is the sum of v[i]'s lanes, in the
// same order as hsum (lanes i and i + VW/2 first, then i and i + VW/4, ...), so a result does not depend on whether
// a full tile or a tail computed it. Each level folds pairs: [t | u] with every group of G lanes halved.
template <int G, bool kHi>
constexpr int fold_index(int i) {
  const int half = G / 2, group = i / half, lane = i % half, groups_per_vec = VW / G;
  const int src = group < groups_per_vec ? group * G : VW + (group - groups_per_vec) * G;
  return src + lane + (kHi ? half : 0);
}
template <int G, int... I>
inline vf fold_pair(vf t, vf u, std::integer_sequence<int, I...>) {
  return __builtin_shufflevector(t, u, fold_index<G, false>(I)...) +
         __builtin_shufflevector(t, u, fold_index<G, true>(I)...);
}
template <int G>
inline void fold_levels(vf* v, int n) {
  if constexpr (G >= 2) {
    for (int j = 0; j < n / 2; ++j) v[j] = fold_pair<G>(v[2 * j], v[2 * j + 1], std::make_integer_sequence<int, VW>{});
    fold_levels<G / 2>(v, n / 2);
  }
}
inline vf reduce_lanes(vf* v) {  // destroys v
  fold_levels<VW>(v, VW);
  return v[0];
}

// e^x per lane (Cephes' expf: x = n·ln2 + r, |r| <= ln2/2, a degree-6 polynomial for e^r, times 2^n), relative
// error about 2 ulp; 0 below -87.3 (where float32's e^x underflows), inf above 88.7.
inline vf vexp(vf x) {
  const vf hi = vsplat(88.7228f), lo = vsplat(-87.3365f);
  const vi under = x < lo, over = x > hi;
  x = x > hi ? hi : x;
  x = x < lo ? lo : x;
  const vf t = x * 1.44269504088896341f + 0.5f;
  vf fx = __builtin_convertvector(__builtin_convertvector(t, vi), vf);  // trunc, then floor:
  fx -= __builtin_convertvector((fx > t) & 1, vf);
  x -= fx * 0.693359375f;
  x -= fx * -2.12194440e-4f;
  const vf z = x * x;
  vf y = vsplat(1.9875691500e-4f);
  y = y * x + 1.3981999507e-3f;
  y = y * x + 8.3334519073e-3f;
  y = y * x + 4.1665795894e-2f;
  y = y * x + 1.6666665459e-1f;
  y = y * x + 5.0000001201e-1f;
  y = y * z + x + 1.0f;
  const vi pow2 = (__builtin_convertvector(fx, vi) + 127) << 23;  // 2^n as float bits, n in [-126, 127]
  vf r = y * reinterpret_cast<const vf&>(pow2);
  r = under ? vsplat(0.0f) : r;
  return over ? vsplat(__builtin_inff()) : r;
}

}  // namespace
}  // namespace rlhf::kernels
