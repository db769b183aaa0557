#include "rlhf/evaluate.h"

#include <cmath>

#include "model/generate.h"
#include "train/logprobs.h"

namespace rlhf::eval {

namespace {
constexpr size_t kBatch = 64;

// prompt+response rows, left padded; mask_resp marks the response tokens.
struct Packed {
  torch::Tensor ids, mask, resp_mask;
};
Packed pack(const std::vector<Sample>& s, size_t begin, size_t end, int64_t pad) {
  std::vector<std::vector<int64_t>> seqs;
  for (size_t i = begin; i < end; ++i) {
    auto v = s[i].prompt_ids;
    v.insert(v.end(), s[i].response_ids.begin(), s[i].response_ids.end());
    seqs.push_back(std::move(v));
  }
  auto [ids, mask] = left_pad(seqs, pad);
  auto resp = torch::zeros_like(mask);
  for (size_t i = begin; i < end; ++i) {
    const int64_t n = static_cast<int64_t>(s[i].response_ids.size());
    if (n > 0) resp[static_cast<int64_t>(i - begin)].narrow(0, ids.size(1) - n, n).fill_(1);
  }
  return {ids, mask, resp};
}
}  // namespace

std::vector<Sample> sample_responses(TransformerLM& policy, const Formatter& fmt,
                                     const std::vector<std::string>& prompts, int repeats, int max_new_tokens,
                                     uint64_t seed, float temperature) {
  torch::NoGradGuard ng;
  std::vector<Sample> out;
  for (int r = 0; r < repeats; ++r)
    for (size_t i = 0; i < prompts.size(); ++i) {
      Sample s;
      s.prompt_index = i;
      s.prompt_ids = fmt.encode_prompt(prompts[i]);
      out.push_back(std::move(s));
    }
  auto gen = at::detail::createCPUGenerator(seed);
  SamplingOptions so;
  so.temperature = temperature;
  so.max_new_tokens = max_new_tokens;
  so.stop_at_eos = true;
  const auto device = policy.parameters().front().device();
  for (size_t b = 0; b < out.size(); b += kBatch) {
    const size_t e = std::min(out.size(), b + kBatch);
    std::vector<std::vector<int64_t>> seqs;
    for (size_t i = b; i < e; ++i) seqs.push_back(out[i].prompt_ids);
    auto [ids, mask] = left_pad(seqs, fmt.pad_id());
    auto g = generate(policy, ids.to(device), mask.to(device), so, fmt.stop_ids(), fmt.pad_id(), gen);
    const int64_t T = ids.size(1);
    auto new_ids = g.output_ids.narrow(1, T, g.output_ids.size(1) - T).cpu();
    auto new_mask = g.attention_mask.narrow(1, T, g.attention_mask.size(1) - T).cpu();
    for (size_t i = b; i < e; ++i) {
      const int64_t row = static_cast<int64_t>(i - b);
      for (int64_t t = 0; t < new_ids.size(1); ++t)
        if (new_mask[row][t].item<int64_t>()) out[i].response_ids.push_back(new_ids[row][t].item<int64_t>());
      out[i].text = fmt.decode_response(out[i].response_ids);
    }
  }
  return out;
}

std::vector<double> response_logprobs(TransformerLM& model, const std::vector<Sample>& samples) {
  torch::NoGradGuard ng;
  std::vector<double> out;
  const auto device = model.parameters().front().device();
  for (size_t b = 0; b < samples.size(); b += kBatch) {
    const size_t e = std::min(samples.size(), b + kBatch);
    auto p = pack(samples, b, e, 0);
    auto logits = model.forward_logits(p.ids.to(device), p.mask.to(device));
    auto lp = train::sequence_logprobs(logits, p.ids.to(device), p.resp_mask.to(device)).cpu();
    for (int64_t i = 0; i < lp.size(0); ++i) out.push_back(lp[i].item<double>());
  }
  return out;
}

std::vector<double> reward_scores(TransformerLM& rm, const std::vector<Sample>& samples) {
  torch::NoGradGuard ng;
  std::vector<double> out;
  const auto device = rm.parameters().front().device();
  for (size_t b = 0; b < samples.size(); b += kBatch) {
    const size_t e = std::min(samples.size(), b + kBatch);
    auto p = pack(samples, b, e, 0);
    auto s = rm.forward_scores(p.ids.to(device), p.mask.to(device)).select(1, 0).cpu();
    for (int64_t i = 0; i < s.size(0); ++i) out.push_back(s[i].item<double>());
  }
  return out;
}

nlohmann::json PolicyStats::to_json() const {
  return {{"gold", gold}, {"reward_model", reward_model}, {"kl_to_sft", kl_to_sft}, {"length", length},
          {"win_rate_vs_sft", win_rate_vs_sft}};
}

PolicyStats policy_stats(TransformerLM& policy, TransformerLM& sft, TransformerLM& rm,
                         const std::vector<std::string>& prompts, std::vector<Sample> samples, const GoldFn& gold,
                         const std::vector<double>* sft_golds, double kl_override) {
  PolicyStats st;
  const double n = static_cast<double>(samples.size());
  for (const auto& s : samples) {
    st.golds.push_back(gold(prompts[s.prompt_index], s.text));
    st.gold += st.golds.back() / n;
    st.length += static_cast<double>(s.response_ids.size()) / n;
  }
  for (double r : reward_scores(rm, samples)) st.reward_model += r / n;
  if (kl_override >= 0) {
    st.kl_to_sft = kl_override;
  } else {
    auto lp = response_logprobs(policy, samples), lp_sft = response_logprobs(sft, samples);
    for (size_t i = 0; i < lp.size(); ++i) st.kl_to_sft += (lp[i] - lp_sft[i]) / n;
  }
  if (sft_golds && sft_golds->size() == st.golds.size()) {
    double wins = 0;
    for (size_t i = 0; i < st.golds.size(); ++i)
      wins += st.golds[i] > (*sft_golds)[i] ? 1.0 : st.golds[i] == (*sft_golds)[i] ? 0.5 : 0.0;
    st.win_rate_vs_sft = wins / n;
  }
  st.samples = std::move(samples);
  return st;
}

std::vector<Sample> best_of_n(TransformerLM& sft, TransformerLM& rm, const Formatter& fmt,
                              const std::vector<std::string>& prompts, int repeats, int n, int max_new_tokens,
                              uint64_t seed) {
  // n * repeats samples per prompt, grouped so candidate j of (prompt i, repeat r) is index (r*n + j)*P + i.
  auto all = sample_responses(sft, fmt, prompts, repeats * n, max_new_tokens, seed);
  auto scores = reward_scores(rm, all);
  const size_t P = prompts.size();
  std::vector<Sample> best;
  for (int r = 0; r < repeats; ++r)
    for (size_t i = 0; i < P; ++i) {
      size_t arg = 0;
      double top = -INFINITY;
      for (int j = 0; j < n; ++j) {
        const size_t idx = (static_cast<size_t>(r) * n + j) * P + i;
        if (scores[idx] > top) {
          top = scores[idx];
          arg = idx;
        }
      }
      best.push_back(all[arg]);
    }
  return best;
}

}  // namespace rlhf::eval
