// rlhf sft | reward | dpo | score end to end on the gpt2-e2e fixture (real GPT-2 tokenizer, 2 layers, 32 wide):
// resume is bit-identical (10 steps == 5 + resume + 5), outputs load back with load_model and config/tensor
// names of transformers, score reproduces the in-process reward, and bad data gives file:line:field errors.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <fstream>
#include <sstream>

#include "io/safetensors.h"
#include "model/model.h"
#include "rlhf/examples.h"
#include "rlhf/reward.h"
#include "test_cli_util.h"
#include "test_util.h"
#include "train/format.h"

using namespace rlhf;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

const std::string kModel = test::data("models/gpt2-e2e");

std::vector<json> sft_lines() {
  std::vector<json> v;
  const char* animals[] = {"cat", "dog", "cow", "owl", "fox", "bee", "elk", "yak", "emu", "ant", "bat", "rat"};
  for (int i = 0; i < 12; ++i)
    v.push_back({{"prompt", std::string("Name animal ") + std::to_string(i) + ":"},
                 {"completion", std::string(" the ") + animals[i]}});
  v.push_back({{"messages", json::array({{{"role", "user"}, {"content", "hi"}},
                                          {{"role", "assistant"}, {"content", "hello"}}})}});
  v.push_back({{"text", "plain text for the language model"}});
  return v;
}

std::vector<json> pair_lines(int n) {
  std::vector<json> v;
  for (int i = 0; i < n; ++i)
    v.push_back({{"prompt", "Say something " + std::to_string(i % 5)},
                 {"chosen", " good good good"},
                 {"rejected", " bad bad bad"}});
  return v;
}

// The command's result: the last stdout line that is a JSON object with "steps".
json result_of(const std::string& out) {
  std::istringstream in(out);
  json last;
  for (std::string l; std::getline(in, l);)
    if (!l.empty() && l[0] == '{') {
      auto j = json::parse(l, nullptr, /*allow_exceptions=*/false);
      if (j.is_object() && j.contains("steps")) last = j;
    }
  return last;
}

bool same_weights(const std::string& a, const std::string& b) {
  auto x = io::load_safetensors(a + "/model.safetensors"), y = io::load_safetensors(b + "/model.safetensors");
  if (x.size() != y.size()) return false;
  for (auto& [k, t] : x)
    if (!y.count(k) || !torch::equal(t, y[k])) return false;
  return true;
}

}  // namespace

TEST(TrainCli, SftResumeIsBitIdentical) {
  test::TempDir tmp;
  test::write_lines(tmp / "sft.jsonl", sft_lines());
  const std::string common = "sft --model " + kModel + " --data " + tmp / "sft.jsonl" +
                             " --eval-fraction 0 --batch-size 2 --max-steps 10 --lr 1e-3 --warmup-steps 2"
                             " --weight-decay 0.1 --seed 3 --threads 1 --device cpu --epochs 1";
  std::string out;
  ASSERT_EQ(test::run_rlhf(common + " --out " + tmp / "a" + " --save-every 5", &out), 0) << out;
  EXPECT_NE(out.find("sft config: {"), std::string::npos) << out;
  ASSERT_TRUE(fs::exists(tmp / "a/checkpoints/step-000005/optimizer.safetensors"));
  ASSERT_TRUE(fs::exists(tmp / "a/checkpoints/step-000005/train_config.json"));
  ASSERT_EQ(test::run_rlhf(common + " --out " + tmp / "b" + " --resume " + tmp / "a/checkpoints/step-000005", &out),
            0)
      << out;
  EXPECT_NE(out.find("resumed from"), std::string::npos) << out;
  EXPECT_TRUE(same_weights(tmp / "a", tmp / "b"));
  EXPECT_FALSE(same_weights(tmp / "a", tmp / "a/checkpoints/step-000005"));
  // The output is a transformers folder: same architecture, names and shapes as the input, tokenizer copied.
  auto in = io::load_safetensors(kModel + "/model.safetensors"), o = io::load_safetensors(tmp / "a/model.safetensors");
  EXPECT_EQ(in.size(), o.size());
  for (auto& [k, t] : in) EXPECT_TRUE(o.count(k) && o[k].sizes() == t.sizes()) << k;
  EXPECT_TRUE(fs::exists(tmp / "a/tokenizer.json"));
  EXPECT_TRUE(fs::exists(tmp / "a/rlhf_format.json"));
  auto m = load_model(tmp / "a");
  EXPECT_EQ(m->config().architecture, "GPT2LMHeadModel");
  // 14 examples, batch 2: 7 batches an epoch, so step 5 is mid-epoch (the data position matters).
  // metrics.jsonl: one line per step (10) plus the final eval line when there is an eval split (none here).
  std::ifstream mj(tmp / "a/metrics.jsonl");
  int lines = 0;
  for (std::string l; std::getline(mj, l); ++lines) {
    auto j = json::parse(l);
    EXPECT_TRUE(j.contains("loss") && j.contains("lr") && j.contains("grad_norm")) << l;
  }
  EXPECT_EQ(lines, 10);
}

TEST(TrainCli, RewardScoreAndNormalize) {
  test::TempDir tmp;
  test::write_lines(tmp / "pairs.jsonl", pair_lines(24));
  std::vector<json> ranks;
  for (int i = 0; i < 6; ++i)
    ranks.push_back({{"prompt", "Q" + std::to_string(i)},
                     {"responses", {" good good", " ok ok", " bad bad", " meh meh"}},
                     {"ranks", {1, 2, 3, 2}}});
  test::write_lines(tmp / "ranks.jsonl", ranks);
  std::string out;
  ASSERT_EQ(test::run_rlhf("reward --model " + kModel + " --data " + tmp / "pairs.jsonl" + " --out " + tmp / "rm" +
                               " --batch-size 8 --epochs 3 --lr 3e-3 --eval-fraction 0.25 --normalize mean-std"
                               " --threads 1 --device cpu",
                           &out),
            0)
      << out;
  auto result = result_of(out);
  EXPECT_GE(result["eval"]["accuracy"].get<double>(), 0.99) << out;
  EXPECT_NEAR(result["normalize"]["mean_after"].get<double>(), 0.0, 1e-4);
  EXPECT_NEAR(result["normalize"]["std_after"].get<double>(), 1.0, 1e-4);
  auto rm = load_model(tmp / "rm");
  EXPECT_EQ(rm->config().architecture, "GPT2ForSequenceClassification");
  EXPECT_EQ(rm->config().num_labels, 1);
  // score: the same tokens and scores as in-process.
  test::write_lines(tmp / "score_in.jsonl", {{{"prompt", "Say something 1"}, {"response", " good good good"}},
                                       {{"prompt", "Say something 1"}, {"response", " bad bad bad"}}});
  ASSERT_EQ(test::run_rlhf("score --model " + tmp / "rm" + " --data " + tmp / "score_in.jsonl" + " --out " +
                               tmp / "scores.jsonl" + " --device cpu",
                           &out),
            0)
      << out;
  std::ifstream sj(tmp / "scores.jsonl");
  std::string l1, l2;
  std::getline(sj, l1);
  std::getline(sj, l2);
  const double s_good = json::parse(l1)["score"], s_bad = json::parse(l2)["score"];
  EXPECT_GT(s_good, s_bad);
  auto fmt = Formatter::from_dir(tmp / "rm");
  auto seq = encode_scored_line({{"prompt", "Say something 1"}, {"response", " good good good"}}, fmt);
  torch::NoGradGuard ng;
  EXPECT_NEAR(reward::score_sequences(*rm, {&seq}, fmt.pad_id(), torch::kCPU).item<double>(), s_good, 1e-5);
  // K-wise rankings through the CLI.
  ASSERT_EQ(test::run_rlhf("reward --model " + kModel + " --data " + tmp / "ranks.jsonl" + " --out " + tmp / "rm2" +
                               " --batch-size 2 --epochs 2 --lr 3e-3 --eval-fraction 0 --device cpu --threads 1",
                           &out),
            0)
      << out;
  EXPECT_TRUE(load_model(tmp / "rm2")->has_score_head());
}

TEST(TrainCli, DpoRunsAndLogsTrlMetrics) {
  test::TempDir tmp;
  test::write_lines(tmp / "pairs.jsonl", pair_lines(16));
  std::string out;
  ASSERT_EQ(test::run_rlhf("dpo --model " + kModel + " --data " + tmp / "pairs.jsonl" + " --out " + tmp / "dpo" +
                               " --batch-size 4 --max-steps 6 --lr 1e-3 --beta 0.1 --eval-fraction 0.25"
                               " --device cpu --threads 1",
                           &out),
            0)
      << out;
  auto result = result_of(out);
  EXPECT_GT(result["eval"]["rewards/margins"].get<double>(), 0.0) << out;
  std::ifstream mj(tmp / "dpo/metrics.jsonl");
  std::string first;
  std::getline(mj, first);
  for (const char* k : {"loss", "rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies",
                        "logps/chosen", "logps/rejected", "lr", "grad_norm"})
    EXPECT_TRUE(json::parse(first).contains(k)) << k << " in " << first;
  EXPECT_TRUE(load_model(tmp / "dpo")->has_lm_head());
  ASSERT_NE(test::run_rlhf("dpo --model " + kModel + " --data " + tmp / "pairs.jsonl" + " --out " + tmp / "x" +
                               " --loss hinge --device cpu",
                           &out),
            0);
  EXPECT_NE(out.find("--loss: \"hinge\" is not one of sigmoid, ipo"), std::string::npos) << out;
}

TEST(TrainCli, BadDataNamesFileLineField) {
  test::TempDir tmp;
  std::ofstream(tmp / "bad.jsonl") << json{{"prompt", "a"}, {"chosen", "b"}, {"rejected", "c"}}.dump() << "\n"
                                   << json{{"prompt", "a"}, {"chosen", "b"}}.dump() << "\n";
  std::string out;
  const std::string args = "reward --model " + kModel + " --data " + tmp / "bad.jsonl" + " --out " + tmp / "rm" +
                           " --eval-fraction 0 --max-steps 1 --batch-size 1 --device cpu";
  ASSERT_EQ(test::run_rlhf(args, &out), 1) << out;
  EXPECT_NE(out.find(tmp / "bad.jsonl" + ":2: field \"rejected\": missing"), std::string::npos) << out;
  ASSERT_EQ(test::run_rlhf(args + " --skip-bad-lines", &out), 0) << out;
  EXPECT_NE(out.find("1 bad lines skipped"), std::string::npos) << out;
  std::ofstream(tmp / "long.jsonl") << json{{"prompt", "a"}, {"completion", std::string(400, 'x')}}.dump() << "\n";
  ASSERT_EQ(test::run_rlhf("sft --model " + kModel + " --data " + tmp / "long.jsonl" + " --out " + tmp / "s" +
                               " --max-len 16 --overlong error --eval-fraction 0 --device cpu",
                           &out),
            1);
  EXPECT_NE(out.find(tmp / "long.jsonl" + ":1: sequence of"), std::string::npos) << out;
}

TEST(TrainCli, SftBf16Autocast) {
  test::TempDir tmp;
  test::write_lines(tmp / "sft.jsonl", sft_lines());
  std::string out;
  ASSERT_EQ(test::run_rlhf("sft --model " + kModel + " --data " + tmp / "sft.jsonl" + " --out " + tmp / "a" +
                               " --eval-fraction 0.2 --batch-size 4 --max-steps 3 --lr 1e-3 --dtype bf16 --device cpu",
                           &out),
            0)
      << out;
  auto r = result_of(out);
  EXPECT_TRUE(std::isfinite(r["train"]["loss"].get<double>())) << out;
  EXPECT_TRUE(std::isfinite(r["eval"]["loss"].get<double>())) << out;
  EXPECT_EQ(load_model(tmp / "a")->config().dtype, "float32");  // weights stay fp32
}
