// The kernel of decode_attention.h, compiled once per instruction set by kernels_<isa>.cpp (see vec.h).
#include <cmath>

#include "kernels/decode_attention.h"
#include "kernels/vec.h"

namespace rlhf::kernels {
namespace {

// s[j] = q·k_j over D for keys [0, S): VW keys at a time, their lane sums in one reduce_lanes, which sums in
// hsum's order, so tail keys (hsum) get the same bits; then the D tail, if D is not a multiple of VW.
inline void scores(const float* q, const float* k, int64_t k_ss, int64_t S, int64_t D, float* s) {
  const int64_t Dv = D - D % VW;
  int64_t j = 0;
  for (; j + VW <= S; j += VW) {
    vf v[VW];
    for (int i = 0; i < VW; ++i) {
      const float* kj = k + (j + i) * k_ss;
      vf acc = vsplat(0.0f);
      for (int64_t d = 0; d < Dv; d += VW) acc += vload(q + d) * vload(kj + d);
      v[i] = acc;
    }
    const vf red = reduce_lanes(v);
    for (int i = 0; i < VW; ++i) s[j + i] = red[i];
  }
  for (; j < S; ++j) {
    const float* kj = k + j * k_ss;
    vf acc = vsplat(0.0f);
    for (int64_t d = 0; d < Dv; d += VW) acc += vload(q + d) * vload(kj + d);
    s[j] = hsum(acc);
  }
  if (Dv < D)
    for (j = 0; j < S; ++j)
      for (int64_t d = Dv; d < D; ++d) s[j] += q[d] * k[j * k_ss + d];
}

// o[0, NV·VW) = Σ_j p[j] · v_j[0, NV·VW), accumulated in registers.
template <int NV>
inline void weighted_sum(const float* p, const float* v, int64_t v_ss, int64_t S, float* o) {
  vf acc[NV];
  for (int c = 0; c < NV; ++c) acc[c] = vsplat(0.0f);
  for (int64_t j = 0; j < S; ++j) {
    const float pj = p[j];
    const float* vj = v + j * v_ss;
    for (int c = 0; c < NV; ++c) acc[c] += pj * vload(vj + c * VW);
  }
  for (int c = 0; c < NV; ++c) vstore(o + c * VW, acc[c]);
}

// s[j] <- softmax_j(s[j] · scale + bias[j]) over j < S, VW keys at a time (vexp), the tail one by one.
inline void softmax(float* s, const float* bias, float scale, int64_t S) {
  const int64_t Sv = S - S % VW;
  vf vmx = vsplat(-__builtin_inff());
  for (int64_t j = 0; j < Sv; j += VW) {
    const vf x = vload(s + j) * scale + vload(bias + j);
    vstore(s + j, x);
    vmx = x > vmx ? x : vmx;
  }
  float mx = -__builtin_inff();
  for (int i = 0; i < VW; ++i) mx = vmx[i] > mx ? vmx[i] : mx;
  for (int64_t j = Sv; j < S; ++j) {
    s[j] = s[j] * scale + bias[j];
    mx = s[j] > mx ? s[j] : mx;
  }
  vf vsum = vsplat(0.0f);
  for (int64_t j = 0; j < Sv; j += VW) {
    const vf e = vexp(vload(s + j) - mx);
    vstore(s + j, e);
    vsum += e;
  }
  float sum = hsum(vsum);
  if (Sv < S) {
    float tail[VW] = {};
    for (int64_t j = Sv; j < S; ++j) tail[j - Sv] = s[j] - mx;
    const vf e = vexp(vload(tail));
    for (int64_t j = Sv; j < S; ++j) sum += (s[j] = e[j - Sv]);
  }
  const float inv = 1.0f / sum;
  for (int64_t j = 0; j < S; ++j) s[j] *= inv;
}

void attend_rows(const DecodeAttention& a, int64_t b0, int64_t b1) {
  const int64_t S = a.S, D = a.D, n_rep = a.H / a.Hkv, Dv = D - D % VW;
  const float scale = 1.0f / __builtin_sqrtf(static_cast<float>(D));
  for (int64_t b = b0; b < b1; ++b) {
    float* s = a.scratch + b * S;
    const float* bias = a.bias + b * a.bias_sb;
    for (int64_t h = 0; h < a.H; ++h) {
      const int64_t g = h / n_rep;
      const float* q = a.q + b * a.q_sb + h * a.q_sh;
      const float* k = a.k + b * a.k_sb + g * a.k_sh;
      const float* v = a.v + b * a.v_sb + g * a.v_sh;
      scores(q, k, a.k_ss, S, D, s);
      softmax(s, bias, scale, S);
      float* o = a.out + b * a.H * D + h * D;
      int64_t d = 0;
      for (; d + 8 * VW <= Dv; d += 8 * VW) weighted_sum<8>(s, v + d, a.v_ss, S, o + d);
      switch ((Dv - d) / VW) {
        case 7: weighted_sum<7>(s, v + d, a.v_ss, S, o + d); break;
        case 6: weighted_sum<6>(s, v + d, a.v_ss, S, o + d); break;
        case 5: weighted_sum<5>(s, v + d, a.v_ss, S, o + d); break;
        case 4: weighted_sum<4>(s, v + d, a.v_ss, S, o + d); break;
        case 3: weighted_sum<3>(s, v + d, a.v_ss, S, o + d); break;
        case 2: weighted_sum<2>(s, v + d, a.v_ss, S, o + d); break;
        case 1: weighted_sum<1>(s, v + d, a.v_ss, S, o + d); break;
        default: break;
      }
      for (d = Dv; d < D; ++d) {
        float od = 0.0f;
        for (int64_t j = 0; j < S; ++j) od += s[j] * v[j * a.v_ss + d];
        o[d] = od;
      }
    }
  }
}

}  // namespace

namespace RLHF_ISA {
void decode_attention(const DecodeAttention& a, int64_t b0, int64_t b1) { attend_rows(a, b0, b1); }
}  // namespace RLHF_ISA

}  // namespace rlhf::kernels
