// The arithmetic task's data; see arithmetic_task.h.
#include "rlhf/arithmetic_task.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <utility>
#include <vector>

#include "common/error.h"

namespace rlhf::arithmetic {

void write_data(const std::string& dir, const DataSizes& sizes, uint64_t seed) {
  std::filesystem::create_directories(dir);
  std::vector<std::pair<int, int>> problems;
  for (int a = 0; a <= sizes.max_operand; ++a)
    for (int b = 0; b <= sizes.max_operand; ++b) problems.emplace_back(a, b);
  RLHF_CHECK(sizes.eval_prompts + sizes.sft_examples < static_cast<int>(problems.size()),
             "arithmetic: ", sizes.eval_prompts, " eval + ", sizes.sft_examples, " sft leave no RL prompts of ",
             problems.size());
  std::mt19937_64 rng(seed);
  std::shuffle(problems.begin(), problems.end(), rng);
  std::ofstream ev(std::filesystem::path(dir) / "eval_prompts.jsonl"), sft(std::filesystem::path(dir) / "sft.jsonl"),
      rl(std::filesystem::path(dir) / "prompts.jsonl");
  for (size_t i = 0; i < problems.size(); ++i) {
    const auto [a, b] = problems[i];
    const std::string prompt = std::to_string(a) + "+" + std::to_string(b) + "=", answer = std::to_string(a + b);
    if (static_cast<int>(i) < sizes.eval_prompts)
      ev << nlohmann::json{{"prompt", prompt}, {"answer", answer}}.dump() << "\n";
    else if (static_cast<int>(i) < sizes.eval_prompts + sizes.sft_examples)
      sft << nlohmann::json{{"prompt", prompt}, {"completion", answer}}.dump() << "\n";
    else
      rl << nlohmann::json{{"prompt", prompt}, {"answer", answer}}.dump() << "\n";
  }
  RLHF_CHECK(ev && sft && rl, dir, ": could not write the arithmetic task's data (hint: disk full?)");
}

}  // namespace rlhf::arithmetic
