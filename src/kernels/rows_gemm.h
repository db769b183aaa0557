// Matrix products with few rows, for decoding: y (M, N) = x (M, K) · W + b with M small (the batch of one decode
// step) and W a weight matrix in one of the two layouts checkpoints store:
//
//   kn: W is (K, N), row-major: y[m,n] = b[n] + Σ_k x[m,k]·W[k,n]   (GPT-2's Conv1D, stored (in, out))
//   nk: W is (N, K), row-major: y[m,n] = b[n] + Σ_k x[m,k]·W[n,k]   (nn.Linear, stored (out, in); tied lm_head)
//
// Why not BLAS: with M = 8 rows OpenBLAS's sgemm spends most of its time packing W into its panel layout before
// every call (perf: sgemm_itcopy/incopy ≈ 2x the kernel time on gpt2-tiny decoding). These kernels stream W once,
// straight from its stored layout, with M rows of accumulators in vector registers.
//
// Plain C++ without torch; one translation unit per instruction set (AVX-512, AVX2+FMA, baseline) compiled from
// rows_gemm_impl.h, chosen at run time by CPUID (dispatch.cpp). Columns [n0, n1) only, so callers can split N
// across threads; with n0 a multiple of 64 every y[m,n] is computed by the same code in the same order (bias, then
// k ascending within vector lanes) whatever the split. (A single-column tail may round differently from a vector
// block where the compiler fuses multiply-adds in one and not the other.)
// The slow reference, rows_gemm_reference(), is one double loop; tests pin the kernels to it and to torch.
#pragma once
#include <cstdint>

namespace rlhf::kernels {

enum class Layout { kn, nk };

struct RowsGemm {
  const float* x;  // (M, K), row stride ldx
  int64_t M, K, ldx;
  const float* w;  // (K, N) for kn, (N, K) for nk; contiguous
  int64_t N;
  const float* b;  // (N) or nullptr
  float* y;        // (M, N), row stride ldy
  int64_t ldy;
  Layout layout;
};

// Computes columns [n0, n1) of y with the best kernel this CPU runs.
void rows_gemm(const RowsGemm& g, int64_t n0, int64_t n1);
// The same in a plain loop (double accumulation), for tests.
void rows_gemm_reference(const RowsGemm& g, int64_t n0, int64_t n1);
// "avx512", "avx2" or "baseline": which instruction set the kernels use on this CPU.
const char* kernels_isa();

// Per instruction set (kernels_{avx512,avx2,baseline}.cpp); call only where the CPU has the instructions.
namespace avx512 { void rows_gemm(const RowsGemm& g, int64_t n0, int64_t n1); }
namespace avx2 { void rows_gemm(const RowsGemm& g, int64_t n0, int64_t n1); }
namespace baseline { void rows_gemm(const RowsGemm& g, int64_t n0, int64_t n1); }

}  // namespace rlhf::kernels
