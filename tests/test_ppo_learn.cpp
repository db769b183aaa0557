// Learning for real: PPO, GRPO and RLOO raise a reward model's score on the tiny GPT-2 fixture within a few dozen
// iterations on CPU, while the KL to the reference stays near the adaptive controller's target. Also: a NaN/inf
// score stops the run naming the iteration (or is skipped and counted when asked).
//
// The reward model is built here: gpt2-tiny's body with a score head w (a fixed random direction of norm
// kScoreNorm), so r(x, y) = w · LN(h_last): each token placed last has a fixed score and the policy can learn to
// end on high-scoring tokens. The critic is initialised from it (the default), as TRL and OpenRLHF do.
#include <gtest/gtest.h>

#include <iostream>

#include "common/error.h"
#include "model/model.h"
#include "rlhf/ppo.h"
#include "test_util.h"

using namespace rlhf;

namespace {

constexpr double kScoreNorm = 1.0;

void set_score_head(TransformerLM& m, const torch::Tensor& w) {
  torch::NoGradGuard ng;
  for (auto& nw : m.weights())
    if (nw.name == "score.weight") nw.tensor.copy_(w.view_as(nw.tensor));
}

struct Setup {
  RLModels models;
  RLData data;
};

Setup make_setup(const std::string& algo) {
  const auto dir = test::data("models/gpt2-tiny");
  Setup s;
  LoadOptions lm;
  lm.head = "lm";
  s.models.policy = load_model(dir, lm);
  s.models.ref = load_model(dir, lm);
  LoadOptions sc;
  sc.head = "score";
  s.models.reward = load_model(dir, sc);
  auto gen = at::detail::createCPUGenerator(123);
  auto w = torch::randn({1, s.models.reward->config().hidden_size}, gen);
  w = w / w.norm() * kScoreNorm;
  set_score_head(*s.models.reward, w);
  if (algo == "ppo") {
    s.models.critic = load_model(dir, sc);  // initialised from the reward model
    set_score_head(*s.models.critic, w);
  }
  auto pgen = at::detail::createCPUGenerator(7);
  for (int i = 0; i < 64; ++i) {
    const int64_t len = 2 + i % 4;
    auto ids = torch::randint(3, 512, {len}, pgen);
    std::vector<int64_t> p{1};
    for (int64_t j = 0; j < len; ++j) p.push_back(ids[j].item<int64_t>());
    s.data.prompts.push_back({nlohmann::json(nullptr), p});
  }
  s.data.stop_ids = {2};
  s.data.pad_id = 0;
  return s;
}

PPOConfig base_config(const std::string& algo) {
  PPOConfig c;
  c.algo = algo;
  c.iterations = 30;
  c.batch_size = algo == "ppo" ? 32 : 8;
  c.group_size = 4;
  c.temperature = 1.0;
  c.max_new_tokens = 6;
  c.ppo_epochs = 4;
  c.num_minibatches = 2;
  c.lr = 5e-3;  // a tiny randomly initialised model needs a large step
  c.critic_lr = 5e-3;
  c.lr_schedule = "constant";
  c.adaptive_kl = true;
  c.kl_coef = 0.05;
  c.kl_target = 2.0;   // nats per sequence
  c.kl_horizon = 500;  // samples: β moves by up to 0.2·32/500 ≈ 1.3 % per iteration
  c.save_every = 0;
  return c;
}

struct Summary {
  double first_score, last_score, last_kl, max_kl;
};

Summary run(const std::string& algo, PPOConfig c) {
  auto s = make_setup(algo);
  auto h = rl_train(c, s.models, s.data);
  auto get = [&](size_t i, const char* k) {
    for (auto& [n, v] : h[i])
      if (n == k) return v;
    return std::nan("");
  };
  Summary out{0, 0, 0, 0};
  const size_t n = h.size(), k = 5;
  for (size_t i = 0; i < k; ++i) out.first_score += get(i, "score") / k;
  for (size_t i = n - k; i < n; ++i) {
    out.last_score += get(i, "score") / k;
    out.last_kl += get(i, "kl") / k;
  }
  for (size_t i = 0; i < n; ++i) out.max_kl = std::max(out.max_kl, get(i, "kl"));
  std::cerr << algo << ": score " << out.first_score << " -> " << out.last_score << ", KL (last 5) " << out.last_kl
            << ", max KL " << out.max_kl << ", beta " << get(n - 1, "beta") << "\n";
  return out;
}

}  // namespace

TEST(PPOLearn, PPORaisesScoreWithKLNearTarget) {
  auto c = base_config("ppo");
  c.lr = 2e-3;
  c.kl_coef = 0.1;
  c.kl_target = 4.0;
  c.kl_horizon = 100;  // β moves by up to 0.2·32/100 = 6.4 % per iteration
  auto s = run("ppo", c);
  // Measured (2 cores): score −0.44 -> −0.02 over 30 iterations with KL 5.3 (target 4). A higher lr (5e-3) raises
  // the score by +1.4 but overshoots the KL to ~16.
  EXPECT_GT(s.last_score, s.first_score + 0.3);
  EXPECT_GT(s.last_kl, 0.0);
  EXPECT_LT(s.last_kl, 2 * c.kl_target);
}

TEST(PPOLearn, GRPORaisesScore) {
  auto c = base_config("grpo");
  c.kl_coef = 0.04;  // TRL's GRPO β (a loss coefficient)
  c.adaptive_kl = false;
  auto s = run("grpo", c);
  EXPECT_GT(s.last_score, s.first_score + 0.5);
}

TEST(PPOLearn, RLOORaisesScore) {
  auto c = base_config("rloo");
  auto s = run("rloo", c);
  EXPECT_GT(s.last_score, s.first_score + 0.5);
}

TEST(PPOLearn, NonFiniteScoreStopsOrSkips) {
  auto c = base_config("ppo");
  c.iterations = 3;
  c.ppo_epochs = 1;
  RLHooks hooks;
  int calls = 0;
  hooks.score = [&](const Rollout& r) {
    ++calls;
    auto s = torch::zeros({r.batch()});
    if (calls == 2) s[0] = std::nan("");
    return s;
  };
  {
    auto s = make_setup("ppo");
    try {
      rl_train(c, s.models, s.data, hooks);
      FAIL() << "a NaN score must stop the run";
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find("iteration 2"), std::string::npos) << msg;
      EXPECT_NE(msg.find("non-finite"), std::string::npos) << msg;
      EXPECT_NE(msg.find("checkpoint"), std::string::npos) << msg;
    }
  }
  calls = 0;
  c.skip_nonfinite = true;
  auto s = make_setup("ppo");
  auto h = rl_train(c, s.models, s.data, hooks);
  ASSERT_EQ(h.size(), 3u);
  double skipped = 0;
  for (auto& [n, v] : h[2])
    if (n == "skipped") skipped = v;
  EXPECT_EQ(skipped, 1.0);
}
