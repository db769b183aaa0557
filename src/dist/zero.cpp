#include "dist/zero.h"

#include <torch/torch.h>

#include <algorithm>
#include <numeric>
#include <set>

#include "common/error.h"

namespace rlhf::dist {

std::vector<int> zero_owners(const std::vector<int64_t>& numels, int ranks) {
  std::vector<size_t> order(numels.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return numels[a] > numels[b]; });
  std::vector<int64_t> load(static_cast<size_t>(ranks), 0);
  std::vector<int> owner(numels.size(), 0);
  for (auto i : order) {
    const auto r = static_cast<size_t>(std::min_element(load.begin(), load.end()) - load.begin());
    owner[i] = static_cast<int>(r);
    load[r] += numels[i];
  }
  return owner;
}

Zero1::Zero1(World& world, train::AdamW& opt) : world_(world), opt_(opt) {
  for (const auto& g : opt.groups())
    for (const auto& np : g.params) {
      params_.push_back(np.param);
      names_.push_back(np.name);
    }
  std::vector<int64_t> numels;
  for (const auto& p : params_) numels.push_back(p.numel());
  owner_ = zero_owners(numels, world.size());
}

double Zero1::step(double lr, double max_grad_norm) {
  torch::NoGradGuard ng;
  const int me = world_.rank();
  // Σ_r g_r onto each tensor's owner (a param without a grad contributes zeros, so every rank reduces the same).
  std::vector<torch::Tensor> grads;
  for (auto& p : params_) {
    if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
    grads.push_back(p.grad());
  }
  world_.reduce_sum(grads, owner_, "gradients to their ZeRO-1 owners");
  // ‖g‖ over all tensors: each rank's owned squares, summed.
  double sq = 0;
  for (size_t i = 0; i < params_.size(); ++i) {
    if (owner_[i] != me) {
      params_[i].mutable_grad() = torch::Tensor();  // not ours: AdamW skips it
      continue;
    }
    const double n = params_[i].grad().detach().to(torch::kFloat32).norm().item<double>();
    sq += n * n;
  }
  auto t = torch::tensor({sq}, torch::kFloat64);
  std::vector<torch::Tensor> one{t};
  world_.all_reduce_sum(one, "ZeRO-1 gradient norm");
  const double total = std::sqrt(t.item<double>());
  if (max_grad_norm > 0 && total > max_grad_norm) {
    const double coef = max_grad_norm / (total + 1e-6);  // clip_grad_norm's (torch's) coefficient
    for (auto& p : params_)
      if (p.grad().defined()) p.grad().mul_(coef);
  }
  opt_.step(lr);
  opt_.zero_grad();
  world_.broadcast(params_, owner_, "ZeRO-1 updated parameters from their owners");
  return total;
}

void Zero1::gather_state() {
  const int me = world_.rank();
  auto mine = opt_.state_dict();  // the owned tensors' moments (and "step")
  // Which tensors have moments (a tensor that never had a gradient has none), as their owners say.
  auto has = torch::zeros({static_cast<int64_t>(params_.size())}, torch::kFloat64);
  for (size_t i = 0; i < params_.size(); ++i)
    if (owner_[i] == me && mine.count("exp_avg." + names_[i])) has[static_cast<int64_t>(i)] = 1.0;
  std::vector<torch::Tensor> one{has};
  world_.all_reduce_sum(one, "ZeRO-1 optimizer state index");
  std::map<std::string, torch::Tensor> full{{"step", mine.at("step")}};
  for (size_t i = 0; i < params_.size(); ++i) {
    if (has[static_cast<int64_t>(i)].item<double>() == 0.0) continue;
    const auto m = "exp_avg." + names_[i], v = "exp_avg_sq." + names_[i];
    // one tensor's pair at a time: the others hold it only while it passes
    std::vector<torch::Tensor> pair;
    if (owner_[i] == me) pair = {mine.at(m), mine.at(v)};
    else pair = {torch::empty(params_[i].sizes(), params_[i].options().device(torch::kCPU)),
                 torch::empty(params_[i].sizes(), params_[i].options().device(torch::kCPU))};
    world_.broadcast(pair, owner_[i], "ZeRO-1 optimizer state of " + names_[i]);
    if (world_.is_main()) {
      full[m] = pair[0];
      full[v] = pair[1];
    }
  }
  if (world_.is_main()) opt_.load_state_dict(full, "ZeRO-1 gathered state");
}

void Zero1::drop_foreign_state() {
  std::set<std::string> own;
  for (size_t i = 0; i < params_.size(); ++i)
    if (owner_[i] == world_.rank()) own.insert(names_[i]);
  opt_.drop_state_unless([&](const std::string& n) { return own.count(n) > 0; });
}

}  // namespace rlhf::dist
