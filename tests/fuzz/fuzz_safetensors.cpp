// libFuzzer target: the safetensors header (io/safetensors_header.h), the code every model and checkpoint load
// runs on a file's first bytes. Input: a whole file.
// Checks beyond no crash / no report: errors are rlhf::Error; every accepted tensor lies inside the data section,
// spans exactly numel × dtype size bytes, and no two non-empty tensors overlap.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "fuzz_util.h"
#include "io/safetensors_header.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::clear_error_or_abort("fuzz_safetensors", [&] {
    auto h = rlhf::io::parse_safetensors_header(data, size, "fuzz.safetensors");
    if (8 + h.header_len + h.data_size != size) std::abort();
    std::vector<std::pair<uint64_t, uint64_t>> spans;
    for (const auto& [name, info] : h.infos) {
      unsigned __int128 bytes = rlhf::io::safetensors_dtype_size(info.dtype);
      for (int64_t d : info.shape) {
        if (d < 0) std::abort();
        bytes *= static_cast<uint64_t>(d);
      }
      if (info.begin > info.end || info.end > h.data_size || bytes != info.end - info.begin) std::abort();
      if (info.end > info.begin) spans.emplace_back(info.begin, info.end);
    }
    std::sort(spans.begin(), spans.end());
    for (size_t i = 1; i < spans.size(); ++i)
      if (spans[i - 1].second > spans[i].first) std::abort();
  });
  return 0;
}
