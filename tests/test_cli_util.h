// Helpers of the tests that run `rlhf` commands on files: JSONL inputs and a reward model to score with.
#pragma once
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "model/model.h"

namespace rlhf::test {

// One JSON object a line.
inline void write_lines(const std::string& path, const std::vector<nlohmann::json>& lines) {
  std::ofstream out(path);
  for (const auto& l : lines) out << l.dump() << "\n";
}

// A reward-model folder at `dir`: the LM at `lm_dir`'s body with a fresh score head (one label), its tokenizer
// files copied, as `rlhf reward` would start from.
inline void save_reward_model(const std::string& lm_dir, const std::string& dir) {
  LoadOptions lo;
  lo.head = "score";
  auto m = load_model(lm_dir, lo);
  SaveOptions so;
  so.source_dir = lm_dir;
  save_model(*m, dir, so);
}

}  // namespace rlhf::test
