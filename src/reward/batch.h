// What a reward function sees, and what it answers. One Batch is B rows (one response each), as text, plus the
// tokens when the caller has them (PPO's rollout, which a reward-model folder scores without re-tokenizing).
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace rlhf {
struct Rollout;
}

namespace rlhf::reward {

struct Batch {
  std::vector<std::string> prompts;    // (B,) the prompt as the policy saw it (chat template applied)
  std::vector<std::string> responses;  // (B,) the response, cut at the stop token, special tokens skipped
  std::vector<std::string> queries;    // (B,) prompt + response with special tokens (OpenRLHF's "query")
  std::vector<std::optional<std::string>> labels;  // (B,) the prompt line's label field ("answer"), if it has one
  std::vector<std::string> sources;    // (B,) where each row came from, for messages ("prompts.jsonl:12")
  const Rollout* rollout = nullptr;    // the tokens, when the caller has them (PPO); null otherwise
  int64_t iteration = 0;               // 1-based training iteration, for messages; 0 outside a training loop
  size_t size() const { return responses.size(); }
};

// One reward function's answer: a score per row, and optional per-row diagnostics to log (OpenRLHF's
// "extra_logs"), each (B,).
struct Scores {
  std::vector<double> values;
  std::map<std::string, std::vector<double>> extra;
};

}  // namespace rlhf::reward
