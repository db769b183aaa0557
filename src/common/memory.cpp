#include "common/memory.h"

#include <sys/resource.h>

#include <cmath>
#include <sstream>

#ifdef RLHF_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#endif

namespace rlhf {

namespace {
double round1(double x) { return std::round(x * 10.0) / 10.0; }
}  // namespace

double peak_rss_mb() {
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  return round1(static_cast<double>(ru.ru_maxrss) / 1024.0);  // Linux: kilobytes
}

double peak_cuda_allocated_mb() {
#ifdef RLHF_CUDA
  // Asking the allocator for a device's stats does not create a CUDA context; a device never used reports 0.
  const int n = static_cast<int>(c10::cuda::device_count());
  double bytes = 0;
  bool used = false;
  for (int d = 0; d < n; ++d) {
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(static_cast<c10::DeviceIndex>(d));
    const auto peak = stats.allocated_bytes[0].peak;  // StatType::AGGREGATE
    if (peak > 0) used = true;
    bytes += static_cast<double>(peak);
  }
  if (used) return round1(bytes / (1024.0 * 1024.0));
#endif
  return -1.0;
}

std::vector<std::pair<std::string, double>> memory_metrics() {
  std::vector<std::pair<std::string, double>> m = {{"peak_rss_mb", peak_rss_mb()}};
  const double cuda = peak_cuda_allocated_mb();
  if (cuda >= 0) m.emplace_back("peak_cuda_allocated_mb", cuda);
  return m;
}

std::string memory_summary() {
  std::ostringstream s;
  s << "peak RSS " << peak_rss_mb() << " MiB";
  const double cuda = peak_cuda_allocated_mb();
  if (cuda >= 0) s << ", peak CUDA allocated " << cuda << " MiB";
  return s.str();
}

}  // namespace rlhf
