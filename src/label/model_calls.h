// The labelling tool's use of a model, through src/model/text_api.h: generating candidates for `label serve
// --model` (the judges of `label auto`, reward-model folders included, are reward::RewardSet). Kept in one file so
// the store, the server and their tests never need a model.
#pragma once
#include <string>
#include <vector>

#include "label/store.h"
#include "model/text_api.h"

namespace rlhf::label {

// k candidates per prompt from the causal LM in model_dir; each item records model_dir and the sampling settings.
std::vector<NewItem> generate_candidates(const std::string& model_dir, const std::vector<std::string>& prompts, int k,
                                         const SamplingOptions& sampling, bool chat, const std::string& device);

}  // namespace rlhf::label
