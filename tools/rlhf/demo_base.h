// `rlhf demo --base DIR`: the RLHF pipeline on a model someone else pretrained (stories260K in CI), with the
// stories task's hidden gold preference (src/rlhf/stories_task.h). The given model is the reference policy (the
// "sft" row: no SFT stage, the folder is only read):
//   story openings -> K continuations per opening from DIR (label import) -> simulated person ranks them
//   (label auto --judge rule:stories, gold + noise) -> export -> reward model from DIR (K-wise loss) -> PPO from
//   DIR against it, KL to DIR; DPO on the same rankings; best-of-N -> held-out openings scored by gold -> eval.json,
//   report.html. Every stage is an ordinary `rlhf` command (RUN/stages.json lists them).
#pragma once
#include <cstdint>
#include <string>

namespace rlhf::cli {

struct BaseDemoFlags {
  std::string base;    // a Hugging Face causal-LM folder with its tokenizer
  std::string out;
  bool quick = false;  // CI-sized
  bool rerun = false;
  uint64_t seed = 1;
};

int run_base_demo(const BaseDemoFlags& f);

}  // namespace rlhf::cli
