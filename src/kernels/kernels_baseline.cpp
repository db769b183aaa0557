// The CPU kernels compiled for baseline (the default flags; see CMakeLists.txt), 4 floats per vector.
#define RLHF_VW 4
#define RLHF_ISA baseline
#include "kernels/decode_attention_impl.h"
#include "kernels/rows_gemm_impl.h"
