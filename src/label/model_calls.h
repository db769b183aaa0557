// The labelling tool's only two uses of a model, both through src/model/text_api.h: generating candidates for
// `label serve --model`, and the reward-model judge of `label auto --judge reward:DIR`. Kept in one file so the
// store, the server and their tests never need a model.
#pragma once
#include <string>
#include <vector>

#include "label/judge.h"
#include "label/store.h"
#include "model/text_api.h"

namespace rlhf::label {

// k candidates per prompt from the causal LM in model_dir; each item records model_dir and the sampling settings.
std::vector<NewItem> generate_candidates(const std::string& model_dir, const std::vector<std::string>& prompts, int k,
                                         const SamplingOptions& sampling, bool chat, const std::string& device);

// Scores each candidate with the reward model in rm_dir (rlhf::score_texts).
Scorer reward_scorer(const std::string& rm_dir, const std::string& device);

}  // namespace rlhf::label
