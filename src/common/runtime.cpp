#include "common/runtime.h"

#include <dlfcn.h>
#include <unistd.h>

#include <cstdlib>
#include <thread>

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
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  torch::set_num_threads(threads);
  // OpenBLAS, when it is the BLAS behind libtorch: set its pool to the same size.
  using SetFn = void (*)(int);
  if (auto fn = reinterpret_cast<SetFn>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) fn(threads);
}

void ensure_passive_openmp(int argc, char** argv) {
  (void)argc;
  if (std::getenv("OMP_WAIT_POLICY") != nullptr) return;
  ::setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
  ::execv("/proc/self/exe", argv);
  // exec failed (no /proc?): carry on with the default policy.
}

}  // namespace rlhf
