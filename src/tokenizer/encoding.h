// Encoding: the ids of a text and, for each, the byte range [begin, end) of the input it came from.
// Added and special tokens found in the text have their own span; tokens added by the post-processor have (0, 0).
#pragma once
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace rlhf::tok {

struct Encoding {
  std::vector<int32_t> ids;
  std::vector<std::pair<size_t, size_t>> offsets;
};

}  // namespace rlhf::tok
