// `rlhf demo --task arithmetic`: GRPO with a verifiable reward (rule:numeric) on a built-in arithmetic task
// (src/rlhf/arithmetic_task.h), every stage an ordinary `rlhf` command (RUN/stages.json lists them).
#pragma once
#include <cstdint>
#include <string>

namespace rlhf::cli {

struct ArithmeticDemoFlags {
  std::string out;
  bool quick = false;  // fewer GRPO iterations (CI)
  bool rerun = false;
  uint64_t seed = 1;
};

int run_arithmetic_demo(const ArithmeticDemoFlags& f);

}  // namespace rlhf::cli
