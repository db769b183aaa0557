#include "dist/grad_sync.h"

#include <torch/torch.h>

namespace rlhf::dist {

namespace {
torch::Tensor& grad_of(const torch::Tensor& p) {
  auto& g = const_cast<torch::Tensor&>(p).mutable_grad();
  if (!g.defined()) g = torch::zeros_like(p);
  return g;
}
}  // namespace

std::vector<std::vector<size_t>> gradient_buckets(const std::vector<torch::Tensor>& params, int64_t bucket_bytes) {
  std::vector<std::vector<size_t>> out;
  int64_t bytes = 0;
  for (size_t i = 0; i < params.size(); ++i) {
    const auto& p = params[i];
    const bool fits = !out.empty() && bytes < bucket_bytes && params[out.back().front()].dtype() == p.dtype() &&
                      params[out.back().front()].device() == p.device();
    if (!fits) {
      out.emplace_back();
      bytes = 0;
    }
    out.back().push_back(i);
    bytes += p.numel() * static_cast<int64_t>(p.element_size());
  }
  return out;
}

void all_reduce_gradients(World& world, const std::vector<torch::Tensor>& params, int64_t bucket_bytes) {
  if (!world.distributed()) return;
  torch::NoGradGuard ng;
  const auto buckets = gradient_buckets(params, bucket_bytes);
  std::vector<torch::Tensor> flat;
  for (const auto& b : buckets) {
    std::vector<torch::Tensor> parts;
    for (auto i : b) parts.push_back(grad_of(params[i]).reshape({-1}));
    flat.push_back(torch::cat(parts).contiguous());
  }
  world.all_reduce_sum(flat, "gradients (" + std::to_string(buckets.size()) + " buckets)");
  for (size_t k = 0; k < buckets.size(); ++k) {
    int64_t off = 0;
    for (auto i : buckets[k]) {
      auto& g = grad_of(params[i]);
      g.copy_(flat[k].narrow(0, off, g.numel()).view_as(g));
      off += g.numel();
    }
  }
}

void all_reduce_gradients_reference(World& world, const std::vector<torch::Tensor>& params) {
  if (!world.distributed()) return;
  torch::NoGradGuard ng;
  for (const auto& p : params) {
    std::vector<torch::Tensor> one{grad_of(p).contiguous()};
    world.all_reduce_sum(one, "gradient");
    grad_of(p).copy_(one[0]);
  }
}

void broadcast_parameters(World& world, const std::vector<torch::Tensor>& params, int root) {
  if (!world.distributed()) return;
  torch::NoGradGuard ng;
  std::vector<torch::Tensor> flat;
  for (const auto& b : gradient_buckets(params, int64_t{25} << 20)) {
    std::vector<torch::Tensor> parts;
    for (auto i : b) parts.push_back(params[i].detach().reshape({-1}));
    flat.push_back(torch::cat(parts).contiguous());
    world.broadcast(flat, root, "parameters from rank " + std::to_string(root));
    int64_t off = 0;
    for (auto i : b) {
      auto p = params[i].detach();
      p.copy_(flat[0].narrow(0, off, p.numel()).view_as(p));
      off += p.numel();
    }
    flat.clear();
  }
}

}  // namespace rlhf::dist
