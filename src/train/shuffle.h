// Seeded orders of a dataset: the shuffle and the length-bucketed batches of train/batching.h (no torch, so the
// data readers and their fuzz targets build without libtorch).
#pragma once
#include <cstdint>
#include <vector>

namespace rlhf::train {

// A seeded Fisher-Yates shuffle of 0..n-1 (std::mt19937_64 with seed ^ epoch mixing; the same on every platform).
std::vector<int64_t> shuffled_indices(int64_t n, uint64_t seed, int64_t epoch);

// Batches of example indices. lengths[i]: the length of example i. shuffle = false: in order, no bucketing.
// bucket_batches = 1 disables bucketing. The last batch may be smaller (drop_last drops it).
std::vector<std::vector<int64_t>> make_batches(const std::vector<int64_t>& lengths, int64_t batch_size,
                                               uint64_t seed, int64_t epoch, bool shuffle = true,
                                               int64_t bucket_batches = 50, bool drop_last = false);

}  // namespace rlhf::train
