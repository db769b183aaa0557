#include "demo_base.h"

#include <chrono>
#include <filesystem>
#include <iomanip>
#include <iostream>

#include "common/error.h"
#include "common/runtime.h"
#include "command.h"
#include "demo_eval.h"
#include "rlhf/stories_task.h"
#include "stage_runner.h"
#ifdef RLHF_WITH_LABEL
#include "reward/rules.h"
#endif

namespace fs = std::filesystem;

namespace rlhf::cli {
namespace {

#ifdef RLHF_WITH_LABEL
// The simulated person and the gold judge of the stories task: rule:stories.
const bool kStoriesRuleRegistered = [] {
  reward::register_rule("stories", reward::TextRule(demo::stories_gold));
  return true;
}();
#endif

struct BasePlan {
  int train_prompts = 224, eval_prompts = 64;  // 288 openings in all (stories_task.cpp)
  int k = 4;                                   // continuations per opening
  int max_new_tokens = 48;
  int rm_epochs = 3, dpo_epochs = 2;
  // Measured on stories260K (seed 1, 40 iterations against the same reward model): lr 5e-4 / β 0.05 collapsed the
  // policy (entropy 0.97 -> 0.05, KL 23 nats); 1e-4 / 0.05 reached gold 2.4 at KL 8-10; 5e-5 / 0.1 gold 2.1-2.6
  // at KL 4-5.6 (the base: 0.9).
  int ppo_iterations = 60, ppo_batch = 32;
  std::string ppo_lr = "5e-5", kl_coef = "0.1";
  std::string dpo_lr = "1e-4";  // 5e-4 (the built-in demo's) took DPO to KL 42 nats from the base
  int eval_repeats = 8, best_of = 16;
};

// --quick keeps the reward model's data (it is cheap: sampling and a few epochs) and shortens the rest.
BasePlan make_plan(bool quick) {
  BasePlan p;
  if (quick) {
    p.eval_prompts = 32;
    p.max_new_tokens = 32;
    p.rm_epochs = 2;
    p.dpo_epochs = 1;
    p.ppo_iterations = 20;
    p.eval_repeats = 2;
    p.best_of = 8;
  }
  return p;
}

}  // namespace

int run_base_demo(const BaseDemoFlags& f) {
#ifndef RLHF_WITH_LABEL
  fail("demo --base: this build has no labelling server (hint: configure with -DRLHF_WITH_LABEL=ON)");
#endif
  const fs::path base = fs::weakly_canonical(fs::absolute(f.base));
  RLHF_CHECK(fs::exists(base / "config.json"), base.string(),
             ": no config.json (hint: --base takes a Hugging Face causal-LM folder with its tokenizer, e.g. "
             "../shared/data/stories260K/hf)");
  RLHF_CHECK(fs::exists(base / "tokenizer.json"), base.string(), ": no tokenizer.json (hint: the folder needs its "
             "tokenizer; the demo samples and scores text)");
  const BasePlan p = make_plan(f.quick);
  const fs::path run = fs::absolute(f.out);
  fs::create_directories(run);
  auto R = [&](const std::string& rel) { return (run / rel).string(); };
  StageRunner runner(run.string(), f.rerun);
  const std::string dev = runtime_flags().device, seed = std::to_string(f.seed), B = base.string();
  const std::string mnt = std::to_string(p.max_new_tokens);
  const auto t_all = std::chrono::steady_clock::now();

  if (!fs::exists(R("data/prompts.jsonl")) || f.rerun) {
    const auto t0 = std::chrono::steady_clock::now();
    demo::write_story_prompts(R("data"), p.train_prompts, p.eval_prompts, f.seed);
    runner.record("data", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(),
                  "built-in: story openings (data/prompts.jsonl, data/eval_prompts.jsonl); base " + B);
  }
  std::cerr << "rlhf demo --base " << B << ": run folder " << run.string() << "\n";

  std::vector<Stage> stages = {
      {"candidates",
       {"label", "import", "--db", R("labels.sqlite"), "--model", B, "--prompts", R("data/prompts.jsonl"), "--k",
        std::to_string(p.k), "--max-new-tokens", mnt, "--seed", seed, "--device", dev},
       ""},
      {"rank", {"label", "auto", "--db", R("labels.sqlite"), "--judge", "rule:stories", "--noise", "0.1", "--seed",
                seed},
       ""},
      {"export", {"label", "export", "--db", R("labels.sqlite"), "--out", R("data/rankings.jsonl")}, ""},
      {"export-pairs",
       {"label", "export", "--db", R("labels.sqlite"), "--out", R("data/pairs.jsonl"), "--format", "pairs"}, ""},
      {"reward",
       {"reward", "--model", B, "--data", R("data/rankings.jsonl"), "--out", R("reward"), "--epochs",
        std::to_string(p.rm_epochs), "--lr", "1e-3", "--seed", seed, "--device", dev},
       R("reward/config.json")},
      {"ppo",
       {"ppo", "--policy", B, "--reward", R("reward"), "--prompts", R("data/prompts.jsonl"), "--out", R("ppo"),
        "--iterations", std::to_string(p.ppo_iterations), "--batch-size", std::to_string(p.ppo_batch),
        "--max-new-tokens", mnt, "--kl-coef", p.kl_coef, "--lr", p.ppo_lr, "--critic-lr", "1e-3", "--gold-judge",
        "rule:stories", "--seed", seed, "--device", dev},
       R("ppo/final/config.json")},
      {"dpo",
       {"dpo", "--model", B, "--data", R("data/pairs.jsonl"), "--out", R("dpo"), "--epochs",
        std::to_string(p.dpo_epochs), "--lr", p.dpo_lr, "--beta", "0.1", "--seed", seed, "--device", dev},
       R("dpo/config.json")},
  };
  // Candidates, ranking and export are one unit: redo them all unless the rankings exist.
  label_stages_as_one(stages, R("data/pairs.jsonl"), R("labels.sqlite"), f.rerun);
  const int total = static_cast<int>(stages.size()) + 2;
  int i = 1;
  for (const auto& s : stages) runner.run(s, i++, total);

  std::cerr << "[" << i++ << "/" << total << "] evaluate: the base (reference), best-of-" << p.best_of
            << ", dpo, ppo on held-out openings\n";
  const auto t_eval = std::chrono::steady_clock::now();
  DemoEvalOptions eo;
  eo.run = run.string();
  eo.reference = B;
  eo.reward = R("reward");
  eo.policies = {{"dpo", R("dpo")}, {"ppo", R("ppo/final")}};
  eo.prompts = R("data/eval_prompts.jsonl");
  eo.gold = demo::stories_gold;
  eo.repeats = p.eval_repeats;
  eo.best_of = p.best_of;
  eo.max_new_tokens = p.max_new_tokens;
  eo.seed = f.seed;
  eo.extra = nlohmann::json{
      {"task", "stories"}, {"base", B}, {"reference", "the base model (row \"sft\"): no SFT stage"}};
  evaluate_demo(eo);
  runner.record("evaluate", std::chrono::duration<double>(std::chrono::steady_clock::now() - t_eval).count(),
                "in process: gold, reward model, KL, length, win rate on data/eval_prompts.jsonl");

  runner.run({"report", {"report", run.string()}, ""}, i++, total);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_all).count();
  std::cout << "\nreport: " << R("report.html") << "\neval:   " << R("eval.json") << "\ntotal:  " << std::fixed
            << std::setprecision(0) << secs << " s\n";
  return 0;
}

}  // namespace rlhf::cli
