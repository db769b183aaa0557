// The demos' evaluation, in process: each trained policy and best-of-N against the reference policy (SFT, or the
// given base model of `demo --base`) on held-out prompts with the task's gold preference (rlhf/evaluate.h).
// Writes RUN/eval.json and RUN/samples.jsonl (reference vs PPO side by side for the report) and prints the table.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "rlhf/evaluate.h"

namespace rlhf::cli {

struct DemoEvalOptions {
  std::string run;                 // run folder (eval.json, samples.jsonl go here)
  std::string reference;           // folder of the reference policy (KL, win rate); its row is named "sft"
  std::string reward;              // reward model folder (the proxy)
  std::vector<std::pair<std::string, std::string>> policies;  // (row name, folder), e.g. {"ppo", RUN/ppo/final}
  std::string prompts;             // held-out prompts, {"prompt"} per line
  eval::GoldFn gold;
  int repeats = 8, best_of = 16, max_new_tokens = 16;
  uint64_t seed = 1;
  nlohmann::json extra;            // merged into eval.json (e.g. {"base": DIR})
};

// Returns eval.json's content.
nlohmann::json evaluate_demo(const DemoEvalOptions& o);

}  // namespace rlhf::cli
