// The CPU fast paths of decoding, with libtorch as the reference and fallback.
//
// Linear layers for the two weight layouts of checkpoints, fast for the few rows of a decode step:
//
//   linear_kn: y = x·W + b,  W (K, N)  (GPT-2's Conv1D, stored (in, out))
//   linear_nk: y = x·Wᵀ + b, W (N, K)  (nn.Linear, stored (out, in); the lm_head / tied embedding)
//   x (..., K) -> y (..., N); b (N) or undefined.
//
// Float32 products on the CPU with at most kRowsKernelMaxRows rows and no autograd go to kernels/rows_gemm (W read
// straight from its stored layout, no BLAS packing; columns split across threads); everything else to
// torch::addmm / torch::linear.
//
// Attention of a decode step (one query per row) goes to kernels/decode_attention under the same conditions.
//
// Each fast path agrees with libtorch to float32 rounding (tests/test_decode_kernels.cpp). All of them, and the
// exact sampler of sampling.h, are off after set_fast_cpu_kernels(false) (`rlhf bench --reference-kernels`), to
// check that results do not change: the same seed gives the same tokens either way.
#pragma once
#include <torch/torch.h>

namespace rlhf {

constexpr int64_t kRowsKernelMaxRows = 32;  // gpt2-tiny decode: 2x OpenBLAS at 32 rows, even at 64

torch::Tensor linear_kn(const torch::Tensor& x, const torch::Tensor& w_kn, const torch::Tensor& b);
torch::Tensor linear_nk(const torch::Tensor& x, const torch::Tensor& w_nk, const torch::Tensor& b);

// q (B, H, 1, D), k/v (B, Hkv, S, D), bias (B, 1, 1, S) -> (B, 1, H·D); undefined when the fast path does not
// apply (then use layers.h attention()).
torch::Tensor decode_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                               const torch::Tensor& bias);

// RMSNorm over the last dim, y = w · x / sqrt(mean(x²) + eps), and RoPE, y = x·cos + rotate_half(x)·sin with
// x (B, H, T, D) and cos/sin (B, 1, T, D), for tensors of at most kSmallOpElements: one loop each instead of the
// 7 and 6 libtorch ops of layers.cpp (Llama's decode step runs 9 norms and 8 rotations). Undefined when the fast
// path does not apply.
constexpr int64_t kSmallOpElements = 1 << 16;
torch::Tensor small_rms_norm(const torch::Tensor& x, const torch::Tensor& weight, double eps);
torch::Tensor small_rope(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin);

// Process-wide switch (default on), for A/B checks of the fast paths against libtorch.
void set_fast_cpu_kernels(bool on);
bool fast_cpu_kernels();

}  // namespace rlhf
