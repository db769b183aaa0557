#include "rlhf/reward.h"

#include <torch/torch.h>

#include "common/error.h"
#include "train/batching.h"

namespace rlhf::reward {

torch::Tensor score_sequences(TransformerLM& model, const std::vector<const train::TokenSeq*>& seqs, int64_t pad_id,
                              torch::Device device) {
  std::vector<train::TokenSeq> v;
  for (auto* s : seqs) v.push_back(*s);
  auto b = train::pad_right(v, pad_id);
  auto scores = model.forward_scores(b.input_ids.to(device), b.attention_mask.to(device));  // (N, 1)
  return scores.select(/*dim=*/1, 0).to(torch::kFloat32);
}

LossParts preference_loss(const torch::Tensor& scores, const std::vector<const PreferenceGroup*>& groups,
                          double center_coef) {
  // Flatten all pairs: w, l index into scores; weight = 1 / (|P_g| · G) so the sum is the mean of group means.
  std::vector<int64_t> w, l;
  std::vector<double> margin, weight;
  int64_t offset = 0;
  const double G = static_cast<double>(groups.size());
  for (const auto* g : groups) {
    for (size_t p = 0; p < g->pairs.size(); ++p) {
      w.push_back(offset + g->pairs[p].first);
      l.push_back(offset + g->pairs[p].second);
      margin.push_back(g->margins[p]);
      weight.push_back(1.0 / (static_cast<double>(g->pairs.size()) * G));
    }
    offset += static_cast<int64_t>(g->responses.size());
  }
  RLHF_CHECK(offset == scores.size(0), "preference_loss: ", scores.size(0), " scores for ", offset, " responses");
  auto dev = scores.device();
  auto wi = torch::tensor(w, torch::kInt64).to(dev), li = torch::tensor(l, torch::kInt64).to(dev);
  // In the scores' dtype, so that a float64 check against a hand computation is exact.
  auto m = torch::tensor(margin, torch::kFloat64).to(dev, scores.scalar_type());
  auto wt = torch::tensor(weight, torch::kFloat64).to(dev, scores.scalar_type());
  auto rw = scores.index_select(0, wi), rl = scores.index_select(0, li);  // (P,)
  auto diff = rw - rl;
  LossParts out;
  out.loss = -(wt * torch::log_sigmoid(diff - m)).sum();
  if (center_coef > 0) out.loss = out.loss + center_coef * (rw + rl).pow(2).mean();
  auto d = diff.detach();
  out.accuracy = (d > 0).to(torch::kFloat32).mean().item<double>();
  out.margin = d.mean().item<double>();
  out.pairs = static_cast<int64_t>(w.size());
  return out;
}

torch::Tensor preference_loss_reference(const torch::Tensor& scores, const std::vector<const PreferenceGroup*>& groups) {
  torch::Tensor total = torch::zeros({}, scores.options());
  int64_t offset = 0;
  for (const auto* g : groups) {
    torch::Tensor lg = torch::zeros({}, scores.options());
    for (size_t p = 0; p < g->pairs.size(); ++p) {
      auto d = scores[offset + g->pairs[p].first] - scores[offset + g->pairs[p].second] - g->margins[p];
      lg = lg - torch::log(torch::sigmoid(d));
    }
    total = total + lg / static_cast<double>(g->pairs.size());
    offset += static_cast<int64_t>(g->responses.size());
  }
  return total / static_cast<double>(groups.size());
}

train::Metrics EvalResult::metrics() const {
  return {{"loss", loss},          {"accuracy", accuracy},       {"margin", margin},
          {"reward_mean", reward_mean}, {"reward_min", reward_min}, {"reward_max", reward_max},
          {"pairs", static_cast<double>(pairs)}};
}

namespace {
std::vector<int64_t> group_lengths(const std::vector<PreferenceGroup>& d) {
  std::vector<int64_t> out;
  for (const auto& g : d) {
    int64_t n = 0;
    for (const auto& s : g.responses) n = std::max<int64_t>(n, static_cast<int64_t>(s.ids.size()));
    out.push_back(n);
  }
  return out;
}

std::pair<torch::Tensor, std::vector<const PreferenceGroup*>> score_groups(TransformerLM& model,
                                                                          const std::vector<PreferenceGroup>& data,
                                                                          const std::vector<int64_t>& idx,
                                                                          const RewardConfig& cfg) {
  std::vector<const PreferenceGroup*> groups;
  std::vector<const train::TokenSeq*> seqs;
  for (auto i : idx) {
    groups.push_back(&data[i]);
    for (const auto& s : data[i].responses) seqs.push_back(&s);
  }
  return {score_sequences(model, seqs, cfg.pad_id, cfg.device), groups};
}
}  // namespace

EvalResult evaluate(TransformerLM& model, const std::vector<PreferenceGroup>& data, const RewardConfig& cfg) {
  torch::NoGradGuard ng;
  EvalResult r;
  double correct = 0, margin = 0, loss = 0, sum = 0;
  int64_t n_scores = 0;
  r.reward_min = INFINITY;
  r.reward_max = -INFINITY;
  for (const auto& idx : train::make_batches(group_lengths(data), cfg.batch_size, 0, 0, /*shuffle=*/false)) {
    auto [scores, groups] = score_groups(model, data, idx, cfg);
    auto parts = preference_loss(scores, groups);
    correct += parts.accuracy * parts.pairs;
    margin += parts.margin * parts.pairs;
    loss += parts.loss.item<double>() * static_cast<double>(groups.size());
    r.pairs += parts.pairs;
    sum += scores.sum().item<double>();
    n_scores += scores.size(0);
    r.reward_min = std::min(r.reward_min, scores.min().item<double>());
    r.reward_max = std::max(r.reward_max, scores.max().item<double>());
  }
  r.accuracy = correct / std::max<int64_t>(1, r.pairs);
  r.margin = margin / std::max<int64_t>(1, r.pairs);
  r.loss = loss / std::max<size_t>(1, data.size());
  r.reward_mean = sum / std::max<int64_t>(1, n_scores);
  return r;
}

train::LoopResult train_reward(TransformerLM& model, const std::vector<PreferenceGroup>& train_data,
                               const std::vector<PreferenceGroup>& eval_data, const RewardConfig& cfg,
                               const train::LoopOptions& loop) {
  RLHF_CHECK(model.has_score_head() && model.config().num_labels == 1,
             "reward: the model needs a score head with num_labels = 1 (load it with head \"score\")");
  const auto lengths = group_lengths(train_data);
  auto batches = [&](int64_t epoch) { return train::make_batches(lengths, cfg.batch_size, loop.seed, epoch); };
  auto loss_fn = [&](const std::vector<int64_t>& idx) {
    auto [scores, groups] = score_groups(model, train_data, idx, cfg);
    auto parts = preference_loss(scores, groups, cfg.center_coef);
    int64_t tokens = 0;
    for (auto* g : groups)
      for (const auto& s : g->responses) tokens += static_cast<int64_t>(s.ids.size());
    train::Metrics m{{"loss", parts.loss.item<double>()}, {"accuracy", parts.accuracy}, {"margin", parts.margin},
                     {"reward_mean", scores.mean().item<double>()}, {"tokens", static_cast<double>(tokens)}};
    return std::make_pair(parts.loss, m);
  };
  train::EvalFn eval_fn;
  if (!eval_data.empty()) eval_fn = [&]() { return evaluate(model, eval_data, cfg).metrics(); };
  return train::run_training(model, loop, batches, loss_fn, eval_fn);
}

NormalizeResult normalize_scores(TransformerLM& model, const std::vector<train::TokenSeq>& ref, bool with_std,
                                 int64_t batch_size, int64_t pad_id, torch::Device device) {
  RLHF_CHECK(!ref.empty(), "normalize: empty reference set");
  torch::NoGradGuard ng;
  auto all_scores = [&]() {
    std::vector<torch::Tensor> parts;
    for (size_t s = 0; s < ref.size(); s += batch_size) {
      std::vector<const train::TokenSeq*> seqs;
      for (size_t i = s; i < std::min(ref.size(), s + batch_size); ++i) seqs.push_back(&ref[i]);
      parts.push_back(score_sequences(model, seqs, pad_id, device).to(torch::kFloat64).cpu());
    }
    return torch::cat(parts);
  };
  NormalizeResult r;
  auto s = all_scores();
  r.mean_before = s.mean().item<double>();
  r.std_before = ref.size() > 1 ? s.std().item<double>() : 0.0;
  // Find the final norm's bias: the one body weight named *ln_f.bias / *norm.bias.
  torch::Tensor norm_bias;
  for (auto& w : model.weights())
    if (w.name == "transformer.ln_f.bias" || w.name == "model.norm.bias") norm_bias = w.tensor;
  RLHF_CHECK(norm_bias.defined(), "normalize: ", model.config().family,
             " has no bias after its final norm, so a score offset cannot be stored in the weights "
             "(hint: normalisation with an offset needs a GPT-2 family reward model)");
  torch::Tensor w = model.weights().back().tensor;  // score.weight (1, C): the last entry of the table
  for (auto& nw : model.weights())
    if (nw.name == "score.weight") w = nw.tensor;
  double mu = r.mean_before;
  if (with_std) {
    RLHF_CHECK(r.std_before > 0, "normalize: the reference scores have zero spread; cannot scale to std 1");
    w.div_(r.std_before);
    mu /= r.std_before;
  }
  auto wv = w[0].to(torch::kFloat64);
  norm_bias.sub_((mu / wv.dot(wv).item<double>() * wv).to(norm_bias.scalar_type()));
  auto s2 = all_scores();
  r.mean_after = s2.mean().item<double>();
  r.std_after = ref.size() > 1 ? s2.std().item<double>() : 0.0;
  return r;
}

}  // namespace rlhf::reward
