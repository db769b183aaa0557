#include "common/runtime.h"

#include "common/worker_pool.h"

#include <dlfcn.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <thread>

#include <torch/cuda.h>
#include <torch/version.h>

#include "common/error.h"

namespace rlhf {

torch::Device resolve_device(const std::string& name) {
  if (name == "auto") return torch::cuda::is_available() ? torch::Device(torch::kCUDA) : torch::Device(torch::kCPU);
  if (name == "cpu") return torch::kCPU;
  if (name.rfind("cuda", 0) == 0) {
    RLHF_CHECK(torch::cuda::is_available(), "--device ", name,
               ": CUDA is not available in this build or machine (use --device cpu)");
    return torch::Device(name);
  }
  fail("--device ", name, ": unknown device (use auto, cpu, cuda or cuda:N)");
}

void set_threads(int threads) {
  if (threads <= 0) {
    // OMP_NUM_THREADS when set (torchrun sets it to 1 per process), as libtorch itself does; else all cores.
    const char* omp = std::getenv("OMP_NUM_THREADS");
    threads = omp ? std::atoi(omp) : 0;
    if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  }
  torch::set_num_threads(threads);
  WorkerPool::get().resize(threads);  // the decode kernels' helpers (decode_kernels.h)
  // OpenBLAS, when it is the BLAS behind libtorch: set its pool to the same size.
  using SetFn = void (*)(int);
  if (auto fn = reinterpret_cast<SetFn>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) fn(threads);
}

namespace {
// Debian's OpenBLAS (DYNAMIC_ARCH) picks its kernels from the CPUID model; on CPUs it does not know (VMs that
// report a generic "Intel Xeon Processor") it falls back to Prescott's SSE3 kernels: sgemm at 20 GFLOP/s where
// the SkylakeX AVX-512 kernels give 94 on the 2-core development VM (3x faster training steps). Returns the core
// to ask for through OPENBLAS_CORETYPE (read when the library loads), or null to leave OpenBLAS's own choice.
const char* openblas_core_override() {
  using NameFn = char* (*)();
  auto fn = reinterpret_cast<NameFn>(dlsym(RTLD_DEFAULT, "openblas_get_corename"));
  if (!fn || !fn()) return nullptr;
  const std::string core = fn();
  if (core != "Prescott" && core != "prescott" && core != "Core2" && core != "core2") return nullptr;
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
    return "SkylakeX";
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
  return nullptr;
}
}  // namespace

void ensure_passive_openmp(int argc, char** argv) {
  (void)argc;
  bool changed = false;
  if (std::getenv("OMP_WAIT_POLICY") == nullptr) {
    ::setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
    changed = true;
  }
  // A value the user set wins (OPENBLAS_CORETYPE=Prescott restores the old kernels).
  if (std::getenv("OPENBLAS_CORETYPE") == nullptr) {
    if (const char* core = openblas_core_override()) {
      ::setenv("OPENBLAS_CORETYPE", core, 1);
      changed = true;
    }
  }
  if (!changed) return;
  ::execv("/proc/self/exe", argv);
  // exec failed (no /proc?): carry on with the defaults.
}

std::string build_info() {
#ifdef RLHF_CUDA
  const char* cuda = "yes";  // linked against libtorch_cuda (CMake: RLHF_CUDA)
#else
  const char* cuda = "no";
#endif
  return cat("rlhf 0.1.0 (libtorch ", TORCH_VERSION, ", CUDA compiled in: ", cuda,
             ", CUDA devices: ", static_cast<int>(torch::cuda::device_count()), ")");  // an int8 in 2.x
}

}  // namespace rlhf
