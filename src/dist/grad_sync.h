// Data parallel's two tensor exchanges, on dist::World:
//
//   start:  θ ← θ_rank0                       (broadcast_parameters: every rank begins from rank 0's weights)
//   step:   g ← Σ_r g_r                        (all_reduce_gradients, after the last micro-batch's backward)
//
// Each rank scales its loss by its share of the global batch before backward (train/loop.cpp: w_r / Σ w), so
// the sum is the gradient of the global batch's mean loss, the same as one process with the whole batch.
// The gradients are copied into flat buckets of about --dist-bucket-mb (same dtype and device), one all-reduce
// per bucket, all in flight together, and copied back; all_reduce_gradients_reference does one tensor at a time
// (the slow, obvious version the tests pin the buckets to).
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <vector>

#include "dist/world.h"

namespace rlhf::dist {

// A parameter without a gradient gets a zero one first, so that every rank reduces the same tensors.
void all_reduce_gradients(World& world, const std::vector<torch::Tensor>& params, int64_t bucket_bytes);
void all_reduce_gradients_reference(World& world, const std::vector<torch::Tensor>& params);
void broadcast_parameters(World& world, const std::vector<torch::Tensor>& params, int root = 0);

// The buckets all_reduce_gradients forms: consecutive runs of params (indices) with the same dtype and device,
// each closed once it holds >= bucket_bytes (a tensor larger than that is a bucket on its own).
std::vector<std::vector<size_t>> gradient_buckets(const std::vector<torch::Tensor>& params, int64_t bucket_bytes);

}  // namespace rlhf::dist
