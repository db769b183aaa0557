// `rlhf demo --task arithmetic`: the task's data against hand arithmetic (every answer is a + b, the three splits
// share no problem), and one quick run end to end: held-out evaluation rows where --eval-every puts them, scored
// by rule:numeric exactly as the answers say, summarised in arithmetic.json and drawn in the report.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>

#include "rlhf/arithmetic_task.h"
#include "test_util.h"

using nlohmann::json;
namespace fs = std::filesystem;
namespace test = rlhf::test;

namespace {

std::vector<json> read_lines(const fs::path& p) {
  std::vector<json> out;
  std::ifstream in(p);
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) out.push_back(json::parse(line));
  return out;
}

// "a+b=" → (a, b)
std::pair<int, int> operands(const std::string& prompt) {
  std::smatch m;
  EXPECT_TRUE(std::regex_match(prompt, m, std::regex(R"((\d+)\+(\d+)=)"))) << prompt;
  return {std::stoi(m[1]), std::stoi(m[2])};
}

}  // namespace

TEST(ArithmeticTask, AnswersAreSumsAndSplitsAreDisjoint) {
  test::TempDir tmp;
  rlhf::arithmetic::write_data(tmp.path.string(), {}, 7);
  std::set<std::string> seen;
  size_t total = 0;
  for (const char* f : {"eval_prompts.jsonl", "sft.jsonl", "prompts.jsonl"}) {
    for (const auto& j : read_lines(fs::path(tmp.path.string()) / f)) {
      const auto [a, b] = operands(j["prompt"]);
      EXPECT_LE(std::max(a, b), 49);
      const std::string answer = j.contains("answer") ? j["answer"] : j["completion"];
      EXPECT_EQ(answer, std::to_string(a + b)) << j.dump();
      EXPECT_TRUE(seen.insert(j["prompt"]).second) << j["prompt"] << " is in two splits";
      ++total;
    }
  }
  EXPECT_EQ(total, 2500u);  // 50 × 50, each once
  EXPECT_EQ(read_lines(fs::path(tmp.path.string()) / "eval_prompts.jsonl").size(), 200u);
  EXPECT_EQ(read_lines(fs::path(tmp.path.string()) / "sft.jsonl").size(), 1100u);
}

TEST(ArithmeticDemo, QuickRunEvaluatesHeldOutSumsWithTheRule) {
  test::TempDir tmp;
  const std::string run = (fs::path(tmp.path.string()) / "run").string();
  std::string out;
  ASSERT_EQ(test::run_rlhf("demo --task arithmetic --quick --seed 2 --threads 1 --out " + run, &out), 0) << out;
  const auto metrics = read_lines(fs::path(run) / "ppo/metrics.jsonl");
  std::vector<int64_t> eval_steps;
  std::vector<double> acc;
  for (const auto& m : metrics) {
    if (m["split"] != "eval") continue;
    eval_steps.push_back(m["step"]);
    acc.push_back(m["reward/numeric"]);
    // One reward, weight 1: the score is the accuracy; 200 problems × 4 samples: a multiple of 1/800.
    EXPECT_DOUBLE_EQ(m["score"].get<double>(), m["reward/numeric"].get<double>());
    EXPECT_NEAR(m["reward/numeric"].get<double>() * 800, std::round(m["reward/numeric"].get<double>() * 800), 1e-6);
  }
  EXPECT_EQ(eval_steps, (std::vector<int64_t>{0, 25, 50, 60}));
  const json summary = json::parse(std::ifstream(fs::path(run) / "arithmetic.json"));
  EXPECT_EQ(summary["accuracy_before"].get<double>(), acc.front());
  EXPECT_EQ(summary["accuracy_after"].get<double>(), acc.back());
  // SFT on 1,100 sums leaves a policy far above chance (1 in ~99 sums) on sums it never saw.
  EXPECT_GT(acc.front(), 0.05);
  std::ifstream report(fs::path(run) / "report.html");
  const std::string html((std::istreambuf_iterator<char>(report)), std::istreambuf_iterator<char>());
  EXPECT_NE(html.find("Held-out evaluation"), std::string::npos);
}
