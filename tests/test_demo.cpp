// The demo end to end (`rlhf demo --quick`), and `rlhf pipeline` restarting where it stopped.
// What is checked is the demo's promise: RLHF beats SFT on the hidden gold preference the reward model never saw.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <iostream>
#include <vector>

#include <nlohmann/json.hpp>

#include "rlhf/demo_task.h"
#include "test_util.h"

using nlohmann::json;
namespace fs = std::filesystem;
namespace test = rlhf::test;

namespace {
constexpr int kSeeds = 3;
// Medians measured (tests/learning_matrix.sh: OPENBLAS_CORETYPE Prescott, Haswell, SkylakeX, unset × 1 and 2
// threads): gold PPO − SFT 1.62-1.82, PPO's win rate vs SFT 0.82-0.85, best-of-n − SFT 1.78-1.79, SFT − base 1.88
// (a single answer's gold spreads by about 1.5). Thresholds: about half the smallest, win rate halfway to chance.
constexpr double kPpoGain = 0.8, kWinRate = 0.65, kBonGain = 0.8, kSftGain = 0.9;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];  // kSeeds is odd
}
}  // namespace

TEST(DemoTask, GoldScoreByHand) {
  using rlhf::demo::gold_score;
  EXPECT_EQ(gold_score("the cat was", " warm, calm and sweet."), 3.0);       // three distinct positives
  EXPECT_EQ(gold_score("the cat was", " warm and sad."), 0.0);               // +1 - 1
  EXPECT_EQ(gold_score("the cat was", " warm and warm."), 0.0);              // +1, repeat -1
  EXPECT_EQ(gold_score("the cat was", " good, warm, calm and sweet."), 3.0); // 4 positives - 1 (over three)
  EXPECT_EQ(gold_score("the cat was", " warm"), -1.0);                       // +1, malformed (no ".") -2
  EXPECT_EQ(gold_score("the cat was", " warm. cat"), -1.0);                  // unknown word, text after "."
  EXPECT_EQ(gold_score("the cat was", ""), -2.0);
}

// The statistic: medians over kSeeds whole quick runs (each seed makes its own data, base model, labels and
// samples), so one unlucky trajectory on some CPU's kernels cannot fail it and one lucky one cannot pass it.
// Thresholds: well below the spread measured over seeds, OpenBLAS kernels and thread counts (see below).
TEST(Demo, QuickRunsBeatSftOnGold) {
  test::TempDir tmp;
  std::string out;
  std::vector<double> ppo_gain, win, bon_gain, sft_gain;
  for (int seed = 1; seed <= kSeeds; ++seed) {
    const std::string dir = tmp / ("run" + std::to_string(seed));
    ASSERT_EQ(test::run_rlhf("demo --quick --device cpu --seed " + std::to_string(seed) + " --out " + dir, &out), 0)
        << out;
    std::ifstream in(dir + "/eval.json");
    json eval = json::parse(in);
    for (const char* p : {"base", "sft", "best_of_n", "dpo", "ppo"}) {
      ASSERT_TRUE(eval["policies"].contains(p)) << p;
      for (const char* k : {"gold", "reward_model", "kl_to_sft", "length", "win_rate_vs_sft"})
        EXPECT_TRUE(eval["policies"][p][k].is_number()) << p << " " << k;
    }
    const auto& pol = eval["policies"];
    auto gold = [&](const char* p) { return pol[p]["gold"].get<double>(); };
    ppo_gain.push_back(gold("ppo") - gold("sft"));
    win.push_back(pol["ppo"]["win_rate_vs_sft"].get<double>());
    bon_gain.push_back(gold("best_of_n") - gold("sft"));
    sft_gain.push_back(gold("sft") - gold("base"));
    std::cerr << "demo seed " << seed << ": gold ppo - sft " << ppo_gain.back() << ", ppo win rate " << win.back()
              << ", best-of-n - sft " << bon_gain.back() << ", sft - base " << sft_gain.back() << "\n";
    EXPECT_TRUE(fs::exists(dir + "/report.html"));
    EXPECT_TRUE(fs::exists(dir + "/ppo/final/config.json"));
    EXPECT_NE(out.find("report: "), std::string::npos);
  }
  std::cerr << "demo medians over " << kSeeds << " seeds: gold ppo - sft " << median(ppo_gain) << ", win rate "
            << median(win) << ", best-of-n - sft " << median(bon_gain) << ", sft - base " << median(sft_gain) << "\n";
  EXPECT_GT(median(ppo_gain), kPpoGain);
  EXPECT_GT(median(win), kWinRate);
  EXPECT_GT(median(bon_gain), kBonGain);
  EXPECT_GT(median(sft_gain), kSftGain);
  const std::string run1 = tmp / "run1";

  // pipeline over the demo's files: sft only, then again -> skipped (restart where it stopped).
  std::ofstream cfg(tmp / "p.toml");
  cfg << "[pipeline]\nout = \"" << tmp / "pipe" << "\"\n\n[sft]\nmodel = \"" << run1 + "/base"
      << "\"\ndata = \"" << run1 + "/data/sft.jsonl" << "\"\nmax-steps = 3\nbatch-size = 8\nlr = 1e-3\n";
  cfg.close();
  ASSERT_EQ(test::run_rlhf("pipeline --device cpu --config " + tmp / "p.toml", &out), 0) << out;
  EXPECT_TRUE(fs::exists(tmp / "pipe/sft/config.json"));
  EXPECT_TRUE(fs::exists(tmp / "pipe/report.html"));
  ASSERT_EQ(test::run_rlhf("pipeline --device cpu --config " + tmp / "p.toml", &out), 0) << out;
  EXPECT_NE(out.find("already done"), std::string::npos) << out;
  // An unknown section is an error naming it.
  std::ofstream bad(tmp / "bad.toml");
  bad << "[sftt]\nmodel = \"x\"\n";
  bad.close();
  EXPECT_NE(test::run_rlhf("pipeline --config " + tmp / "bad.toml", &out), 0);
  EXPECT_NE(out.find("[sftt]"), std::string::npos) << out;
}
