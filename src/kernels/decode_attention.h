// Attention of one new token per row against the KV cache (a decode step, T = 1), float32 on the CPU:
//
//   s_j  = q[b,h]·k[b,g,j] / sqrt(D) + bias[b,j]          g = h / (H / Hkv) (grouped-query heads), j < S
//   out[b, h·D + d] = Σ_j softmax(s)_j · v[b,g,j,d]
//
// The same math as layers.h attention() with T = 1, in one pass per (row, head) with no (B, H, 1, S) temporaries:
// a decode step otherwise spends more in the ~8 tensor ops per layer than in their arithmetic. The bias is the
// additive key mask of attention_bias() (0, or the lowest float where a key is padding).
#pragma once
#include <cstdint>

namespace rlhf::kernels {

struct DecodeAttention {
  const float* q;  // (B, H, D): element (b, h, d) at b·q_sb + h·q_sh + d
  int64_t q_sb, q_sh;
  const float* k;  // (B, Hkv, S, D): element (b, g, j, d) at b·k_sb + g·k_sh + j·k_ss + d
  int64_t k_sb, k_sh, k_ss;
  const float* v;  // (B, Hkv, S, D), likewise
  int64_t v_sb, v_sh, v_ss;
  const float* bias;  // (B, S): element (b, j) at b·bias_sb + j
  int64_t bias_sb;
  float* out;      // (B, H·D), contiguous
  float* scratch;  // (B, S) floats of working space
  int64_t B, H, Hkv, S, D;
};

constexpr int64_t kDecodeAttentionMaxHeadDim = 512;

// Rows [b0, b1) with the best kernel for this CPU (D <= kDecodeAttentionMaxHeadDim).
void decode_attention(const DecodeAttention& a, int64_t b0, int64_t b1);
// Plain loops in double, for tests.
void decode_attention_reference(const DecodeAttention& a, int64_t b0, int64_t b1);

namespace avx512 { void decode_attention(const DecodeAttention& a, int64_t b0, int64_t b1); }
namespace avx2 { void decode_attention(const DecodeAttention& a, int64_t b0, int64_t b1); }
namespace baseline { void decode_attention(const DecodeAttention& a, int64_t b0, int64_t b1); }

}  // namespace rlhf::kernels
