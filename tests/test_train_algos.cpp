// SFT, reward model and DPO at the library level on tiny models (2 layers, 32 wide) and token-id data:
// the chat loss mask, SFT to near-zero loss, reward ≥ 95% held-out accuracy on a learnable rule (pairwise and
// K-wise), the K-wise loss against a hand computation, DPO's loss and gradients against a hand computation.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <random>

#include "rlhf/dpo.h"
#include "rlhf/examples.h"
#include "rlhf/reward.h"
#include "rlhf/sft.h"
#include "test_train_util.h"
#include "test_util.h"
#include "tokenizer/tokenizer.h"
#include "train/format.h"

using namespace rlhf;
using nlohmann::json;

namespace {

train::LoopOptions quiet_loop(const std::string& out, int64_t steps, double lr) {
  train::LoopOptions l;
  l.out = out;
  l.max_steps = steps;
  l.lr = lr;
  l.schedule.kind = "constant";
  l.max_grad_norm = 1.0;
  l.log_every = 1000000;
  return l;
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// Synthetic preference rule: a response is a string of 8 tokens from [2, 32); its true reward is the number of
// "good" tokens (ids < 17). Prompts are 3 random tokens. Winners have at least 2 more good tokens.
struct Rule {
  std::mt19937_64 rng{123};
  std::vector<int64_t> response(int good) {
    std::vector<int64_t> r;
    for (int i = 0; i < 8; ++i) r.push_back(i < good ? 2 + int64_t(rng() % 15) : 17 + int64_t(rng() % 15));
    std::shuffle(r.begin(), r.end(), rng);
    return r;
  }
  train::TokenSeq seq(const std::vector<int64_t>& resp) {
    train::TokenSeq s;
    for (int i = 0; i < 3; ++i) s.ids.push_back(2 + int64_t(rng() % 30));
    s.loss_mask.assign(3, 0);
    s.ids.insert(s.ids.end(), resp.begin(), resp.end());
    s.ids.push_back(1);  // EOS
    s.loss_mask.insert(s.loss_mask.end(), resp.size() + 1, 1);
    return s;
  }
  PreferenceGroup pair() {
    int a = int(rng() % 7), b = a + 2 + int(rng() % (7 - a));
    PreferenceGroup g;
    g.responses = {seq(response(b)), seq(response(a))};
    g.pairs = {{0, 1}};
    g.margins = {0.0};
    return g;
  }
  // K = 4 responses with distinct good-counts; ranks by count (best first).
  PreferenceGroup ranking() {
    std::vector<int> counts = {0, 2, 4, 6, 8};
    std::shuffle(counts.begin(), counts.end(), rng);
    counts.resize(4);
    PreferenceGroup g;
    for (int c : counts) g.responses.push_back(seq(response(c)));
    for (int a = 0; a < 4; ++a)
      for (int b = 0; b < 4; ++b)
        if (counts[a] > counts[b]) {
          g.pairs.push_back({a, b});
          g.margins.push_back(0.0);
        }
    return g;
  }
};

}  // namespace

TEST(TrainSft, LossMaskCoversExactlyAssistantTokens) {
  auto fmt = Formatter::from_dir(test::data("models/gpt2-e2e"), /*chat=*/1);
  json messages = json::array({{{"role", "system"}, {"content", "Be brief."}},
                               {{"role", "user"}, {"content", "Hi there"}},
                               {{"role", "assistant"}, {"content", "Hello!"}},
                               {{"role", "user"}, {"content", "Name a color"}},
                               {{"role", "assistant"}, {"content", "Blue"}}});
  auto s = encode_sft_line({{"messages", messages}}, fmt);
  ASSERT_EQ(s.ids.size(), s.loss_mask.size());
  // The masked tokens, decoded run by run, are exactly the assistant turns (content + the template's end of turn).
  std::vector<std::string> runs;
  std::vector<int32_t> cur;
  for (size_t i = 0; i <= s.ids.size(); ++i) {
    if (i < s.ids.size() && s.loss_mask[i]) cur.push_back(static_cast<int32_t>(s.ids[i]));
    else if (!cur.empty()) {
      runs.push_back(fmt.tokenizer().decode(cur, /*skip_special_tokens=*/false));
      cur.clear();
    }
  }
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(runs[0].rfind("Hello!", 0), 0u) << runs[0];
  EXPECT_EQ(runs[1].rfind("Blue", 0), 0u) << runs[1];
  EXPECT_EQ(runs[0].substr(6), runs[1].substr(4));  // the same end-of-turn marker, nothing of the user turns
  EXPECT_EQ(runs[0].find("Name a color"), std::string::npos);
  // The unmasked tokens hold everything else: system, user turns, and the assistant headers.
  std::vector<int32_t> rest;
  for (size_t i = 0; i < s.ids.size(); ++i)
    if (!s.loss_mask[i]) rest.push_back(static_cast<int32_t>(s.ids[i]));
  auto rest_text = fmt.tokenizer().decode(rest, false);
  EXPECT_NE(rest_text.find("Name a color"), std::string::npos);
  EXPECT_EQ(rest_text.find("Blue"), std::string::npos);
}

TEST(TrainSft, DrivesTinyModelToNearZeroLoss) {
  test::TempDir tmp;
  torch::manual_seed(0);
  auto model = test::tiny_gpt2(32, false);
  // 8 fixed sequences: prompt (3 tokens, no loss) + a completion determined by the prompt.
  std::vector<train::TokenSeq> data;
  for (int i = 0; i < 8; ++i) {
    train::TokenSeq s;
    s.ids = {2 + i, 12 + i, 3};
    s.loss_mask = {0, 0, 0};
    for (int k = 0; k < 6; ++k) {
      s.ids.push_back(2 + (i * 7 + k * 3) % 30);
      s.loss_mask.push_back(1);
    }
    data.push_back(s);
  }
  sft::SftConfig cfg;
  cfg.batch_size = 8;
  auto t0 = std::chrono::steady_clock::now();
  auto res = sft::train_sft(*model, data, data, cfg, quiet_loop(tmp / "sft", 150, 1e-2));
  double eval_loss = res.last_eval[0].second;
  std::cout << "[sft] 150 steps in " << seconds_since(t0) << " s, eval loss " << eval_loss << "\n";
  EXPECT_LT(eval_loss, 0.05);
  // Packing trains too (rows of 2 examples).
  cfg.packing = true;
  cfg.max_len = 18;
  cfg.batch_size = 4;
  auto m2 = test::tiny_gpt2(32, false);
  auto res2 = sft::train_sft(*m2, data, {}, cfg, quiet_loop(tmp / "sft2", 150, 1e-2));
  EXPECT_LT(res2.last_train[0].second, 0.3);
  auto back = load_model(tmp / "sft");  // the output folder loads back
  EXPECT_TRUE(back->has_lm_head());
}

TEST(TrainReward, KwiseLossIsMeanOfPairwiseLosses) {
  // One ranking of K = 4 with ranks [1, 2, 2, 3] (a tie between responses 1 and 2): pairs (0,1) (0,2) (0,3) (1,3)
  // (2,3), the tie gives none. Scores r = [2.0, 0.5, 1.0, -1.0]. By hand: mean of −log σ(r_w − r_l) over the 5
  // pairs = mean(softplus(−1.5), softplus(−1.0), softplus(−3.0), softplus(−1.5), softplus(−2.0)).
  auto fmt = Formatter::from_dir(test::data("models/gpt2-e2e"));
  json line = {{"prompt", "Q"}, {"responses", {"a", "b", "c", "d"}}, {"ranks", {1, 2, 2, 3}}};
  auto g = encode_preference_line(line, fmt);
  ASSERT_EQ(g.pairs.size(), 5u);
  auto sp = [](double x) { return std::log1p(std::exp(x)); };
  const double hand = (sp(-1.5) + sp(-1.0) + sp(-3.0) + sp(-1.5) + sp(-2.0)) / 5.0;
  auto scores = torch::tensor({2.0, 0.5, 1.0, -1.0}, torch::kFloat64).requires_grad_(true);
  auto parts = reward::preference_loss(scores, {&g});
  EXPECT_NEAR(parts.loss.item<double>(), hand, 1e-12);
  EXPECT_NEAR(reward::preference_loss_reference(scores, {&g}).item<double>(), hand, 1e-12);
  EXPECT_EQ(parts.pairs, 5);
  EXPECT_DOUBLE_EQ(parts.accuracy, 1.0);
  // "ranking" (best first) gives the same pairs as the equivalent ranks without ties.
  auto g2 = encode_preference_line({{"prompt", "Q"}, {"responses", {"a", "b", "c"}}, {"ranking", {2, 0, 1}}}, fmt);
  EXPECT_EQ(g2.pairs, (std::vector<std::pair<int, int>>{{0, 1}, {2, 0}, {2, 1}}));
  // Two groups: the batch loss is the mean of the group means (each ranking weighs the same).
  PreferenceGroup pair;
  pair.responses = {g.responses[0], g.responses[1]};
  pair.pairs = {{0, 1}};
  pair.margins = {0.25};
  auto s2 = torch::tensor({2.0, 0.5, 1.0, -1.0, 0.3, 0.1}, torch::kFloat64);
  const double two = (hand + sp(-(0.3 - 0.1 - 0.25))) / 2.0;
  EXPECT_NEAR(reward::preference_loss(s2, {&g, &pair}).loss.item<double>(), two, 1e-12);
  // HH-RLHF: the shared prefix up to the last "\n\nAssistant:" is the prompt.
  auto hh = encode_preference_line({{"chosen", "\n\nHuman: hi\n\nAssistant: hello"},
                                    {"rejected", "\n\nHuman: hi\n\nAssistant: go away"}},
                                   fmt);
  auto prompt_ids = fmt.encode_prompt("\n\nHuman: hi\n\nAssistant:");
  EXPECT_EQ(std::vector<int64_t>(hh.responses[0].ids.begin(), hh.responses[0].ids.begin() + prompt_ids.size()),
            prompt_ids);
  EXPECT_EQ(hh.responses[0].loss_mask[prompt_ids.size() - 1], 0);
  EXPECT_EQ(hh.responses[0].loss_mask[prompt_ids.size()], 1);
}

TEST(TrainReward, LearnsRuleAbove95PercentHeldOut) {
  for (const std::string kind : {"pairwise", "kwise"}) {
    test::TempDir tmp;
    torch::manual_seed(0);
    Rule rule;
    std::vector<PreferenceGroup> train_set, eval_set;
    const int n_train = kind == "pairwise" ? 384 : 96;  // the same number of responses: 768 / 384
    for (int i = 0; i < n_train; ++i) train_set.push_back(kind == "pairwise" ? rule.pair() : rule.ranking());
    for (int i = 0; i < 200; ++i) eval_set.push_back(rule.pair());  // held out: fresh pairs
    auto model = test::tiny_gpt2(32, true);
    reward::RewardConfig cfg;
    cfg.batch_size = kind == "pairwise" ? 16 : 4;
    auto t0 = std::chrono::steady_clock::now();
    auto loop = quiet_loop(tmp / "rm", 0, 3e-3);
    loop.epochs = 4;
    reward::train_reward(*model, train_set, {}, cfg, loop);
    auto ev = reward::evaluate(*model, eval_set, cfg);
    std::cout << "[reward " << kind << "] " << seconds_since(t0) << " s, held-out accuracy " << ev.accuracy
              << " over " << ev.pairs << " pairs, loss " << ev.loss << "\n";
    EXPECT_GE(ev.accuracy, 0.95) << kind;
    auto back = load_model(tmp / "rm");
    EXPECT_TRUE(back->has_score_head());
    // Normalisation: mean 0, std 1 on a reference set, stored in the weights.
    std::vector<train::TokenSeq> ref;
    for (auto& g : eval_set)
      for (auto& s : g.responses) ref.push_back(s);
    auto nr = reward::normalize_scores(*model, ref, true, 64, 0, torch::kCPU);
    EXPECT_NEAR(nr.mean_after, 0.0, 1e-4);
    EXPECT_NEAR(nr.std_after, 1.0, 1e-4);
    EXPECT_GE(reward::evaluate(*model, eval_set, cfg).accuracy, 0.95);  // order unchanged
  }
}

TEST(TrainDpo, LossAndGradientsMatchHandComputation) {
  // B = 2, β = 0.5. h_b = (π_w − ρ_w) − (π_l − ρ_l): h = [(−3+4) − (−5+4.5), (−2+2) − (−1+3)] = [1.5, −2].
  // sigmoid: L = mean(softplus(−β h)); dL/dπ_w = −β σ(−β h)/B, dL/dπ_l = +β σ(−β h)/B.
  // ipo:     L = mean((h − 1/(2β))²);  dL/dπ_w = 2(h − 1/(2β))/B = −dL/dπ_l.
  const double beta = 0.5;
  const double h[2] = {1.5, -2.0};
  auto sig = [](double x) { return 1 / (1 + std::exp(-x)); };
  for (const std::string type : {"sigmoid", "ipo"}) {
    auto pw = torch::tensor({-3.0, -2.0}, torch::kFloat64).requires_grad_(true);
    auto pl = torch::tensor({-5.0, -1.0}, torch::kFloat64).requires_grad_(true);
    auto rw = torch::tensor({-4.0, -2.0}, torch::kFloat64), rl = torch::tensor({-4.5, -3.0}, torch::kFloat64);
    train::Metrics m;
    auto loss = dpo::dpo_loss(pw, pl, rw, rl, beta, type, &m);
    loss.backward();
    double hand = 0;
    for (int b = 0; b < 2; ++b) {
      const double lb = type == "sigmoid" ? std::log1p(std::exp(-beta * h[b])) : std::pow(h[b] - 1 / (2 * beta), 2);
      hand += lb / 2;
      const double g = type == "sigmoid" ? -beta * sig(-beta * h[b]) / 2 : 2 * (h[b] - 1 / (2 * beta)) / 2;
      EXPECT_NEAR(pw.grad()[b].item<double>(), g, 1e-12) << type;
      EXPECT_NEAR(pl.grad()[b].item<double>(), -g, 1e-12) << type;
    }
    EXPECT_NEAR(loss.item<double>(), hand, 1e-12) << type;
    // TRL-style metrics: rewards = β·(π − ρ).
    EXPECT_NEAR(m[1].second, beta * ((-3 + 4) + (-2 + 2)) / 2, 1e-9);   // rewards/chosen
    EXPECT_NEAR(m[2].second, beta * ((-5 + 4.5) + (-1 + 3)) / 2, 1e-9); // rewards/rejected
    EXPECT_NEAR(m[3].second, 0.5, 1e-9);                                // rewards/accuracies
  }
  // response_logprobs of a real model = Σ over response tokens of log_softmax at the previous position.
  auto model = test::tiny_gpt2(16, false);
  train::TokenSeq s{{3, 4, 5, 6}, {0, 0, 1, 1}};
  auto lp = dpo::response_logprobs(*model, {&s}, 0, torch::kCPU);
  auto ids = torch::tensor({{3, 4, 5, 6}}, torch::kInt64);
  auto lsm = torch::log_softmax(model->forward_logits(ids, torch::ones_like(ids)), -1);
  EXPECT_NEAR(lp[0].item<double>(), (lsm[0][1][5] + lsm[0][2][6]).item<double>(), 1e-5);
}

TEST(TrainDpo, ImprovesPreferenceOnTinyModel) {
  test::TempDir tmp;
  torch::manual_seed(0);
  Rule rule;
  std::vector<PreferenceGroup> groups;
  for (int i = 0; i < 64; ++i) groups.push_back(rule.pair());
  auto pairs = dpo::pairs_from_groups(groups);
  auto ref = test::tiny_gpt2(32, false, 7);
  auto policy = test::tiny_gpt2(32, false, 7);
  dpo::DpoConfig cfg;
  cfg.beta = 0.1;
  cfg.batch_size = 16;
  dpo::compute_reference_logprobs(*ref, pairs, 16, 0, torch::kCPU);
  auto res = dpo::train_dpo(*policy, pairs, pairs, cfg, quiet_loop(tmp / "dpo", 40, 3e-3));
  train::Metrics ev = res.last_eval;
  std::cout << "[dpo] " << train::format_metrics(ev) << "\n";
  EXPECT_GT(ev[3].second, 0.9);   // rewards/accuracies
  EXPECT_GT(ev[4].second, 0.0);   // rewards/margins
}

// The overlong policies on one pair, against a hand computation from the tokenizer's own ids (Llama 2 tokenizer: a
// BOS before the prompt). P = prompt tokens after BOS, R = the longer response (+ EOS), L = --max-len.
//   truncate-left: BOS + the prompt's last L - 1 - R tokens + each response, the same prompt for both;
//                  with a prompt floor of L/2 tokens the longer response is then cut from the right
//   truncate:      the first L tokens (the pair is dropped when no response token is left)
//   drop / error:  dropped / an error naming the file and line
TEST(TrainData, OverlongPoliciesAgainstHandComputation) {
  Formatter fmt(tok::Tokenizer::from_files(test::data("tokenizers/llama2/tokenizer.json"),
                                           test::data("tokenizers/llama2/tokenizer_config.json")),
                FormatOptions{});
  ASSERT_TRUE(fmt.tokenizer().bos_id().has_value());
  const int64_t bos = *fmt.tokenizer().bos_id();
  std::string prompt;
  for (int i = 0; i < 40; ++i) prompt += "word" + std::to_string(i) + " ";
  prompt += "Question?";
  const std::string chosen = " A short answer.", rejected = " A much longer answer that goes on for a while.";
  const auto pc = fmt.encode(prompt, chosen), pr = fmt.encode(prompt, rejected);
  ASSERT_EQ(pc.prompt, pr.prompt);
  ASSERT_EQ(pc.prompt.front(), bos);
  const int64_t P = static_cast<int64_t>(pc.prompt.size()) - 1;
  const int64_t R = static_cast<int64_t>(std::max(pc.response.size(), pr.response.size()));
  ASSERT_GT(P, 3 * R) << "the prompt must dominate for the cases below";

  test::TempDir dir;
  const std::string path = dir / "pairs.jsonl";
  {
    std::ofstream f(path);
    f << json{{"prompt", prompt}, {"chosen", chosen}, {"rejected", rejected}}.dump() << "\n";
    f << json{{"prompt", "Hi"}, {"chosen", " yes"}, {"rejected", " no"}}.dump() << "\n";  // short: untouched
  }
  auto load = [&](const std::string& policy, int64_t L, DataReport* rep) {
    DataOptions o;
    o.max_len = L;
    o.overlong = policy;
    return load_preference_data(path, fmt, o, rep);
  };
  auto expect_seq = [](const train::TokenSeq& s, const std::vector<int64_t>& head, const std::vector<int64_t>& resp) {
    std::vector<int64_t> want = head;
    want.insert(want.end(), resp.begin(), resp.end());
    EXPECT_EQ(s.ids, want);
    std::vector<uint8_t> mask(head.size(), 0);
    mask.resize(want.size(), 1);
    EXPECT_EQ(s.loss_mask, mask);
  };

  {  // truncate-left, room for both responses: the prompt's last L - 1 - R tokens
    const int64_t L = 1 + R + P / 2 + 3;  // L - 1 - R > L/2: the floor does not bind
    DataReport rep;
    auto g = load("truncate-left", L, &rep);
    ASSERT_EQ(g.size(), 2u);
    EXPECT_EQ(rep.truncated, 1);
    EXPECT_EQ(rep.dropped, 0);
    std::vector<int64_t> head{bos};
    head.insert(head.end(), pc.prompt.end() - (L - 1 - R), pc.prompt.end());
    expect_seq(g[0].responses[0], head, pc.response);
    expect_seq(g[0].responses[1], head, pr.response);
    EXPECT_LE(static_cast<int64_t>(g[0].responses[1].ids.size()), L);
    EXPECT_EQ(static_cast<int64_t>(g[0].responses[1].ids.size()), L);  // the longer one fills it exactly
    expect_seq(g[1].responses[0], fmt.encode("Hi", " yes").prompt, fmt.encode("Hi", " yes").response);
  }
  {  // truncate-left, the prompt floor binds: BOS + the last L/2 prompt tokens, the longer response cut to fit
    const int64_t L = 2 * (R - 2);  // L - 1 - R < L/2
    ASSERT_LT(L - 1 - R, L / 2);
    DataReport rep;
    auto g = load("truncate-left", L, &rep);
    ASSERT_EQ(g.size(), 2u);
    EXPECT_EQ(rep.truncated, 1);  // the pair counts once
    std::vector<int64_t> head{bos};
    head.insert(head.end(), pc.prompt.end() - L / 2, pc.prompt.end());
    const auto& lr = g[0].responses[1];
    EXPECT_EQ(static_cast<int64_t>(lr.ids.size()), L);
    std::vector<int64_t> cut(pr.response.begin(), pr.response.begin() + (L - static_cast<int64_t>(head.size())));
    expect_seq(lr, head, cut);
    const auto& sc = g[0].responses[0];
    EXPECT_EQ(std::vector<int64_t>(sc.ids.begin(), sc.ids.begin() + head.size()), head);
  }
  {  // truncate keeps the start: with L < the prompt nothing of the responses is left, the pair is dropped
    DataReport rep;
    auto g = load("truncate", P / 2, &rep);
    EXPECT_EQ(g.size(), 1u);
    EXPECT_EQ(rep.dropped, 1);
    EXPECT_EQ(rep.truncated, 0);
    // ... and with room for a few response tokens, the first L tokens of each
    const int64_t L = 1 + P + 2;
    DataReport rep2;
    auto g2 = load("truncate", L, &rep2);
    ASSERT_EQ(g2.size(), 2u);
    EXPECT_EQ(rep2.truncated, 1);
    expect_seq(g2[0].responses[1], pc.prompt, std::vector<int64_t>(pr.response.begin(), pr.response.begin() + 2));
  }
  {
    DataReport rep;
    EXPECT_EQ(load("drop", P, &rep).size(), 1u);
    EXPECT_EQ(rep.dropped, 1);
    try {
      load("error", P, nullptr);
      FAIL() << "expected an error";
    } catch (const std::exception& e) {
      EXPECT_NE(std::string(e.what()).find("pairs.jsonl:1"), std::string::npos) << e.what();
    }
  }
}

// A ranking line may give the conversation so far as "messages" (oasst's multi-turn rankings) instead of "prompt".
TEST(TrainData, RankingWithMessagesAsPrompt) {
  auto fmt = Formatter::from_dir(test::data("models/gpt2-e2e"), /*chat=*/1);
  json msgs = json::array({{{"role", "user"}, {"content", "Hi"}},
                           {{"role", "assistant"}, {"content", "Hello!"}},
                           {{"role", "user"}, {"content", "Name a color"}}});
  auto g = encode_preference_line(
      {{"messages", msgs}, {"responses", json::array({"Blue", "Red", "Dog"})}, {"ranks", json::array({1, 1, 2})}}, fmt);
  ASSERT_EQ(g.responses.size(), 3u);
  const auto want = fmt.encode(msgs, "Blue");
  std::vector<int64_t> ids = want.prompt;
  ids.insert(ids.end(), want.response.begin(), want.response.end());
  EXPECT_EQ(g.responses[0].ids, ids);
  EXPECT_EQ(g.pairs, (std::vector<std::pair<int, int>>{{0, 2}, {1, 2}}));  // the tie gives no pair
  EXPECT_THROW(encode_preference_line({{"messages", json::array()}, {"responses", json::array({"a", "b"})},
                                       {"ranking", json::array({0, 1})}},
                                      fmt),
               std::exception);
}
