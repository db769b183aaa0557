// The CPU kernels compiled for avx2 (-mavx2 -mfma; see CMakeLists.txt), 8 floats per vector.
#define RLHF_VW 8
#define RLHF_ISA avx2
#include "kernels/decode_attention_impl.h"
#include "kernels/rows_gemm_impl.h"
