#include "rlhf/rollout.h"

#include <torch/torch.h>

#include "common/error.h"
#include "model/generate.h"
#include "train/logprobs.h"

namespace rlhf {

torch::Tensor Rollout::input_ids() const { return torch::cat({prompt_ids, response_ids}, 1); }

torch::Tensor Rollout::attention_mask() const {
  return torch::cat({prompt_mask.to(torch::kInt64), response_mask.to(torch::kInt64)}, 1);
}

Rollout Rollout::select(const torch::Tensor& rows) const {
  auto idx = rows.to(prompt_ids.device());
  return {prompt_ids.index_select(0, idx), prompt_mask.index_select(0, idx), response_ids.index_select(0, idx),
          response_mask.index_select(0, idx), logprobs.index_select(0, idx), has_eos.index_select(0, idx)};
}

namespace {
// The Rollout of a generate() call over left-padded prompts ids / mask (B, P).
Rollout to_rollout(const torch::Tensor& ids, const torch::Tensor& mask, const GenerateOutput& out,
                   const std::vector<int64_t>& stop_ids) {
  const auto device = ids.device();
  const int64_t P = ids.size(1), N = out.output_ids.size(1) - P;
  Rollout r;
  r.prompt_ids = ids;
  r.prompt_mask = mask;
  r.response_ids = out.output_ids.narrow(1, P, N).contiguous();
  r.response_mask = out.attention_mask.narrow(1, P, N).to(torch::kFloat32).contiguous();
  r.logprobs = out.logprobs * r.response_mask;
  auto stops = torch::tensor(stop_ids.empty() ? std::vector<int64_t>{-1} : stop_ids, torch::kInt64).to(device);
  r.has_eos = (torch::isin(r.response_ids, stops) & r.response_mask.to(torch::kBool)).any(1);
  return r;
}

std::pair<torch::Tensor, torch::Tensor> padded_prompts(TransformerLM& policy,
                                                       const std::vector<std::vector<int64_t>>& prompts,
                                                       const SamplingOptions& opts, int64_t pad_id) {
  RLHF_CHECK(opts.stop_at_eos, "rollout: sampling must stop at EOS (truncation after the first EOS)");
  const auto device = policy.parameters().front().device();
  auto [ids, mask] = left_pad(prompts, pad_id);
  return {ids.to(device), mask.to(device)};
}
}  // namespace

Rollout rollout_generate(TransformerLM& policy, const std::vector<std::vector<int64_t>>& prompts,
                         const SamplingOptions& opts, const std::vector<int64_t>& stop_ids, int64_t pad_id,
                         at::Generator& gen) {
  torch::NoGradGuard ng;
  auto [ids, mask] = padded_prompts(policy, prompts, opts, pad_id);
  return to_rollout(ids, mask, generate(policy, ids, mask, opts, stop_ids, pad_id, gen), stop_ids);
}

Rollout rollout_generate_rows(TransformerLM& policy, const std::vector<std::vector<int64_t>>& prompts,
                              const SamplingOptions& opts, const std::vector<int64_t>& stop_ids, int64_t pad_id,
                              std::vector<at::Generator>& row_gens) {
  torch::NoGradGuard ng;
  auto [ids, mask] = padded_prompts(policy, prompts, opts, pad_id);
  return to_rollout(ids, mask, generate_rows(policy, ids, mask, opts, stop_ids, pad_id, row_gens), stop_ids);
}

namespace {
// Hidden states (B, N, C) at the positions whose outputs predict the response tokens: P − 1 … P + N − 2.
torch::Tensor response_hidden(TransformerLM& model, const Rollout& r) {
  auto ids = r.input_ids(), mask = r.attention_mask();
  auto hidden = model.body(ids, mask, default_position_ids(mask), nullptr);  // (B, P + N, C)
  return hidden.narrow(1, r.prompt_len() - 1, r.response_len());
}
}  // namespace

ResponseForward response_logprobs(TransformerLM& model, const Rollout& r, double temperature, bool with_entropy) {
  auto logits = model.lm_logits(response_hidden(model, r)).to(torch::kFloat32);  // (B, N, V)
  ResponseForward f;
  f.logprobs = train::token_logprobs(logits, r.response_ids, temperature) * r.response_mask;
  if (with_entropy) f.entropy = train::token_entropy(logits, temperature) * r.response_mask;
  return f;
}

torch::Tensor response_values(TransformerLM& critic, const Rollout& r) {
  TORCH_CHECK(critic.has_score_head() && critic.config().num_labels == 1,
              "response_values: the critic needs a score head with one label");
  return critic.score(response_hidden(critic, r)).squeeze(-1).to(torch::kFloat32) * r.response_mask;
}

torch::Tensor sequence_scores(TransformerLM& reward_model, const Rollout& r) {
  TORCH_CHECK(reward_model.has_score_head() && reward_model.config().num_labels == 1,
              "sequence_scores: the reward model needs a score head with one label");
  return reward_model.forward_scores(r.input_ids(), r.attention_mask()).squeeze(-1).to(torch::kFloat32);
}

}  // namespace rlhf
