// PPO pieces against hand computations and exact quantities: GAE (vectorised == plain backward loop, and a hand
// example), the PPO policy/value losses and their gradients at tiny shapes (values worked out in the comments),
// GRPO/RLOO advantages, k1/k3 averaging to the exact KL on a 5-token vocabulary, the β controller, rollout
// log-probs == a fresh forward, and the `rlhf ppo` command end to end (metrics, samples, checkpoint, resume,
// final folder loadable by `rlhf generate`). The learning tests are in test_ppo_learn.cpp.
#include <gtest/gtest.h>

#include <fstream>

#include "common/error.h"
#include "model/model.h"
#include "rlhf/gae.h"
#include "rlhf/grpo.h"
#include "rlhf/kl.h"
#include "rlhf/ppo.h"
#include "rlhf/rollout.h"
#include "test_cli_util.h"
#include "test_util.h"

using namespace rlhf;

namespace {
// Random prefix masks: row b has length in [1, T].
torch::Tensor prefix_mask(int64_t B, int64_t T, uint64_t seed) {
  auto gen = at::detail::createCPUGenerator(seed);
  auto len = torch::randint(1, T + 1, {B, 1}, gen);
  return (torch::arange(T).unsqueeze(0) < len).to(torch::kFloat32);
}
}  // namespace

TEST(GAE, VectorisedEqualsBackwardLoop) {
  auto gen = at::detail::createCPUGenerator(3);
  for (auto [gamma, lam] : std::vector<std::pair<double, double>>{{1.0, 0.95}, {0.99, 0.9}, {1.0, 1.0}, {0.5, 0.0}}) {
    auto mask = prefix_mask(7, 11, 5);
    auto r = torch::randn({7, 11}, gen) * mask, v = torch::randn({7, 11}, gen) * mask;
    auto ref = gae_reference(r, v, mask, gamma, lam);
    auto fast = gae(r, v, mask, gamma, lam);
    EXPECT_LT((ref.advantages - fast.advantages).abs().max().item<double>(), 1e-5) << gamma << " " << lam;
    EXPECT_LT((ref.returns - fast.returns).abs().max().item<double>(), 1e-5);
    EXPECT_EQ((fast.advantages * (1 - mask)).abs().sum().item<double>(), 0.0);
  }
}

TEST(GAE, HandExample) {
  // γ = λ = 1, r = [0, 0, 1], V = [0.5, 0.5, 0.5], 4th token padding:
  // δ = [0 + 0.5 − 0.5, 0 + 0.5 − 0.5, 1 + 0 − 0.5] = [0, 0, 0.5]; A = [0.5, 0.5, 0.5]; R = A + V = [1, 1, 1].
  auto r = torch::tensor({{0.f, 0.f, 1.f, 9.f}}), v = torch::tensor({{0.5f, 0.5f, 0.5f, 9.f}});
  auto m = torch::tensor({{1.f, 1.f, 1.f, 0.f}});
  for (auto out : {gae(r, v, m, 1, 1), gae_reference(r, v, m, 1, 1)}) {
    EXPECT_TRUE(torch::allclose(out.advantages, torch::tensor({{0.5f, 0.5f, 0.5f, 0.f}})));
    EXPECT_TRUE(torch::allclose(out.returns, torch::tensor({{1.f, 1.f, 1.f, 0.f}})));
  }
  // γ = 1, λ = 0.5: A_2 = 0.5, A_1 = 0 + 0.5·0.5 = 0.25, A_0 = 0.125.
  auto o = gae(r, v, m, 1, 0.5);
  EXPECT_TRUE(torch::allclose(o.advantages, torch::tensor({{0.125f, 0.25f, 0.5f, 0.f}})));
}

TEST(GAE, Whitening) {
  auto x = torch::tensor({{1.f, 2.f, 3.f, 100.f}}), m = torch::tensor({{1.f, 1.f, 1.f, 0.f}});
  auto w = masked_whiten(x, m);  // mean 2, unbiased var 1 -> [−1, 0, 1, 0]
  EXPECT_TRUE(torch::allclose(w, torch::tensor({{-1.f, 0.f, 1.f, 0.f}}), 1e-4, 1e-4)) << w;
  auto w2 = masked_whiten(x, m, /*shift_mean=*/false);  // mean kept: [1, 2, 3, 0]
  EXPECT_TRUE(torch::allclose(w2, torch::tensor({{1.f, 2.f, 3.f, 0.f}}), 1e-4, 1e-4)) << w2;
}

TEST(PPOLoss, PolicyLossAndGradientByHand) {
  // ε = 0.2, three valid tokens and one pad (n = 3):
  //  t0: ρ = 1.5, A = +1: −Aρ = −1.5, −A·clip = −1.2 -> max −1.2 (clipped: no gradient)
  //  t1: ρ = 0.5, A = +1: −0.5 vs −0.8 -> −0.5 (unclipped: ∂/∂logp = −Aρ/n = −0.5/3)
  //  t2: ρ = 0.5, A = −2: 1.0 vs 1.6 -> 1.6 (clipped: no gradient)
  // L = (−1.2 − 0.5 + 1.6)/3 = −0.1/3; clip fraction 2/3; approx-KL = ½·mean(ln²1.5, ln²0.5, ln²0.5).
  auto old = torch::tensor({{-1.0, -1.0, -1.0, -1.0}}, torch::kFloat64);
  auto logp = (old + torch::tensor({{std::log(1.5), std::log(0.5), std::log(0.5), 5.0}}, torch::kFloat64))
                  .detach()
                  .requires_grad_(true);
  auto adv = torch::tensor({{1.0, 1.0, -2.0, 100.0}}, torch::kFloat64);
  auto mask = torch::tensor({{1.0, 1.0, 1.0, 0.0}}, torch::kFloat64);
  auto pl = ppo_policy_loss(logp, old, adv, mask, 0.2);
  EXPECT_NEAR(pl.loss.item<double>(), -0.1 / 3, 1e-12);
  EXPECT_NEAR(pl.clip_frac, 2.0 / 3, 1e-6);  // computed in float32
  const double l15 = std::log(1.5), l05 = std::log(0.5);
  EXPECT_NEAR(pl.approx_kl, 0.5 * (l15 * l15 + 2 * l05 * l05) / 3, 1e-12);
  pl.loss.backward();
  auto g = logp.grad();
  EXPECT_NEAR(g[0][0].item<double>(), 0.0, 1e-12);
  EXPECT_NEAR(g[0][1].item<double>(), -0.5 / 3, 1e-12);
  EXPECT_NEAR(g[0][2].item<double>(), 0.0, 1e-12);
  EXPECT_NEAR(g[0][3].item<double>(), 0.0, 1e-12);
}

TEST(PPOLoss, ValueLossAndGradientByHand) {
  // ε_v = 0.2, V = [1, 0, 2], V_old = [0.5, 0.5, 2], R = [2, 0, 1]:
  //  t0: clip(V) = 0.7: (1−2)² = 1 vs (0.7−2)² = 1.69 -> 1.69 (clipped, no gradient)
  //  t1: clip(V) = 0.3: 0 vs 0.09 -> 0.09 (clipped, no gradient)
  //  t2: clip(V) = 2: 1 vs 1 -> 1, gradient ½·2·(V−R)/n = 1/3 (both branches agree)
  // L = ½·(1.69 + 0.09 + 1)/3.
  auto v = torch::tensor({{1.0, 0.0, 2.0, 7.0}}, torch::kFloat64).requires_grad_(true);
  auto vold = torch::tensor({{0.5, 0.5, 2.0, 0.0}}, torch::kFloat64);
  auto ret = torch::tensor({{2.0, 0.0, 1.0, 0.0}}, torch::kFloat64);
  auto mask = torch::tensor({{1.0, 1.0, 1.0, 0.0}}, torch::kFloat64);
  auto vl = ppo_value_loss(v, vold, ret, mask, 0.2);
  EXPECT_NEAR(vl.loss.item<double>(), 0.5 * (1.69 + 0.09 + 1.0) / 3, 1e-12);
  vl.loss.backward();
  auto g = v.grad();
  EXPECT_NEAR(g[0][0].item<double>(), 0.0, 1e-12);
  EXPECT_NEAR(g[0][1].item<double>(), 0.0, 1e-12);
  EXPECT_NEAR(g[0][2].item<double>(), 1.0 / 3, 1e-12);
  EXPECT_NEAR(g[0][3].item<double>(), 0.0, 1e-12);
}

TEST(PPOLoss, PerTokenRewards) {
  // β = 0.1, KL = [1, 2, 3 | pad], score 5 on the last real token: r = [−0.1, −0.2, −0.3 + 5, 0].
  auto kl = torch::tensor({{1.f, 2.f, 3.f, 4.f}, {1.f, 1.f, 1.f, 1.f}});
  auto mask = torch::tensor({{1.f, 1.f, 1.f, 0.f}, {1.f, 1.f, 1.f, 1.f}});
  auto r = per_token_rewards(kl, torch::tensor({5.f, -1.f}), mask, 0.1);
  EXPECT_TRUE(torch::allclose(r, torch::tensor({{-0.1f, -0.2f, 4.7f, 0.f}, {-0.1f, -0.1f, -0.1f, -1.1f}})) ) << r;
}

TEST(GRPO, AdvantagesByHand) {
  // Group 1: s = [1, 2, 3]: mean 2, std 1 -> [−1, 0, 1]/(1 + ε). Group 2: all equal -> 0.
  auto a = grpo_advantages(torch::tensor({1.f, 2.f, 3.f, 4.f, 4.f, 4.f}), 3, 1e-4);
  EXPECT_TRUE(torch::allclose(a, torch::tensor({-1.f, 0.f, 1.f, 0.f, 0.f, 0.f}) / 1.0001f)) << a;
  // RLOO: s_i − mean of the others: 1 − 2.5, 2 − 2, 3 − 1.5.
  auto b = rloo_advantages(torch::tensor({1.f, 2.f, 3.f}), 3);
  EXPECT_TRUE(torch::allclose(b, torch::tensor({-1.5f, 0.f, 1.5f}))) << b;
}

TEST(GRPO, LossGradientMatchesFiniteDifferences) {
  auto gen = at::detail::createCPUGenerator(11);
  auto old = -torch::rand({3, 5}, gen, torch::kFloat64) - 0.5;
  auto ref = -torch::rand({3, 5}, gen, torch::kFloat64) - 0.5;
  auto x = (old + 0.1 * torch::randn({3, 5}, gen, torch::kFloat64)).detach();
  auto adv = torch::tensor({0.7, -1.3, 0.4}, torch::kFloat64);
  auto mask = prefix_mask(3, 5, 2).to(torch::kFloat64);
  auto f = [&](const torch::Tensor& lp) { return grpo_loss(lp, old, ref, adv, mask, 0.2, 0.04).loss; };
  auto xg = x.clone().requires_grad_(true);
  f(xg).backward();
  auto num = torch::zeros_like(x);
  const double h = 1e-6;
  for (int64_t i = 0; i < x.numel(); ++i) {
    auto xp = x.clone(), xm = x.clone();
    xp.view(-1)[i] += h;
    xm.view(-1)[i] -= h;
    num.view(-1)[i] = (f(xp).item<double>() - f(xm).item<double>()) / (2 * h);
  }
  EXPECT_LT((num - xg.grad()).abs().max().item<double>(), 1e-7) << num << xg.grad();
}

TEST(KL, EstimatorsAverageToExactKL) {
  // p, q on 5 tokens; KL(p‖q) = Σ p·ln(p/q) exactly; y ~ p, 400k draws.
  auto p = torch::tensor({0.4, 0.3, 0.15, 0.1, 0.05}, torch::kFloat64);
  auto q = torch::tensor({0.2, 0.2, 0.2, 0.2, 0.2}, torch::kFloat64);
  const double exact = (p * (p / q).log()).sum().item<double>();
  auto gen = at::detail::createCPUGenerator(1);
  auto y = torch::multinomial(p, 400000, /*replacement=*/true, gen);
  auto logp = p.log().index_select(0, y).unsqueeze(0), ref = q.log().index_select(0, y).unsqueeze(0);
  for (auto est : {KLEstimator::k1, KLEstimator::k3}) {
    auto k = kl_per_token(logp, ref, est);
    const double mean = k.mean().item<double>(), se = k.std().item<double>() / std::sqrt(400000.0);
    EXPECT_NEAR(mean, exact, 4 * se + 1e-9) << (est == KLEstimator::k1 ? "k1" : "k3") << " exact " << exact;
    if (est == KLEstimator::k3) EXPECT_GE(k.min().item<double>(), 0.0);
  }
  EXPECT_THROW(parse_kl_estimator("k2"), Error);
}

TEST(KL, AdaptiveController) {
  // β = 0.1, target 6, horizon 100, KL 9: e = clip(9/6 − 1) = 0.2 -> β·(1 + 0.2·10/100) = 0.102.
  KLController c{0.1, true, 6.0, 100.0};
  c.update(9.0, 10);
  EXPECT_NEAR(c.beta, 0.102, 1e-12);
  c.update(3.0, 10);  // e = −0.5 -> −0.2: β·(1 − 0.02)
  EXPECT_NEAR(c.beta, 0.102 * 0.98, 1e-12);
  KLController fixed{0.1, false, 6.0, 100.0};
  fixed.update(100.0, 10);
  EXPECT_EQ(fixed.beta, 0.1);
  auto back = KLController::from_json(c.to_json());
  EXPECT_EQ(back.beta, c.beta);
}

TEST(Rollout, LogprobsEqualFreshForward) {
  torch::NoGradGuard ng;
  auto policy = load_model(test::data("models/gpt2-tiny"));
  std::vector<std::vector<int64_t>> prompts{{1, 17, 45, 99}, {1, 300}, {1, 5, 6, 7, 8, 9, 10}};
  // 60 stop tokens so that some rows end early (the random model is near uniform over 512 tokens).
  std::vector<int64_t> stops;
  for (int64_t i = 100; i < 160; ++i) stops.push_back(i);
  SamplingOptions so;
  so.temperature = 0.7f;
  so.top_k = 50;
  so.max_new_tokens = 12;
  auto gen = at::detail::createCPUGenerator(4);
  auto r = rollout_generate(*policy, prompts, so, stops, /*pad_id=*/0, gen);
  ASSERT_EQ(r.batch(), 3);
  auto f = response_logprobs(*policy, r, 0.7);
  EXPECT_LT((f.logprobs - r.logprobs).abs().max().item<double>(), 1e-4);
  // The mask is a prefix, ends at the first stop token, and has_eos says whether it did.
  auto m = r.response_mask;
  EXPECT_TRUE(torch::equal(m, std::get<0>(m.cummin(1))));
  for (int64_t b = 0; b < 3; ++b) {
    const int64_t len = static_cast<int64_t>(m[b].sum().item<double>());
    bool stopped = false;
    for (int64_t t = 0; t < len; ++t) {
      const int64_t tok = r.response_ids[b][t].item<int64_t>();
      const bool is_stop = tok >= 100 && tok < 160;
      EXPECT_FALSE(stopped) << "token after EOS";
      stopped = is_stop;
    }
    EXPECT_EQ(stopped, r.has_eos[b].item<bool>());
    for (int64_t t = len; t < r.response_len(); ++t) EXPECT_EQ(r.response_ids[b][t].item<int64_t>(), 0);
  }
  // Temperature matters: at τ = 1 the log-probs differ.
  EXPECT_GT((response_logprobs(*policy, r, 1.0).logprobs - r.logprobs).abs().max().item<double>(), 1e-3);
}

// ---- the command end to end, on the GPT-2 fixture with a tokenizer

namespace {
std::vector<nlohmann::json> read_lines(const std::string& path) {
  std::vector<nlohmann::json> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) out.push_back(nlohmann::json::parse(line));
  return out;
}

struct CliFixture {
  test::TempDir tmp;
  std::string rm, prompts, base;
  CliFixture() {
    rm = tmp / "rm";
    test::save_reward_model(test::data("models/gpt2-e2e"), rm);
    prompts = tmp / "prompts.jsonl";
    std::ofstream(prompts) << "{\"prompt\": \"The cat\"}\n{\"prompt\": \"Hello there\"}\n"
                           << "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}]}\n{\"prompt\": \"Once\"}\n";
    base = "ppo --policy " + test::data("models/gpt2-e2e") + " --reward " + rm + " --prompts " + prompts +
           " --batch-size 4 --max-new-tokens 6 --ppo-epochs 2 --num-minibatches 2 --lr 1e-3 --critic-lr 1e-3"
           " --adaptive-kl --lr-schedule constant --threads 1";  // constant: a shorter first leg would decay differently
  }
};
}  // namespace

TEST(PPOCommand, MetricsSamplesCheckpointResumeFinal) {
  CliFixture fx;
  std::string out;
  const std::string a = fx.tmp / "a", b = fx.tmp / "b";
  ASSERT_EQ(test::run_rlhf(fx.base + " --out " + a + " --iterations 3 --save-every 1 --samples-every 1", &out), 0)
      << out;
  auto m = read_lines(a + "/metrics.jsonl");
  ASSERT_EQ(m.size(), 3u);
  for (const char* k : {"score", "kl", "beta", "reward", "policy_loss", "value_loss", "clip_frac", "approx_kl",
                        "entropy", "response_length", "eos_frac", "tokens_per_s", "rollout_s", "scoring_s",
                        "train_s"})
    EXPECT_TRUE(m[2].contains(k)) << k << " missing in " << m[2].dump();
  auto s = read_lines(a + "/samples.jsonl");
  ASSERT_FALSE(s.empty());
  EXPECT_TRUE(s[0].contains("prompt") && s[0].contains("response") && s[0].contains("score") && s[0].contains("kl"));
  EXPECT_TRUE(std::filesystem::exists(a + "/checkpoint/critic/model.safetensors"));
  EXPECT_TRUE(std::filesystem::exists(a + "/ppo_config.json"));
  // The final policy is a model folder `rlhf generate` loads.
  ASSERT_EQ(test::run_rlhf("generate --model " + a + "/final --prompt Hello --max-new-tokens 3", &out), 0) << out;

  // Resume: 2 iterations, then --resume to 3, equals the uninterrupted run's 3rd iteration.
  ASSERT_EQ(test::run_rlhf(fx.base + " --out " + b + " --iterations 2 --save-every 1", &out), 0) << out;
  ASSERT_EQ(test::run_rlhf(fx.base + " --out " + b + " --iterations 3 --save-every 1 --resume", &out), 0) << out;
  auto mb = read_lines(b + "/metrics.jsonl");
  ASSERT_EQ(mb.size(), 3u);
  for (const char* k : {"score", "kl", "beta", "policy_loss", "value_loss"})
    EXPECT_NEAR(mb[2][k].get<double>(), m[2][k].get<double>(), 1e-6 + 1e-5 * std::abs(m[2][k].get<double>())) << k;
}

TEST(PPOConfig, ValidateRejectsBadValues) {
  PPOConfig c;
  c.algo = "a2c";
  EXPECT_THROW(c.validate(), Error);
  c = PPOConfig{};
  c.batch_size = 6;
  c.num_minibatches = 4;
  EXPECT_THROW(c.validate(), Error);
  c = PPOConfig{};
  c.kl_estimator = "k9";
  EXPECT_THROW(c.validate(), Error);
  EXPECT_NO_THROW(PPOConfig{}.validate());
}
