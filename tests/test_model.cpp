// Models against transformers: logits (right and left padding), greedy generation, reward scores, the KV
// cache against full forwards, load -> save -> load, and the errors of bad checkpoints.
// Ground truth: tests/data/models/*/reference.safetensors, computed by transformers 5.17 (see its README).
#include <gtest/gtest.h>

#include <fstream>

#include "common/error.h"
#include "io/safetensors.h"
#include "model/generate.h"
#include "model/model.h"
#include "test_util.h"

using namespace rlhf;
namespace fs = std::filesystem;

namespace {

const char* kCausal[] = {"gpt2-tiny", "llama-tiny", "llama-tiny-bf16", "qwen2-tiny", "qwen3-tiny-sharded", "gpt2-e2e"};

// max |a - b| over positions where mask = 1, relative to the largest |b| there.
double masked_rel_error(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& mask) {
  auto m = mask.to(torch::kBool).unsqueeze(-1).expand_as(b);
  auto diff = (a - b).abs().masked_select(m);
  return diff.max().item<double>() / b.abs().masked_select(m).max().item<double>();
}

using test::error_of;

}  // namespace

TEST(Model, LogitsMatchTransformers) {
  torch::NoGradGuard ng;
  for (const char* name : kCausal) {
    if (std::string(name) == "gpt2-e2e") continue;
    auto model = load_model(test::data(std::string("models/") + name));
    auto ref = io::load_safetensors(test::data(std::string("models/") + name + "/reference.safetensors"));
    for (const std::string side : {"right", "left"}) {
      auto ids = ref[side + ".input_ids"], mask = ref[side + ".attention_mask"], pos = ref[side + ".position_ids"];
      auto logits = model->forward_logits(ids, mask, pos);
      double err = masked_rel_error(logits, ref[side + ".logits"], mask);
      EXPECT_LT(err, 1e-4) << name << " " << side;
      // Default position ids (cumsum of the mask) give the same result.
      auto logits2 = model->forward_logits(ids, mask);
      EXPECT_LT(masked_rel_error(logits2, ref[side + ".logits"], mask), 1e-4) << name << " " << side;
    }
  }
}

TEST(Model, E2EPromptLogitsAndGreedy) {
  torch::NoGradGuard ng;
  auto model = load_model(test::data("models/gpt2-e2e"));
  auto ref = io::load_safetensors(test::data("models/gpt2-e2e/reference.safetensors"));
  auto ids = ref["input_ids"];
  auto mask = torch::ones_like(ids);
  EXPECT_LT(masked_rel_error(model->forward_logits(ids, mask), ref["logits"], mask), 1e-4);
  SamplingOptions s;
  s.greedy = true;
  s.max_new_tokens = ref["output_ids"].size(1) - ids.size(1);
  s.stop_at_eos = false;
  auto gen = at::detail::createCPUGenerator(0);
  auto out = generate(*model, ids, mask, s, {}, 0, gen);
  EXPECT_TRUE(torch::equal(out.output_ids, ref["output_ids"])) << out.output_ids << ref["output_ids"];
}

TEST(Model, GreedyGenerateMatchesTransformers) {
  torch::NoGradGuard ng;
  for (const char* name : kCausal) {
    if (std::string(name) == "gpt2-e2e") continue;
    auto model = load_model(test::data(std::string("models/") + name));
    auto ref = io::load_safetensors(test::data(std::string("models/") + name + "/reference.safetensors"));
    auto ids = ref["generate.input_ids"], mask = ref["generate.attention_mask"];
    SamplingOptions s;
    s.greedy = true;
    s.max_new_tokens = 12;
    s.stop_at_eos = false;
    auto gen = at::detail::createCPUGenerator(0);
    auto out = generate(*model, ids, mask, s, model->config().eos_token_ids, 0, gen);
    EXPECT_TRUE(torch::equal(out.output_ids, ref["generate.output_ids"])) << name;
    // The slow reference (full forward per step) agrees.
    EXPECT_TRUE(torch::equal(generate_reference(*model, ids, mask, 12), ref["generate.output_ids"])) << name;
  }
}

TEST(Model, LeftPaddedBatchGivesEachPromptsTokens) {
  torch::NoGradGuard ng;
  for (const char* name : {"llama-tiny", "qwen2-tiny", "qwen3-tiny-sharded", "gpt2-tiny"}) {
    auto model = load_model(test::data(std::string("models/") + name));
    std::vector<std::vector<int64_t>> prompts = {{5, 17, 99, 3, 250, 8}, {42, 7}, {300, 301, 302, 9}};
    auto [ids, mask] = left_pad(prompts, 0);
    SamplingOptions s;
    s.greedy = true;
    s.max_new_tokens = 10;
    s.stop_at_eos = false;
    auto gen = at::detail::createCPUGenerator(0);
    auto batch = generate(*model, ids, mask, s, {}, 0, gen).output_ids;
    for (size_t i = 0; i < prompts.size(); ++i) {
      auto [one, one_mask] = left_pad({prompts[i]}, 0);
      auto alone = generate(*model, one, one_mask, s, {}, 0, gen).output_ids;
      EXPECT_TRUE(torch::equal(batch[i].narrow(0, batch.size(1) - 10, 10), alone[0].narrow(0, alone.size(1) - 10, 10)))
          << name << " prompt " << i;
    }
  }
}

TEST(Model, KVCacheMatchesFullForward) {
  torch::NoGradGuard ng;
  for (const char* name : {"gpt2-tiny", "llama-tiny", "qwen2-tiny", "qwen3-tiny-sharded"}) {
    auto model = load_model(test::data(std::string("models/") + name));
    auto ref = io::load_safetensors(test::data(std::string("models/") + name + "/reference.safetensors"));
    auto ids = ref["left.input_ids"], mask = ref["left.attention_mask"];
    auto full = model->forward_logits(ids, mask);  // (B, T, V)
    const int64_t T = ids.size(1);
    KVCache cache = model->make_cache(T);
    auto pos = default_position_ids(mask);
    // Prefill 4 tokens, then one at a time.
    auto h = model->body(ids.narrow(1, 0, 4), mask.narrow(1, 0, 4), pos.narrow(1, 0, 4), &cache);
    std::vector<torch::Tensor> parts = {model->lm_logits(h)};
    for (int64_t t = 4; t < T; ++t) {
      h = model->body(ids.narrow(1, t, 1), mask.narrow(1, 0, t + 1), pos.narrow(1, t, 1), &cache);
      parts.push_back(model->lm_logits(h));
    }
    auto inc = torch::cat(parts, 1);
    EXPECT_LT(masked_rel_error(inc, full, mask), 1e-5) << name;
  }
}

TEST(Model, AttentionMatchesReference) {
  auto q = torch::randn({2, 4, 5, 8}), k = torch::randn({2, 2, 7, 8}), v = torch::randn({2, 2, 7, 8});
  auto mask = torch::ones({2, 7}, torch::kInt64);
  mask[0][0] = 0;
  auto bias = attention_bias(mask, 5, torch::kFloat32);
  EXPECT_TRUE(torch::allclose(attention(q, k, v, bias), attention_reference(q, k, v, bias), 1e-5, 1e-6));
  // Hand check: one query, two keys, equal scores -> the mean of the values.
  auto q1 = torch::zeros({1, 1, 1, 2}), k1 = torch::zeros({1, 1, 2, 2});
  auto v1 = torch::tensor({1.0f, 2.0f, 3.0f, 6.0f}).view({1, 1, 2, 2});
  auto out = attention_reference(q1, k1, v1, attention_bias(torch::ones({1, 2}, torch::kInt64), 1, torch::kFloat32));
  EXPECT_TRUE(torch::allclose(out.flatten(), torch::tensor({2.0f, 4.0f})));
}

TEST(Model, RewardScoresMatchTransformers) {
  torch::NoGradGuard ng;
  for (const char* name : {"gpt2-tiny-rm", "llama-tiny-rm"}) {
    auto model = load_model(test::data(std::string("models/") + name));
    ASSERT_TRUE(model->has_score_head());
    auto ref = io::load_safetensors(test::data(std::string("models/") + name + "/reference.safetensors"));
    auto scores = model->forward_scores(ref["input_ids"], ref["attention_mask"]);
    auto expect = ref["scores"];
    EXPECT_LT(((scores - expect).abs().max() / expect.abs().max()).item<double>(), 1e-4) << name;
  }
}

TEST(Model, LoadSaveLoadIsBitIdentical) {
  torch::NoGradGuard ng;
  for (const char* name : {"gpt2-tiny", "llama-tiny", "llama-tiny-bf16", "qwen2-tiny", "qwen3-tiny-sharded",
                           "gpt2-tiny-rm", "llama-tiny-rm"}) {
    test::TempDir tmp;
    const std::string src = test::data(std::string("models/") + name);
    auto a = load_model(src);
    SaveOptions so;
    so.source_dir = src;
    save_model(*a, tmp / "out", so);
    auto b = load_model(tmp / "out");
    auto wa = a->weights(), wb = b->weights();
    ASSERT_EQ(wa.size(), wb.size());
    for (size_t i = 0; i < wa.size(); ++i) EXPECT_TRUE(torch::equal(wa[i].tensor, wb[i].tensor)) << wa[i].name;
    // Same tensor names, dtypes and shapes as the original files.
    auto orig = io::load_checkpoint_tensors(src);
    auto saved = io::load_checkpoint_tensors(tmp / "out");
    ASSERT_EQ(orig.size(), saved.size()) << name;
    for (const auto& [n, t] : orig) {
      ASSERT_TRUE(saved.count(n)) << name << " " << n;
      EXPECT_EQ(saved[n].scalar_type(), t.scalar_type()) << n;
      EXPECT_TRUE(torch::equal(saved[n], t)) << n;
    }
    EXPECT_TRUE(fs::exists(tmp / "out/config.json"));
  }
}

TEST(Model, LmBecomesRewardModel) {
  torch::NoGradGuard ng;
  LoadOptions lo;
  lo.head = "score";
  auto rm = load_model(test::data("models/llama-tiny"), lo);
  EXPECT_EQ(rm->config().architecture, "LlamaForSequenceClassification");
  test::TempDir tmp;
  save_model(*rm, tmp / "rm");
  auto saved = io::load_checkpoint_tensors(tmp / "rm");
  EXPECT_TRUE(saved.count("score.weight"));
  EXPECT_FALSE(saved.count("lm_head.weight"));
  auto back = load_model(tmp / "rm");
  EXPECT_TRUE(back->has_score_head());
  lo.score_init = "zeros";
  auto critic = load_model(test::data("models/gpt2-tiny"), lo);
  auto ids = torch::tensor({{5, 6, 7}}, torch::kInt64);
  EXPECT_EQ(critic->forward_scores(ids, torch::ones_like(ids)).abs().sum().item<double>(), 0.0);
}

TEST(Model, BadCheckpointsGiveClearErrors) {
  const std::string src = test::data("models/llama-tiny");
  {  // a shape changed in config.json
    test::TempDir tmp;
    fs::copy(src, tmp.path / "m");
    std::ifstream in(tmp / "m/config.json");
    auto j = nlohmann::json::parse(in);
    j["intermediate_size"] = 96;
    std::ofstream(tmp / "m/config.json") << j.dump();
    auto msg = error_of([&] { load_model(tmp / "m"); });
    EXPECT_NE(msg.find("model.layers.0.mlp.gate_proj.weight"), std::string::npos) << msg;
    EXPECT_NE(msg.find("[128, 64]"), std::string::npos) << msg;  // found
    EXPECT_NE(msg.find("[96, 64]"), std::string::npos) << msg;   // expected from config.json
    EXPECT_NE(msg.find("model.safetensors"), std::string::npos) << msg;
  }
  {  // unknown architecture
    test::TempDir tmp;
    fs::copy(src, tmp.path / "m");
    std::ifstream in(tmp / "m/config.json");
    auto j = nlohmann::json::parse(in);
    j["architectures"] = {"MambaForCausalLM"};
    std::ofstream(tmp / "m/config.json") << j.dump();
    auto msg = error_of([&] { load_model(tmp / "m"); });
    EXPECT_NE(msg.find("MambaForCausalLM"), std::string::npos) << msg;
    EXPECT_NE(msg.find("Qwen3ForCausalLM"), std::string::npos) << msg;  // lists what is supported
  }
  {  // zero heads / kv heads / sizes: found by fuzz_config as a division by zero in parse_model_config
    for (const char* key : {"num_attention_heads", "num_key_value_heads", "hidden_size", "head_dim", "vocab_size"}) {
      test::TempDir tmp;
      fs::copy(src, tmp.path / "m");
      std::ifstream in(tmp / "m/config.json");
      auto j = nlohmann::json::parse(in);
      j[key] = 0;
      std::ofstream(tmp / "m/config.json") << j.dump();
      auto msg = error_of([&] { load_model(tmp / "m"); });
      EXPECT_NE(msg.find(std::string("\"") + key + "\" must be a positive integer"), std::string::npos) << msg;
      EXPECT_NE(msg.find("config.json"), std::string::npos) << msg;
    }
  }
  {  // a deleted shard
    test::TempDir tmp;
    fs::copy(test::data("models/qwen3-tiny-sharded"), tmp.path / "m");
    fs::remove(tmp / "m/model-00004-of-00011.safetensors");
    auto msg = error_of([&] { load_model(tmp / "m"); });
    EXPECT_NE(msg.find("model-00004-of-00011.safetensors"), std::string::npos) << msg;
  }
  {  // a missing tensor: the checkpoint of a 1-layer model for a 2-layer config
    test::TempDir tmp;
    fs::copy(src, tmp.path / "m");
    auto t = io::load_safetensors(tmp / "m/model.safetensors");
    std::map<std::string, torch::Tensor> kept;
    for (auto& [n, v] : t)
      if (n.find("layers.1.") == std::string::npos) kept[n] = v.clone();
    io::save_safetensors(tmp / "m/model.safetensors", kept);
    auto msg = error_of([&] { load_model(tmp / "m"); });
    EXPECT_NE(msg.find("model.layers.1."), std::string::npos) << msg;
    EXPECT_NE(msg.find("missing"), std::string::npos) << msg;
  }
  {  // an unused tensor
    test::TempDir tmp;
    fs::copy(src, tmp.path / "m");
    auto t = io::load_safetensors(tmp / "m/model.safetensors");
    std::map<std::string, torch::Tensor> all;
    for (auto& [n, v] : t) all[n] = v.clone();
    all["model.layers.9.extra.weight"] = torch::zeros({2});
    io::save_safetensors(tmp / "m/model.safetensors", all);
    auto msg = error_of([&] { load_model(tmp / "m"); });
    EXPECT_NE(msg.find("model.layers.9.extra.weight"), std::string::npos) << msg;
  }
  {  // a truncated weights file
    test::TempDir tmp;
    fs::copy(src, tmp.path / "m");
    fs::resize_file(tmp / "m/model.safetensors", fs::file_size(tmp / "m/model.safetensors") - 64);
    auto msg = error_of([&] { load_model(tmp / "m"); });
    EXPECT_NE(msg.find("model.safetensors"), std::string::npos) << msg;
  }
}

TEST(Model, RopeScalingVariants) {
  // llama3 scaling: frequencies above the high-frequency wavelength are kept, below the low one divided by factor.
  ModelConfig c;
  c.head_dim = 64;
  c.rope_theta = 500000.0;
  c.rope_scaling.type = "llama3";
  c.rope_scaling.factor = 8.0;
  c.rope_scaling.low_freq_factor = 1.0;
  c.rope_scaling.high_freq_factor = 4.0;
  c.rope_scaling.original_max_position = 8192;
  auto scaled = rope_inv_freq(c, 0);
  c.rope_scaling.type = "default";
  auto base = rope_inv_freq(c, 0);
  EXPECT_FLOAT_EQ(scaled[0].item<float>(), base[0].item<float>());  // wavelength 2π < 2048: unchanged
  EXPECT_FLOAT_EQ(scaled[31].item<float>(), base[31].item<float>() / 8.0f);  // very long wavelength: / factor
  c.rope_scaling.type = "linear";
  c.rope_scaling.factor = 2.0;
  EXPECT_TRUE(torch::allclose(rope_inv_freq(c, 0), base / 2.0));
  c.rope_scaling.type = "dynamic";
  c.rope_scaling.original_max_position = 100;
  EXPECT_TRUE(torch::allclose(rope_inv_freq(c, 50), base));  // within the trained context: unchanged
  // beyond it: base' = base · (factor·L/L0 - (factor-1))^(D/(D-2)), by hand for L = 200
  const double new_base = 500000.0 * std::pow(2.0 * 200 / 100 - 1.0, 64.0 / 62.0);
  EXPECT_NEAR(rope_inv_freq(c, 200)[1].item<double>(), 1.0 / std::pow(new_base, 2.0 / 64), 1e-6);  // float32
}
