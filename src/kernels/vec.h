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

}  // namespace
}  // namespace rlhf::kernels
