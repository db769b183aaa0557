// The CPU kernels compiled for avx512 (-mavx512f -mavx2 -mfma; see CMakeLists.txt), 16 floats per vector.
#define RLHF_VW 16
#define RLHF_ISA avx512
#include "kernels/decode_attention_impl.h"
#include "kernels/rows_gemm_impl.h"
