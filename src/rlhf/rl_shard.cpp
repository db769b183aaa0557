#include "rlhf/rl_shard.h"

#include <torch/torch.h>

#include "common/error.h"

namespace rlhf {

RLShard::RLShard(dist::World* world, int64_t batch_size, int64_t G) : world_(world), rows_(batch_size * G), G_(G) {
  const int64_t W = ranks(), r = world_ ? world_->rank() : 0;
  RLHF_CHECK(batch_size >= W, "a batch of ", batch_size, " prompts cannot be split over ", W,
             " ranks: raise --batch-size (the prompts of one iteration, over all ranks) to at least ", W);
  plo_ = batch_size * r / W;
  phi_ = batch_size * (r + 1) / W;
}

torch::Tensor RLShard::gather_rows(const torch::Tensor& local, const std::string& what, int64_t width) const {
  RLHF_CHECK(local.size(0) == local_rows(), "gather_rows(", what, "): ", local.size(0), " rows, this rank owns ",
             local_rows());
  auto x = local.to(torch::kFloat32);
  if (width > 0 && x.dim() == 2 && x.size(1) < width)
    x = torch::cat({x, torch::zeros({x.size(0), width - x.size(1)}, x.options())}, 1);
  if (!distributed()) return x;
  auto sizes = x.sizes().vec();
  sizes[0] = rows_;
  auto all = torch::zeros(sizes, x.options());
  all.narrow(0, row_lo(), local_rows()).copy_(x);
  std::vector<torch::Tensor> one{all};
  world_->all_reduce_sum(one, what);
  return all;
}

std::vector<double> RLShard::gather_values(const std::vector<double>& values, const std::string& what) const {
  if (!distributed()) return values;
  const int64_t k = static_cast<int64_t>(values.size());
  auto all = torch::zeros({ranks(), k}, torch::kFloat64);
  if (k > 0) all[world_->rank()].copy_(torch::tensor(values, torch::kFloat64));
  std::vector<torch::Tensor> one{all};
  world_->all_reduce_sum(one, what);
  auto c = all.contiguous();
  return {c.data_ptr<double>(), c.data_ptr<double>() + c.numel()};
}

std::vector<double> RLShard::sum(std::vector<double> values, const std::string& what) const {
  if (!distributed() || values.empty()) return values;
  auto t = torch::tensor(values, torch::kFloat64);
  std::vector<torch::Tensor> one{t};
  world_->all_reduce_sum(one, what);
  return {t.data_ptr<double>(), t.data_ptr<double>() + t.numel()};
}

}  // namespace rlhf
