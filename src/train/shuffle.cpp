#include "train/shuffle.h"

#include <algorithm>
#include <random>

#include "common/error.h"

namespace rlhf::train {

namespace {
std::mt19937_64 make_rng(uint64_t seed, int64_t epoch) {
  // splitmix-style mixing so that (seed, epoch) pairs give unrelated streams.
  uint64_t z = seed + 0x9E3779B97F4A7C15ull * static_cast<uint64_t>(epoch + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return std::mt19937_64(z ^ (z >> 31));
}

template <typename T>
void fisher_yates(std::vector<T>& v, std::mt19937_64& rng) {
  for (size_t i = v.size(); i > 1; --i) {
    const size_t j = static_cast<size_t>(rng() % i);  // modulo bias is negligible for dataset sizes
    std::swap(v[i - 1], v[j]);
  }
}
}  // namespace

std::vector<int64_t> shuffled_indices(int64_t n, uint64_t seed, int64_t epoch) {
  std::vector<int64_t> idx(n);
  for (int64_t i = 0; i < n; ++i) idx[i] = i;
  auto rng = make_rng(seed, epoch);
  fisher_yates(idx, rng);
  return idx;
}

std::vector<std::vector<int64_t>> make_batches(const std::vector<int64_t>& lengths, int64_t batch_size,
                                               uint64_t seed, int64_t epoch, bool shuffle, int64_t bucket_batches,
                                               bool drop_last) {
  RLHF_CHECK(batch_size > 0, "batch size must be > 0, got ", batch_size);
  const int64_t n = static_cast<int64_t>(lengths.size());
  std::vector<int64_t> order;
  if (shuffle) order = shuffled_indices(n, seed, epoch);
  else
    for (int64_t i = 0; i < n; ++i) order.push_back(i);
  if (shuffle && bucket_batches > 1) {
    const int64_t chunk = batch_size * bucket_batches;
    for (int64_t s = 0; s < n; s += chunk) {
      auto b = order.begin() + s, e = order.begin() + std::min(n, s + chunk);
      std::stable_sort(b, e, [&](int64_t x, int64_t y) { return lengths[x] < lengths[y]; });
    }
  }
  std::vector<std::vector<int64_t>> batches;
  for (int64_t s = 0; s < n; s += batch_size) {
    std::vector<int64_t> b(order.begin() + s, order.begin() + std::min(n, s + batch_size));
    if (drop_last && static_cast<int64_t>(b.size()) < batch_size) continue;
    batches.push_back(std::move(b));
  }
  if (shuffle && bucket_batches > 1) {
    auto rng = make_rng(seed ^ 0x5bd1e995ull, epoch);
    fisher_yates(batches, rng);
  }
  return batches;
}

}  // namespace rlhf::train
