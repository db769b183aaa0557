// The built-in task of `rlhf demo --task arithmetic`: a verifiable reward (rule:numeric) on sums.
//
//   prompt:    "<a>+<b>="          a, b uniform in 0..max_operand (default 49), e.g. "17+25="
//   answer:    "<a + b>"           e.g. "42"; the reward is 1 when the response's last number equals it, else 0
//
// The a·b problems are shuffled once (by the seed) and split three ways, none shared: eval_prompts (held out from
// everything: the accuracy that the report shows), sft (demonstrations {"prompt", "completion"}), and rl (prompts
// with their "answer" field and no demonstration: GRPO learns from the reward alone).
#pragma once
#include <cstdint>
#include <string>

namespace rlhf::arithmetic {

struct DataSizes {
  int max_operand = 49;   // a, b in 0..max_operand: 2,500 problems
  int eval_prompts = 200;
  int sft_examples = 1100;
  // the rest (1,200) are the RL prompts
};

// Writes sft.jsonl, prompts.jsonl and eval_prompts.jsonl into dir. Deterministic for a seed.
void write_data(const std::string& dir, const DataSizes& sizes, uint64_t seed);

}  // namespace rlhf::arithmetic
