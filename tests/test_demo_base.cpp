// `rlhf demo --base DIR` on a model someone else pretrained: stories260K (Karpathy's Llama trained on TinyStories)
// from ../shared/data, never copied here; skipped, saying so, where that folder is absent. The stories task's gold
// preference by hand, and the pipeline end to end: every stage ran, eval.json has every row, the base folder is
// only read.
#include <gtest/gtest.h>

#include <filesystem>
#include <set>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "rlhf/stories_task.h"
#include "test_util.h"

using nlohmann::json;
namespace fs = std::filesystem;
namespace test = rlhf::test;

namespace {
// RLHF_SHARED_DATA, else ../shared/data beside the checkout (CI has it there).
std::string shared_data() {
  if (const char* e = std::getenv("RLHF_SHARED_DATA")) return e;
  return (fs::path(RLHF_SOURCE_DIR).parent_path() / "shared" / "data").string();
}

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
}  // namespace

TEST(StoriesTask, GoldByHand) {
  using rlhf::demo::stories_gold;
  EXPECT_EQ(stories_gold("", " They played together and were happy."), 3.0);  // played, together, happy
  EXPECT_EQ(stories_gold("", " She was sad and cried. Then she smiled."), -1.0);  // smiled - sad - cried
  EXPECT_EQ(stories_gold("", " Happy happy happy dog."), 0.0);                    // 1 - 0.5·2
  EXPECT_EQ(stories_gold("", " The end."), -1.0);                                 // nothing, under 3 words
  EXPECT_EQ(stories_gold("", " Fun!"), 0.0);                                      // +1, under 3 words -1
  EXPECT_EQ(stories_gold("", ""), -1.0);
  EXPECT_EQ(stories_gold("", " He LOVED his friends, his best friends."), 2.5);   // loved, friends, best; repeat
}

TEST(StoriesTask, PromptsAreDistinctAndSplitDisjoint) {
  const auto all = rlhf::demo::story_prompts();
  EXPECT_EQ(std::set<std::string>(all.begin(), all.end()).size(), all.size());
  test::TempDir tmp;
  rlhf::demo::write_story_prompts(tmp.path.string(), 200, 60, 3);
  std::set<std::string> train, eval;
  for (auto [name, set] : {std::pair<const char*, std::set<std::string>*>{"prompts.jsonl", &train},
                           {"eval_prompts.jsonl", &eval}}) {
    std::ifstream in(tmp / name);
    for (std::string line; std::getline(in, line);) set->insert(json::parse(line).at("prompt").get<std::string>());
  }
  EXPECT_EQ(train.size(), 200u);
  EXPECT_EQ(eval.size(), 60u);
  for (const auto& p : eval) EXPECT_EQ(train.count(p), 0u) << p;
  EXPECT_THROW(rlhf::demo::write_story_prompts(tmp.path.string(), 1000, 60, 3), std::exception);
}

TEST(DemoBase, QuickRunOnStories260K) {
  const std::string base = shared_data() + "/stories260K/hf";
  if (!fs::exists(base + "/config.json"))
    GTEST_SKIP() << "SKIPPED (real data): " << base << " is absent; CI has ../shared/data beside the checkout "
                 << "(or set RLHF_SHARED_DATA)";
  const std::string weights_before = read_all(base + "/model.safetensors");
  test::TempDir tmp;
  const std::string run = tmp / "run";
  std::string out;
  ASSERT_EQ(test::run_rlhf("demo --quick --device cpu --base " + base + " --out " + run, &out), 0) << out;
  EXPECT_EQ(read_all(base + "/model.safetensors"), weights_before) << "the base folder is only read";
  json eval = json::parse(std::ifstream(run + "/eval.json"));
  EXPECT_EQ(eval["task"], "stories");
  for (const char* p : {"sft", "best_of_n", "dpo", "ppo"}) {
    ASSERT_TRUE(eval["policies"].contains(p)) << p;
    for (const char* k : {"gold", "reward_model", "kl_to_sft", "length", "win_rate_vs_sft"})
      EXPECT_TRUE(eval["policies"][p][k].is_number()) << p << " " << k;
  }
  json stages = json::parse(std::ifstream(run + "/stages.json"));
  std::set<std::string> names;
  for (const auto& s : stages) names.insert(s.at("stage").get<std::string>());
  for (const char* s : {"data", "candidates", "rank", "export", "reward", "ppo", "dpo", "evaluate", "report"})
    EXPECT_TRUE(names.count(s)) << s;
  EXPECT_TRUE(fs::exists(run + "/report.html"));
  EXPECT_TRUE(fs::exists(run + "/ppo/final/config.json"));
  std::cerr << "demo --base stories260K --quick: " << eval["policies"].dump() << "\n";
}
