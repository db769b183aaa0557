// rlhf_loss_probe: the trainers' loss functions on given inputs, for tests/py/test_trl_losses.py, which feeds TRL's
// own code the same inputs. Test-only (built with the tests, not part of `rlhf`).
//
//   rlhf_loss_probe < request.json > reply.json
//   request: {"op": OP, ...inputs as (nested) lists of numbers, read as float64}
//   OP                inputs                                                 reply
//   dpo               policy_chosen, policy_rejected, ref_chosen,            loss, rewards/..., logps/...
//                     ref_rejected (B,); beta; loss_type sigmoid | ipo
//   reward            scores (N,); groups [{size, pairs [[w, l]...],         loss, accuracy, margin
//                     margins [...]}]; center_coef
//   ppo_policy_loss   logp, old_logp, advantages, mask (B, T); clip_eps      loss, clip_frac, approx_kl
//   grpo_loss         logp, old_logp, ref_logp, mask (B, T); advantages      loss, pg_loss, kl
//                     (B,); clip_eps; beta
//   grpo_advantages   scores (P·G,); group_size; eps                         advantages (P·G,)
// Everything is computed in float64, so differences to the reference are the references' own rounding.
#include <torch/torch.h>

#include <iostream>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "rlhf/dpo.h"
#include "rlhf/grpo.h"
#include "rlhf/ppo.h"
#include "rlhf/reward.h"

using nlohmann::json;

namespace {

// A (nested) JSON list of numbers as a float64 tensor: [..] -> (N,), [[..], ..] -> (B, T).
torch::Tensor tensor_of(const json& req, const std::string& key) {
  RLHF_CHECK(req.contains(key), "loss_probe: the request has no \"", key, "\"");
  const json& j = req.at(key);
  RLHF_CHECK(j.is_array() && !j.empty(), "loss_probe: \"", key, "\" must be a non-empty list");
  if (!j[0].is_array()) return torch::tensor(j.get<std::vector<double>>(), torch::kFloat64);
  std::vector<torch::Tensor> rows;
  for (const auto& r : j) rows.push_back(torch::tensor(r.get<std::vector<double>>(), torch::kFloat64));
  return torch::stack(rows);
}

std::vector<double> list_of(const torch::Tensor& t) {
  auto c = t.detach().to(torch::kFloat64).contiguous();
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

json run(const json& req) {
  const std::string op = req.at("op").get<std::string>();
  if (op == "dpo") {
    rlhf::train::Metrics m;
    auto loss = rlhf::dpo::dpo_loss(tensor_of(req, "policy_chosen"), tensor_of(req, "policy_rejected"),
                                    tensor_of(req, "ref_chosen"), tensor_of(req, "ref_rejected"),
                                    req.at("beta").get<double>(), req.at("loss_type").get<std::string>(), &m);
    json out = {{"loss", loss.item<double>()}};
    for (const auto& [k, v] : m) out[k] = v;
    return out;
  }
  if (op == "reward") {
    std::vector<rlhf::PreferenceGroup> groups;
    for (const auto& g : req.at("groups")) {
      rlhf::PreferenceGroup pg;
      pg.responses.resize(g.at("size").get<size_t>());
      for (const auto& p : g.at("pairs")) pg.pairs.emplace_back(p[0].get<int>(), p[1].get<int>());
      pg.margins = g.at("margins").get<std::vector<double>>();
      groups.push_back(std::move(pg));
    }
    std::vector<const rlhf::PreferenceGroup*> ptrs;
    for (const auto& g : groups) ptrs.push_back(&g);
    auto parts = rlhf::reward::preference_loss(tensor_of(req, "scores"), ptrs, req.at("center_coef").get<double>());
    return {{"loss", parts.loss.item<double>()}, {"accuracy", parts.accuracy}, {"margin", parts.margin}};
  }
  if (op == "ppo_policy_loss") {
    auto pl = rlhf::ppo_policy_loss(tensor_of(req, "logp"), tensor_of(req, "old_logp"), tensor_of(req, "advantages"),
                                    tensor_of(req, "mask"), req.at("clip_eps").get<double>());
    return {{"loss", pl.loss.item<double>()}, {"clip_frac", pl.clip_frac}, {"approx_kl", pl.approx_kl}};
  }
  if (op == "grpo_loss") {
    auto gl = rlhf::grpo_loss(tensor_of(req, "logp"), tensor_of(req, "old_logp"), tensor_of(req, "ref_logp"),
                              tensor_of(req, "advantages"), tensor_of(req, "mask"), req.at("clip_eps").get<double>(),
                              req.at("beta").get<double>());
    return {{"loss", gl.loss.item<double>()}, {"pg_loss", gl.pg_loss.item<double>()}, {"kl", gl.kl.item<double>()}};
  }
  if (op == "grpo_advantages") {
    auto a = rlhf::grpo_advantages(tensor_of(req, "scores"), req.at("group_size").get<int64_t>(),
                                   req.at("eps").get<double>());
    return {{"advantages", list_of(a)}};
  }
  rlhf::fail("loss_probe: unknown op \"", op, "\" (dpo | reward | ppo_policy_loss | grpo_loss | grpo_advantages)");
}

}  // namespace

int main() {
  try {
    const json req = json::parse(std::cin);
    std::cout << run(req).dump() << "\n";
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "rlhf_loss_probe: " << e.what() << "\n";
    return 1;
  }
}
