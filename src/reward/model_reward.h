// `--reward DIR`: a reward-model folder (*ForSequenceClassification with 1 label). With the rollout's tokens
// (PPO) it scores them as they are, at the last real token (sequence_scores, rollout.h), without re-tokenizing:
// the reward model must share the policy's tokenizer, as in TRL and OpenRLHF. With text only (label auto) it
// formats and tokenizes each pair as `rlhf reward` does in training (score_texts, text_api.h).
#pragma once
#include <memory>
#include <string>

#include "reward/batch.h"

namespace rlhf {
class TransformerLM;
}

namespace rlhf::reward {

class ModelReward {
 public:
  ModelReward(std::string dir, std::string device);  // checks the folder; the model loads on first use
  Scores score(const Batch& batch);
  void load();  // the model, once (checks it has one score label); score() loads it when it needs it
  const std::string& dir() const { return dir_; }
  // The loaded model (loads it): PPO's LoRA critic shares its frozen body (ppo.h RLHooks::reward_model).
  std::shared_ptr<TransformerLM> model() {
    load();
    return model_;
  }

 private:
  std::string dir_, device_;
  std::shared_ptr<TransformerLM> model_;
};

}  // namespace rlhf::reward
