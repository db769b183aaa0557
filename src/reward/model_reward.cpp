// The reward-model folder as a reward function; see model_reward.h.
#include "reward/model_reward.h"

#include <torch/torch.h>

#include <filesystem>

#include "common/error.h"
#include "common/runtime.h"
#include "model/model.h"
#include "model/text_api.h"
#include "rlhf/rollout.h"

namespace rlhf::reward {

ModelReward::ModelReward(std::string dir, std::string device) : dir_(std::move(dir)), device_(std::move(device)) {
  RLHF_CHECK(std::filesystem::exists(std::filesystem::path(dir_) / "config.json"), "--reward ", dir_,
             ": not a model folder (no config.json; hint: a reward-model folder, http://..., exec:... or rule:...)");
}

void ModelReward::load() {
  if (model_) return;
  LoadOptions lo;
  lo.device = resolve_device(device_);
  model_ = load_model(dir_, lo);
  RLHF_CHECK(model_->has_score_head() && model_->config().num_labels == 1, dir_, ": ", model_->config().architecture,
             " is not a reward model with one label (hint: train one with `rlhf reward`)");
  model_->eval();
  for (auto& p : model_->parameters()) p.set_requires_grad(false);
}


Scores ModelReward::score(const Batch& batch) {
  Scores s;
  if (batch.rollout) {
    load();
    torch::NoGradGuard ng;
    auto t = sequence_scores(*model_, *batch.rollout).to(torch::kCPU, torch::kFloat64).contiguous();
    s.values.assign(t.data_ptr<double>(), t.data_ptr<double>() + t.numel());
    return s;
  }
  std::vector<std::pair<std::string, std::string>> pairs;
  for (size_t b = 0; b < batch.size(); ++b) pairs.emplace_back(batch.prompts[b], batch.responses[b]);
  for (float v : score_texts(dir_, pairs, device_)) s.values.push_back(v);
  return s;
}

}  // namespace rlhf::reward
