#include "rlhf/dpo.h"

#include <torch/torch.h>

#include "common/error.h"
#include "train/batching.h"
#include "train/logprobs.h"

namespace rlhf::dpo {

void DpoConfig::validate() const {
  RLHF_CHECK(beta > 0, "--beta must be > 0, got ", beta);
  RLHF_CHECK(loss == "sigmoid" || loss == "ipo", "--loss: \"", loss, "\" is not one of sigmoid, ipo");
  RLHF_CHECK(batch_size >= 1, "--batch-size must be >= 1, got ", batch_size);
}

std::vector<DpoPair> pairs_from_groups(const std::vector<PreferenceGroup>& groups) {
  std::vector<DpoPair> out;
  for (const auto& g : groups)
    for (const auto& [w, l] : g.pairs) out.push_back({g.responses[w], g.responses[l]});
  return out;
}

torch::Tensor response_logprobs(TransformerLM& model, const std::vector<const train::TokenSeq*>& seqs, int64_t pad_id,
                                torch::Device device) {
  std::vector<train::TokenSeq> v;
  for (auto* s : seqs) v.push_back(*s);
  auto b = train::pad_right(v, pad_id);
  auto ids = b.input_ids.to(device), att = b.attention_mask.to(device);
  auto logits = model.forward_logits(ids, att);                                 // (N,T,V)
  return train::sequence_logprobs(logits, ids, b.loss_mask.to(device));         // (N,)
}

namespace {
// Chosen then rejected of the selected pairs, in one forward (as TRL's concatenated_forward).
std::pair<torch::Tensor, torch::Tensor> pair_logprobs(TransformerLM& model, const std::vector<DpoPair>& pairs,
                                                      const std::vector<int64_t>& idx, int64_t pad_id,
                                                      torch::Device device) {
  std::vector<const train::TokenSeq*> seqs;
  for (auto i : idx) seqs.push_back(&pairs[i].chosen);
  for (auto i : idx) seqs.push_back(&pairs[i].rejected);
  auto lp = response_logprobs(model, seqs, pad_id, device);
  const int64_t B = static_cast<int64_t>(idx.size());
  return {lp.slice(0, 0, B), lp.slice(0, B, 2 * B)};
}

std::vector<int64_t> pair_lengths(const std::vector<DpoPair>& pairs) {
  std::vector<int64_t> out;
  for (const auto& p : pairs)
    out.push_back(static_cast<int64_t>(std::max(p.chosen.ids.size(), p.rejected.ids.size())));
  return out;
}

std::pair<torch::Tensor, torch::Tensor> ref_of(const std::vector<DpoPair>& pairs, const std::vector<int64_t>& idx,
                                               torch::Device device) {
  std::vector<double> c, r;
  for (auto i : idx) {
    c.push_back(pairs[i].ref_chosen);
    r.push_back(pairs[i].ref_rejected);
  }
  return {torch::tensor(c, torch::kFloat64).to(torch::kFloat32).to(device),
          torch::tensor(r, torch::kFloat64).to(torch::kFloat32).to(device)};
}
}  // namespace

void compute_reference_logprobs(TransformerLM& ref, std::vector<DpoPair>& pairs, int64_t batch_size, int64_t pad_id,
                                torch::Device device) {
  torch::NoGradGuard ng;
  ref.eval();
  for (const auto& idx : train::make_batches(pair_lengths(pairs), batch_size, 0, 0, /*shuffle=*/false)) {
    auto [c, r] = pair_logprobs(ref, pairs, idx, pad_id, device);
    auto cc = c.to(torch::kFloat64).cpu(), rr = r.to(torch::kFloat64).cpu();
    for (size_t k = 0; k < idx.size(); ++k) {
      pairs[idx[k]].ref_chosen = cc[k].item<double>();
      pairs[idx[k]].ref_rejected = rr[k].item<double>();
    }
  }
}

torch::Tensor dpo_loss(const torch::Tensor& policy_chosen, const torch::Tensor& policy_rejected,
                       const torch::Tensor& ref_chosen, const torch::Tensor& ref_rejected, double beta,
                       const std::string& loss_type, train::Metrics* m) {
  auto chosen_ratio = policy_chosen - ref_chosen;        // (B,)
  auto rejected_ratio = policy_rejected - ref_rejected;  // (B,)
  auto h = chosen_ratio - rejected_ratio;
  torch::Tensor loss;
  if (loss_type == "sigmoid") loss = -torch::log_sigmoid(beta * h).mean();
  else if (loss_type == "ipo") loss = (h - 1.0 / (2.0 * beta)).pow(2).mean();
  else fail("dpo: unknown loss \"", loss_type, "\" (sigmoid | ipo)");
  if (m) {
    auto rc = (beta * chosen_ratio).detach(), rr = (beta * rejected_ratio).detach();
    *m = {{"loss", loss.item<double>()},
          {"rewards/chosen", rc.mean().item<double>()},
          {"rewards/rejected", rr.mean().item<double>()},
          {"rewards/accuracies", (rc > rr).to(torch::kFloat32).mean().item<double>()},
          {"rewards/margins", (rc - rr).mean().item<double>()},
          {"logps/chosen", policy_chosen.detach().mean().item<double>()},
          {"logps/rejected", policy_rejected.detach().mean().item<double>()}};
  }
  return loss;
}

train::LoopResult train_dpo(TransformerLM& policy, const std::vector<DpoPair>& train_pairs,
                            const std::vector<DpoPair>& eval_pairs, const DpoConfig& cfg,
                            const train::LoopOptions& loop) {
  cfg.validate();
  RLHF_CHECK(policy.has_lm_head(), "dpo: the model has no LM head");
  const auto lengths = pair_lengths(train_pairs);
  auto batches = [&](int64_t epoch) { return train::make_batches(lengths, cfg.batch_size, loop.seed, epoch); };
  auto loss_fn = [&](const std::vector<int64_t>& idx) {
    auto [pc, pr] = pair_logprobs(policy, train_pairs, idx, cfg.pad_id, cfg.device);
    auto [rc, rr] = ref_of(train_pairs, idx, cfg.device);
    train::Metrics m;
    auto loss = dpo_loss(pc, pr, rc, rr, cfg.beta, cfg.loss, &m);
    int64_t tokens = 0;
    for (auto i : idx) tokens += static_cast<int64_t>(train_pairs[i].chosen.ids.size() + train_pairs[i].rejected.ids.size());
    m.push_back({"tokens", static_cast<double>(tokens)});
    return std::make_pair(loss, m);
  };
  train::EvalFn eval_fn;
  if (!eval_pairs.empty())
    eval_fn = [&]() {
      train::MetricsMean mean;
      for (const auto& idx : train::make_batches(pair_lengths(eval_pairs), cfg.batch_size, 0, 0, false)) {
        auto [pc, pr] = pair_logprobs(policy, eval_pairs, idx, cfg.pad_id, cfg.device);
        auto [rc, rr] = ref_of(eval_pairs, idx, cfg.device);
        train::Metrics m;
        dpo_loss(pc, pr, rc, rr, cfg.beta, cfg.loss, &m);
        mean.add(m);  // batch means; equal weight per batch
      }
      return mean.mean();
    };
  return train::run_training(policy, loop, batches, loss_fn, eval_fn);
}

}  // namespace rlhf::dpo
