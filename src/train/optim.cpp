#include "train/optim.h"

#include <torch/torch.h>

#include <cmath>
#include <set>

#include "common/error.h"

namespace rlhf::train {

namespace {
bool is_no_decay(const NamedParam& p) {
  const auto& n = p.name;
  return p.param.dim() < 2 || n.find("embed") != std::string::npos || n.find("wte") != std::string::npos ||
         n.find("wpe") != std::string::npos;
}
}  // namespace

std::vector<ParamGroup> default_param_groups(const std::vector<NamedParam>& params, const AdamWConfig& cfg) {
  ParamGroup decay, no_decay;
  decay.weight_decay = cfg.weight_decay;
  no_decay.weight_decay = 0.0;
  std::set<const void*> seen;
  std::set<std::string> names;
  for (const auto& p : params) {
    if (!p.param.defined() || !p.param.requires_grad()) continue;
    if (!seen.insert(p.param.unsafeGetTensorImpl()).second) continue;  // tied weight, already in
    RLHF_CHECK(names.insert(p.name).second, "optimizer: parameter name \"", p.name,
               "\" used twice (prefix the names of different models)");
    if (!cfg.decay_norms_biases_embeddings && is_no_decay(p)) no_decay.params.push_back(p);
    else decay.params.push_back(p);
  }
  std::vector<ParamGroup> groups;
  if (!decay.params.empty()) groups.push_back(std::move(decay));
  if (!no_decay.params.empty()) groups.push_back(std::move(no_decay));
  RLHF_CHECK(!groups.empty(), "optimizer: no trainable parameters");
  return groups;
}

AdamW::AdamW(std::vector<ParamGroup> groups, AdamWConfig cfg) : groups_(std::move(groups)), cfg_(cfg) {
  RLHF_CHECK(cfg_.beta1 >= 0 && cfg_.beta1 < 1 && cfg_.beta2 >= 0 && cfg_.beta2 < 1,
             "AdamW: betas must be in [0, 1), got ", cfg_.beta1, ", ", cfg_.beta2);
  RLHF_CHECK(cfg_.eps > 0, "AdamW: eps must be > 0, got ", cfg_.eps);
}

std::vector<torch::Tensor> AdamW::params() const {
  std::vector<torch::Tensor> out;
  for (const auto& g : groups_)
    for (const auto& p : g.params) out.push_back(p.param);
  return out;
}

void AdamW::zero_grad() {
  for (const auto& g : groups_)
    for (const auto& p : g.params)
      if (p.param.grad().defined()) p.param.mutable_grad() = torch::Tensor();
}

void AdamW::step(double lr) {
  torch::NoGradGuard ng;
  ++step_;
  const double bc1 = 1.0 - std::pow(cfg_.beta1, static_cast<double>(step_));
  const double bc2 = 1.0 - std::pow(cfg_.beta2, static_cast<double>(step_));
  const double step_size = 1.0 / bc1;
  const double bc2_sqrt = std::sqrt(bc2);
  for (const auto& g : groups_) {
    const double glr = lr * g.lr_scale;
    for (const auto& np : g.params) {
      auto& p = np.param;
      const auto& grad = p.grad();
      if (!grad.defined()) continue;
      auto& s = state_[np.name];
      if (!s.exp_avg.defined()) {
        s.exp_avg = torch::zeros_like(p, torch::MemoryFormat::Preserve);
        s.exp_avg_sq = torch::zeros_like(p, torch::MemoryFormat::Preserve);
      }
      // torch.optim.AdamW (single-tensor path): decay, moments, then p -= lr/bc1 · m / (sqrt(v)/sqrt(bc2) + ε).
      if (g.weight_decay != 0.0) p.mul_(1.0 - glr * g.weight_decay);
      s.exp_avg.mul_(cfg_.beta1).add_(grad, 1.0 - cfg_.beta1);
      s.exp_avg_sq.mul_(cfg_.beta2).addcmul_(grad, grad, 1.0 - cfg_.beta2);
      auto denom = (s.exp_avg_sq.sqrt() / bc2_sqrt).add_(cfg_.eps);
      p.addcdiv_(s.exp_avg, denom, -glr * step_size);
    }
  }
}

std::map<std::string, torch::Tensor> AdamW::state_dict() const {
  std::map<std::string, torch::Tensor> out;
  for (const auto& [name, s] : state_) {
    out["exp_avg." + name] = s.exp_avg.detach().cpu().contiguous();
    out["exp_avg_sq." + name] = s.exp_avg_sq.detach().cpu().contiguous();
  }
  out["step"] = torch::tensor({step_}, torch::kInt64);
  return out;
}

void AdamW::load_state_dict(const std::map<std::string, torch::Tensor>& state, const std::string& source) {
  auto it = state.find("step");
  RLHF_CHECK(it != state.end(), source, ": optimizer state has no \"step\" tensor");
  step_ = it->second.to(torch::kInt64).item<int64_t>();
  state_.clear();
  std::set<std::string> used{"step"};
  for (const auto& g : groups_)
    for (const auto& np : g.params) {
      auto m = state.find("exp_avg." + np.name), v = state.find("exp_avg_sq." + np.name);
      if (m == state.end() && v == state.end()) continue;  // never had a grad
      RLHF_CHECK(m != state.end() && v != state.end(), source, ": optimizer state of \"", np.name,
                 "\" is incomplete (needs exp_avg and exp_avg_sq)");
      RLHF_CHECK(m->second.sizes() == np.param.sizes() && v->second.sizes() == np.param.sizes(), source,
                 ": optimizer state of \"", np.name, "\" has shape ", m->second.sizes(), ", parameter has ",
                 np.param.sizes(), " (was the checkpoint written by a different model?)");
      State s;
      s.exp_avg = m->second.to(np.param.device(), np.param.scalar_type()).clone();
      s.exp_avg_sq = v->second.to(np.param.device(), np.param.scalar_type()).clone();
      state_[np.name] = s;
      used.insert(m->first);
      used.insert(v->first);
    }
  for (const auto& [name, t] : state)
    RLHF_CHECK(used.count(name), source, ": optimizer state has \"", name,
               "\" that matches no parameter (was the checkpoint written by a different model?)");
}

void AdamW::drop_state_unless(const std::function<bool(const std::string& name)>& keep) {
  for (auto it = state_.begin(); it != state_.end();) it = keep(it->first) ? std::next(it) : state_.erase(it);
}

void ScheduleConfig::validate() const {
  RLHF_CHECK(kind == "cosine" || kind == "linear" || kind == "constant", "--lr-schedule: \"", kind,
             "\" is not one of cosine, linear, constant");
  RLHF_CHECK(warmup_steps >= 0, "--warmup-steps must be >= 0, got ", warmup_steps);
  RLHF_CHECK(min_lr_ratio >= 0 && min_lr_ratio <= 1, "--min-lr-ratio must be in [0, 1], got ", min_lr_ratio);
}

double schedule_lr(const ScheduleConfig& s, double base_lr, int64_t step) {
  if (step < s.warmup_steps) return base_lr * static_cast<double>(step + 1) / static_cast<double>(s.warmup_steps);
  if (s.kind == "constant") return base_lr;
  const double span = static_cast<double>(std::max<int64_t>(1, s.total_steps - s.warmup_steps));
  const double p = std::min(1.0, std::max(0.0, static_cast<double>(step - s.warmup_steps) / span));
  const double min_lr = base_lr * s.min_lr_ratio;
  if (s.kind == "linear") return base_lr - (base_lr - min_lr) * p;
  return min_lr + (base_lr - min_lr) * 0.5 * (1.0 + std::cos(M_PI * p));
}

double clip_grad_norm(const std::vector<torch::Tensor>& params, double max_norm) {
  torch::NoGradGuard ng;
  std::vector<torch::Tensor> norms;
  for (const auto& p : params)
    if (p.grad().defined()) norms.push_back(p.grad().detach().to(torch::kFloat32).norm());
  if (norms.empty()) return 0.0;
  const double total = torch::stack(norms).norm().item<double>();
  if (max_norm > 0 && total > max_norm) {
    const double coef = max_norm / (total + 1e-6);  // torch's clip_grad_norm_
    for (const auto& p : params)
      if (p.grad().defined()) p.grad().mul_(coef);
  }
  return total;
}

}  // namespace rlhf::train
