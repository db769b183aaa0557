// One tokenized example as the trainers see it (no torch: the data readers build without libtorch).
#pragma once
#include <cstdint>
#include <vector>

namespace rlhf::train {

// One token sequence with its loss mask (1 = a token the loss covers).
struct TokenSeq {
  std::vector<int64_t> ids;
  std::vector<uint8_t> loss_mask;  // empty = all 1
};

}  // namespace rlhf::train
