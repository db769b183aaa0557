// The prompts of ppo / grpo / rloo and `rlhf generate`: a JSONL file of {"prompt"} or {"messages"} lines, through
// the Formatter. No torch (the reader is fuzzed without libtorch).
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "train/format.h"

namespace rlhf {

// One prompt of the dataset: the JSON prompt (string or messages) and its tokens through the Formatter.
struct Prompt {
  nlohmann::json prompt;
  std::vector<int64_t> ids;
  nlohmann::json row;   // the whole line: extra fields ("answer", ...) pass through to the reward functions
  std::string source;   // "path:line", for messages
};

// Reads a prompts JSONL: each line {"prompt": "..."} or {"messages": [{"role", "content"}, ...]}, other fields
// kept in Prompt::row (e.g. {"prompt": "2+3=", "answer": "5"} for a verifiable reward). Prompts longer
// than max_prompt_tokens (> 0) keep their last max_prompt_tokens tokens. Errors name file and line.
std::vector<Prompt> read_prompts(const std::string& path, const Formatter& formatter, int64_t max_prompt_tokens = 0);

}  // namespace rlhf
