// The demo end to end (`rlhf demo --quick`), and `rlhf pipeline` restarting where it stopped.
// What is checked is the demo's promise: RLHF beats SFT on the hidden gold preference the reward model never saw.
#include <gtest/gtest.h>

#include <fstream>

#include <nlohmann/json.hpp>

#include "rlhf/demo_task.h"
#include "test_util.h"

using nlohmann::json;
namespace fs = std::filesystem;
namespace test = rlhf::test;

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

TEST(Demo, QuickRunBeatsSftOnGold) {
  test::TempDir tmp;
  std::string out;
  ASSERT_EQ(test::run_rlhf("demo --quick --device cpu --out " + tmp / "run", &out), 0) << out;
  std::ifstream in(tmp / "run/eval.json");
  json eval = json::parse(in);
  for (const char* p : {"base", "sft", "best_of_n", "dpo", "ppo"}) {
    ASSERT_TRUE(eval["policies"].contains(p)) << p;
    for (const char* k : {"gold", "reward_model", "kl_to_sft", "length", "win_rate_vs_sft"})
      EXPECT_TRUE(eval["policies"][p][k].is_number()) << p << " " << k;
  }
  const auto& pol = eval["policies"];
  EXPECT_GT(pol["ppo"]["gold"].get<double>(), pol["sft"]["gold"].get<double>() + 0.5) << eval.dump(2);
  EXPECT_GT(pol["ppo"]["win_rate_vs_sft"].get<double>(), 0.6) << eval.dump(2);
  EXPECT_GT(pol["best_of_n"]["gold"].get<double>(), pol["sft"]["gold"].get<double>()) << eval.dump(2);
  EXPECT_GT(pol["sft"]["gold"].get<double>(), pol["base"]["gold"].get<double>()) << eval.dump(2);
  EXPECT_TRUE(fs::exists(tmp / "run/report.html"));
  EXPECT_TRUE(fs::exists(tmp / "run/ppo/final/config.json"));
  EXPECT_NE(out.find("report: "), std::string::npos);

  // pipeline over the demo's files: sft only, then again -> skipped (restart where it stopped).
  std::ofstream cfg(tmp / "p.toml");
  cfg << "[pipeline]\nout = \"" << tmp / "pipe" << "\"\n\n[sft]\nmodel = \"" << tmp / "run/base"
      << "\"\ndata = \"" << tmp / "run/data/sft.jsonl" << "\"\nmax-steps = 3\nbatch-size = 8\nlr = 1e-3\n";
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
