// Peak memory of this process, for every training command's metrics and summary and for `rlhf bench`.
//   peak RSS: getrusage's ru_maxrss (the high-water mark of resident memory: weights, optimizer state, activations,
//             allocator slack and the libraries themselves), in MiB.
//   CUDA:     the caching allocator's peak of allocated bytes on each device used (what tensors held at most, not
//             what the allocator reserved), in MiB; absent when this binary has no CUDA or no device was touched.
#pragma once
#include <string>
#include <utility>
#include <vector>

namespace rlhf {

double peak_rss_mb();

// Peak allocated MiB summed over the CUDA devices; < 0 when there is no CUDA in this build or it was not used.
double peak_cuda_allocated_mb();

// {"peak_rss_mb", x} and, when CUDA was used, {"peak_cuda_allocated_mb", y}: the pairs every metrics line and
// summary carries.
std::vector<std::pair<std::string, double>> memory_metrics();

// "peak RSS 1234.5 MiB" (+ ", peak CUDA allocated 567.8 MiB"): for the closing line of a command.
std::string memory_summary();

}  // namespace rlhf
