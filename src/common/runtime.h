// Process-wide runtime settings, applied once in main: threads (torch intra-op, OpenBLAS) and the device.
#pragma once
#include <torch/types.h>

#include <string>

namespace rlhf {

// "auto" -> cuda when available, else cpu; "cpu"; "cuda"; "cuda:N". Errors list what is available.
torch::Device resolve_device(const std::string& name);

// threads <= 0: OMP_NUM_THREADS when set, else all cores. Sets torch's intra-op threads and OpenBLAS's (Debian's OpenBLAS ignores torch's
// setting and would otherwise spin up its own pool that fights torch's for the same cores).
void set_threads(int threads);

// Before main does anything: if OMP_WAIT_POLICY is unset, set it to PASSIVE and re-exec, because libgomp reads
// it when it loads (before main). Spinning OpenMP workers made small models 3-4x slower on 2 cores.
// Likewise OPENBLAS_CORETYPE, when unset and OpenBLAS fell back to its generic Prescott/Core2 kernels on a CPU
// with AVX-512 (SkylakeX) or AVX2 (Haswell): a value the user set always wins.
void ensure_passive_openmp(int argc, char** argv);

// What this binary was built against and what it sees, for `rlhf --version` and bug reports:
// "rlhf 0.1.0 (libtorch 2.11.0, CUDA compiled in: yes, CUDA devices: 0)".
std::string build_info();

}  // namespace rlhf
