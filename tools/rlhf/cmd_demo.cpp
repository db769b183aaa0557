// rlhf demo [--out DIR] [--quick] [--overoptimize] [--seed S] [--task reviews|arithmetic] [--base DIR]
//
// The whole RLHF pipeline on a built-in task (src/rlhf/demo_task.h) with a hidden gold preference, on a CPU,
// with nothing downloaded. Every stage is an ordinary `rlhf` command over files in the run folder (printed as
// it runs, logged in RUN/logs, timed in RUN/stages.json):
//   data + tokenizer + random base -> pretrain (sft on text) -> sft -> K candidates per prompt (label import)
//   -> simulated person ranks them (label auto --judge rule:demo, gold + noise) -> export
//   -> reward model (K-wise loss) -> PPO; DPO on the same rankings; best-of-N with the reward model
//   -> evaluation on held-out prompts with the gold preference -> eval.json, samples.jsonl -> report.html
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>

#include "command.h"
#include "demo_arithmetic.h"
#include "demo_base.h"
#include "demo_eval.h"
#include "common/error.h"
#include "common/runtime.h"
#include "model/model.h"
#include "rlhf/demo_task.h"
#include "rlhf/evaluate.h"
#include "stage_runner.h"
#include "train/format.h"
#ifdef RLHF_WITH_LABEL
#include "reward/rules.h"
#endif

namespace fs = std::filesystem;

namespace {

#ifdef RLHF_WITH_LABEL
// The simulated person of the demo: `rlhf label auto --judge rule:demo`.
const bool kDemoRuleRegistered = [] {
  rlhf::reward::register_rule("demo", rlhf::reward::TextRule(rlhf::demo::gold_score));
  return true;
}();
#endif

struct DemoFlags {
  std::string out = "runs/demo";
  bool quick = false;         // CI-sized: under 2 minutes
  bool overoptimize = false;  // PPO with a small β for longer: proxy rises, gold peaks and falls
  bool rerun = false;         // rerun stages whose outputs exist
  uint64_t seed = 1;
  std::string task = "reviews";  // reviews: RLHF from rankings (this file); arithmetic: demo_arithmetic.h
  std::string base;              // a pretrained model folder: the stories task on it (demo_base.h)
};

// The demo's sizes; --quick shrinks them.
struct DemoPlan {
  rlhf::demo::DataSizes data;
  int pretrain_epochs = 3, sft_epochs = 3, rm_epochs = 3, dpo_epochs = 2;
  int k = 4;                  // candidates per prompt
  int ppo_iterations = 100, ppo_batch = 32;
  double ppo_beta = 0.05;
  int eval_repeats = 8, best_of = 16;
  int max_new_tokens = 16;
};

DemoPlan make_plan(const DemoFlags& f) {
  DemoPlan p;
  if (f.quick) {
    p.pretrain_epochs = 2;
    p.sft_epochs = 2;
    p.rm_epochs = 2;
    p.dpo_epochs = 1;
    p.ppo_iterations = 30;
    p.eval_repeats = 2;
    p.best_of = 8;
  }
  if (f.overoptimize) {
    // No KL penalty and a longer run: the policy drifts until the reward model's blind spots pay more than
    // the gold preference (Gao et al. 2022).
    p.ppo_iterations = f.quick ? 60 : 300;
    p.ppo_beta = 0.0;
  }
  return p;
}

// RUN/overoptimize.jsonl from the PPO metrics: proxy (reward-model score) and gold against KL; returns the
// iteration and KL where the gold score peaks (smoothed over 5 iterations).
std::pair<int64_t, double> write_overoptimization(const std::string& metrics, const std::string& out) {
  std::vector<nlohmann::json> rows;
  std::ifstream in(metrics);
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) rows.push_back(nlohmann::json::parse(line));
  std::ofstream o(out);
  int64_t best_it = 0;
  double best_gold = -1e300, best_kl = 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto& r = rows[i];
    if (!r.contains("gold")) continue;
    o << nlohmann::json({{"iteration", r["step"]}, {"kl", r["kl"]}, {"proxy", r["score"]}, {"gold", r["gold"]}}).dump()
      << "\n";
    double g = 0;
    int n = 0;
    for (size_t j = i >= 2 ? i - 2 : 0; j < std::min(rows.size(), i + 3); ++j, ++n) g += rows[j].value("gold", 0.0);
    if (g / n > best_gold) {
      best_gold = g / n;
      best_it = r["step"].get<int64_t>();
      best_kl = r["kl"].get<double>();
    }
  }
  return {best_it, best_kl};
}

// The demo's base model: GPT-2 shaped, 2 layers, 64 wide (about 0.1M parameters plus embeddings).
void write_base_model(const std::string& dir, const std::string& tokenizer_dir, uint64_t seed) {
  const nlohmann::json j = rlhf::demo::base_model_config(tokenizer_dir, /*n_positions=*/64);
  auto model = rlhf::create_model(rlhf::parse_model_config(j, dir + "/config.json"), seed);
  rlhf::SaveOptions so;
  so.source_dir = tokenizer_dir;
  rlhf::save_model(*model, dir, so);
}

int run_demo(const DemoFlags& f) {
  RLHF_CHECK(f.task == "reviews" || f.task == "arithmetic", "demo: --task must be reviews or arithmetic, not \"",
             f.task, "\"");
  if (!f.base.empty()) {
    RLHF_CHECK(f.task == "reviews" && !f.overoptimize, "demo --base: runs the stories task on the given model; "
               "--task and --overoptimize are for the built-in model");
    return rlhf::cli::run_base_demo({f.base, f.out == "runs/demo" ? "runs/demo-base" : f.out, f.quick, f.rerun,
                                     f.seed});
  }
  if (f.task == "arithmetic") {
    RLHF_CHECK(!f.overoptimize, "demo: --overoptimize is for --task reviews");
    return rlhf::cli::run_arithmetic_demo({f.out == "runs/demo" ? "runs/demo-arithmetic" : f.out, f.quick, f.rerun,
                                           f.seed});
  }
  const DemoPlan p = make_plan(f);
  const fs::path run = fs::absolute(f.out);
  fs::create_directories(run);
  auto R = [&](const std::string& rel) { return (run / rel).string(); };
  rlhf::cli::StageRunner runner(run.string(), f.rerun);
  const std::string dev = rlhf::cli::runtime_flags().device;
  const std::string seed = std::to_string(f.seed);
  const auto t_all = std::chrono::steady_clock::now();

  // Stage 0, in process: the task's data, tokenizer and a randomly initialised base model.
  if (!fs::exists(R("base-init/config.json")) || f.rerun) {
    const auto t0 = std::chrono::steady_clock::now();
    rlhf::demo::write_tokenizer(R("tokenizer"));
    rlhf::demo::write_data(R("data"), p.data, f.seed);
    write_base_model(R("base-init"), R("tokenizer"), f.seed);
    runner.record("data", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(),
                  "built-in: tokenizer, data/*.jsonl, base-init (random GPT-2, 2x64)");
  }
  std::cerr << "rlhf demo: run folder " << run.string() << "\n";

  using rlhf::cli::Stage;
  const std::string mnt = std::to_string(p.max_new_tokens);
  std::vector<Stage> stages = {
      {"pretrain",
       {"sft", "--model", R("base-init"), "--data", R("data/pretrain.jsonl"), "--out", R("base"), "--epochs",
        std::to_string(p.pretrain_epochs), "--lr", "3e-3", "--batch-size", "32", "--seed", seed, "--device", dev},
       R("base/config.json")},
      {"sft",
       {"sft", "--model", R("base"), "--data", R("data/sft.jsonl"), "--out", R("sft"), "--epochs",
        std::to_string(p.sft_epochs), "--lr", "1e-3", "--batch-size", "32", "--seed", seed, "--device", dev},
       R("sft/config.json")},
      {"candidates",
       {"label", "import", "--db", R("labels.sqlite"), "--model", R("sft"), "--prompts", R("data/prompts.jsonl"),
        "--k", std::to_string(p.k), "--max-new-tokens", mnt, "--seed", seed, "--device", dev},
       ""},
      {"rank",
       {"label", "auto", "--db", R("labels.sqlite"), "--judge", "rule:demo", "--noise", "0.1", "--seed", seed},
       ""},
      {"export", {"label", "export", "--db", R("labels.sqlite"), "--out", R("data/rankings.jsonl")}, ""},
      {"export-pairs",
       {"label", "export", "--db", R("labels.sqlite"), "--out", R("data/pairs.jsonl"), "--format", "pairs"},
       ""},
      {"reward",
       {"reward", "--model", R("sft"), "--data", R("data/rankings.jsonl"), "--out", R("reward"), "--epochs",
        std::to_string(p.rm_epochs), "--lr", "1e-3", "--seed", seed, "--device", dev},
       R("reward/config.json")},
      {"ppo",
       {"ppo", "--policy", R("sft"), "--reward", R("reward"), "--prompts", R("data/prompts.jsonl"), "--out", R("ppo"),
        "--iterations", std::to_string(p.ppo_iterations), "--batch-size", std::to_string(p.ppo_batch),
        "--max-new-tokens", mnt, "--kl-coef", std::to_string(p.ppo_beta), "--lr", "1e-3", "--critic-lr", "1e-3",
        "--gold-judge", "rule:demo", "--seed",
        seed, "--device", dev},
       R("ppo/final/config.json")},
      {"dpo",
       {"dpo", "--model", R("sft"), "--data", R("data/pairs.jsonl"), "--out", R("dpo"), "--epochs",
        std::to_string(p.dpo_epochs), "--lr", "5e-4", "--beta", "0.1", "--seed", seed, "--device", dev},
       R("dpo/config.json")},
  };
  // Candidates, ranking and export are one unit: redo them all unless the rankings exist.
  rlhf::cli::label_stages_as_one(stages, R("data/pairs.jsonl"), R("labels.sqlite"), f.rerun);
  const int total = static_cast<int>(stages.size()) + 2;
  int i = 1;
  for (const auto& s : stages) runner.run(s, i++, total);

  if (f.overoptimize) {
    auto [it, kl] = write_overoptimization(R("ppo/metrics.jsonl"), R("overoptimize.jsonl"));
    std::cerr << "over-optimisation: gold peaks at iteration " << it << " (KL " << kl
              << " nats); the reward model's score keeps rising after it (" << R("overoptimize.jsonl") << ")\n";
  }

  // Evaluation, in process: held-out prompts, the gold preference.
  std::cerr << "[" << i++ << "/" << total << "] evaluate: base, sft, best-of-" << p.best_of
            << ", dpo, ppo on held-out prompts\n";
  const auto t_eval = std::chrono::steady_clock::now();
  rlhf::cli::DemoEvalOptions eo;
  eo.run = run.string();
  eo.reference = R("sft");
  eo.reward = R("reward");
  eo.policies = {{"base", R("base")}, {"dpo", R("dpo")}, {"ppo", R("ppo/final")}};
  eo.prompts = R("data/eval_prompts.jsonl");
  eo.gold = rlhf::demo::gold_score;
  eo.repeats = p.eval_repeats;
  eo.best_of = p.best_of;
  eo.max_new_tokens = p.max_new_tokens;
  eo.seed = f.seed;
  rlhf::cli::evaluate_demo(eo);
  runner.record("evaluate", std::chrono::duration<double>(std::chrono::steady_clock::now() - t_eval).count(),
                "in process: gold, reward model, KL, length, win rate on data/eval_prompts.jsonl");

  runner.run({"report", {"report", run.string()}, ""}, i++, total);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_all).count();
  std::cout << "\nreport: " << R("report.html") << "\neval:   " << R("eval.json") << "\ntotal:  " << std::fixed
            << std::setprecision(0) << secs << " s\n";
  return 0;
}

rlhf::cli::Command reg{"demo", "The whole RLHF pipeline on a built-in task with a hidden gold preference",
                       [](CLI::App& app) {
                         auto f = std::make_shared<DemoFlags>();
                         app.add_option("--out", f->out, "run folder (arithmetic: runs/demo-arithmetic)")
                             ->capture_default_str();
                         app.add_option("--task", f->task,
                                        "reviews: RLHF from simulated rankings; arithmetic: GRPO with a verifiable "
                                        "reward (rule:numeric)")
                             ->capture_default_str();
                         app.add_option("--base", f->base,
                                        "a pretrained causal-LM folder (e.g. ../shared/data/stories260K/hf): RLHF on "
                                        "it with the stories task's hidden gold preference (runs/demo-base)");
                         app.add_flag("--quick", f->quick, "a small run (under 2 minutes), for CI");
                         app.add_flag("--overoptimize", f->overoptimize,
                                      "PPO without KL penalty for longer: the proxy rises while gold peaks and falls");
                         app.add_flag("--rerun", f->rerun, "rerun stages whose outputs already exist");
                         app.add_option("--seed", f->seed, "seed of the data, models and sampling")
                             ->capture_default_str();
                         return [f] { return run_demo(*f); };
                       }};

}  // namespace
