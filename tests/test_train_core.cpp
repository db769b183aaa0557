// The shared training core: AdamW against a hand computation and torch::optim::AdamW, the schedule, clipping,
// parameter groups, fused log-probs against the log_softmax reference, batching, JSONL errors, checkpoints.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <fstream>
#include <set>

#include "common/error.h"
#include "io/crc32c.h"
#include "model/model.h"
#include "test_train_util.h"
#include "test_util.h"
#include "train/batching.h"
#include "train/checkpoint.h"
#include "train/jsonl.h"
#include "train/logprobs.h"
#include "train/metrics.h"
#include "train/optim.h"
#include "train/tensorboard.h"

using namespace rlhf;
using namespace rlhf::train;

TEST(TrainOptim, AdamWMatchesHandComputation) {
  // One scalar parameter p0 = 1, grads 0.5 then -0.25, lr 0.1, wd 0.01, β = (0.9, 0.999), ε = 1e-8. By hand:
  //   t=1: p = 1·(1 − 0.1·0.01) = 0.999; m = 0.05, v = 0.00025; m̂ = 0.5, v̂ = 0.25; p −= 0.1·0.5/(0.5 + 1e-8)
  //   t=2: p ·= 0.999; m = 0.9·0.05 − 0.025 = 0.02, v = 0.999·0.00025 + 0.001·0.0625 = 0.00031225
  //        m̂ = 0.02/0.19, v̂ = 0.00031225/(1 − 0.999²); p −= 0.1·m̂/(sqrt(v̂) + ε)
  auto p = torch::ones({1}, torch::dtype(torch::kFloat64).requires_grad(true));
  AdamWConfig cfg;
  cfg.weight_decay = 0.01;
  ParamGroup g{{{"p", p}}, 0.01, 1.0};
  AdamW opt({g}, cfg);
  double hand = 1.0;
  hand *= 0.999;
  hand -= 0.1 * 0.5 / (0.5 + 1e-8);
  hand *= 0.999;
  const double mh = 0.02 / 0.19, vh = 0.00031225 / (1 - 0.999 * 0.999);
  hand -= 0.1 * mh / (std::sqrt(vh) + 1e-8);
  for (double grad : {0.5, -0.25}) {
    p.mutable_grad() = torch::full({1}, grad, torch::kFloat64);
    opt.step(0.1);
  }
  EXPECT_NEAR(p.item<double>(), hand, 1e-12);
  EXPECT_EQ(opt.steps(), 2);
}

TEST(TrainOptim, AdamWMatchesTorchOptim) {
  torch::manual_seed(0);
  auto a = torch::randn({4, 3}, torch::kFloat64).requires_grad_(true);
  auto b = a.detach().clone().requires_grad_(true);
  AdamWConfig cfg;
  cfg.weight_decay = 0.1;
  AdamW mine({ParamGroup{{{"a", a}}, 0.1, 1.0}}, cfg);
  torch::optim::AdamW ref({b}, torch::optim::AdamWOptions(0.01).weight_decay(0.1));
  for (int s = 0; s < 5; ++s) {
    auto gr = torch::randn({4, 3}, torch::kFloat64);
    a.mutable_grad() = gr.clone();
    b.mutable_grad() = gr.clone();
    mine.step(0.01);
    ref.step();
  }
  EXPECT_LT((a - b).abs().max().item<double>(), 1e-12);
}

TEST(TrainOptim, ParamGroupsNoDecayOnNormsBiasesEmbeddings) {
  auto model = test::tiny_gpt2(16, false);
  std::vector<NamedParam> named;
  for (auto& w : model->weights()) named.push_back({w.name, w.tensor});
  AdamWConfig cfg;
  cfg.weight_decay = 0.1;
  auto groups = default_param_groups(named, cfg);
  ASSERT_EQ(groups.size(), 2u);
  std::set<std::string> no_decay;
  for (auto& p : groups[1].params) no_decay.insert(p.name);
  EXPECT_TRUE(no_decay.count("transformer.wte.weight"));
  EXPECT_TRUE(no_decay.count("transformer.wpe.weight"));
  EXPECT_TRUE(no_decay.count("transformer.ln_f.weight"));
  EXPECT_TRUE(no_decay.count("transformer.h.0.attn.c_attn.bias"));
  for (auto& p : groups[0].params) EXPECT_GE(p.param.dim(), 2) << p.name;
  EXPECT_EQ(groups[0].weight_decay, 0.1);
  EXPECT_EQ(groups[1].weight_decay, 0.0);
}

TEST(TrainOptim, ScheduleAndClipping) {
  ScheduleConfig s;
  s.kind = "cosine";
  s.warmup_steps = 10;
  s.total_steps = 110;
  EXPECT_DOUBLE_EQ(schedule_lr(s, 1.0, 0), 0.1);
  EXPECT_DOUBLE_EQ(schedule_lr(s, 1.0, 9), 1.0);
  EXPECT_NEAR(schedule_lr(s, 1.0, 60), 0.5, 1e-12);  // halfway through the decay: ½(1 + cos(π/2))
  EXPECT_NEAR(schedule_lr(s, 1.0, 110), 0.0, 1e-12);
  s.kind = "linear";
  EXPECT_NEAR(schedule_lr(s, 1.0, 35), 0.75, 1e-12);
  s.kind = "bogus";
  EXPECT_THROW(s.validate(), Error);

  auto p = torch::zeros({2}, torch::requires_grad());
  p.mutable_grad() = torch::tensor({3.0f, 4.0f});
  EXPECT_NEAR(clip_grad_norm({p}, 1.0), 5.0, 1e-6);
  EXPECT_NEAR(p.grad().norm().item<double>(), 1.0, 1e-5);
}

TEST(TrainLogprobs, FusedMatchesReferenceAndGradients) {
  torch::manual_seed(1);
  auto logits = torch::randn({2, 5, 11}, torch::kFloat64).requires_grad_(true);
  auto tokens = torch::randint(0, 11, {2, 5}, torch::kInt64);
  for (double tau : {1.0, 0.7}) {
    auto a = token_logprobs(logits.to(torch::kFloat32), tokens, tau);
    auto b = token_logprobs_reference(logits.to(torch::kFloat32), tokens, tau);
    EXPECT_LT((a - b).abs().max().item<double>(), 1e-5);
  }
  // Gradient of Σ logp against finite differences (double precision).
  auto f = [&](const torch::Tensor& z) {
    auto zz = z / 0.7;
    return (zz.gather(-1, tokens.unsqueeze(-1)).squeeze(-1) - torch::logsumexp(zz, -1)).sum();
  };
  auto loss = f(logits);
  loss.backward();
  auto g = logits.grad();
  {
    torch::NoGradGuard ng;
    for (int k = 0; k < 5; ++k) {
      auto e = torch::zeros_like(logits);
      auto flat = e.view({-1});
      flat[k * 13 % flat.numel()] = 1e-6;
      const double fd = (f(logits + e) - f(logits - e)).item<double>() / 2e-6;
      EXPECT_NEAR(fd, (g * e).sum().item<double>() / 1e-6, 1e-6);
    }
  }
  // token_logprobs' own gradient equals the log_softmax reference's.
  {
    torch::manual_seed(2);
    auto z1 = torch::randn({2, 4, 9}).requires_grad_(true), z2 = z1.detach().clone().requires_grad_(true);
    auto y = torch::randint(0, 9, {2, 4}, torch::kInt64);
    auto w = torch::randn({2, 4});
    (token_logprobs(z1, y, 0.7) * w).sum().backward();
    (token_logprobs_reference(z2, y, 0.7) * w).sum().backward();
    EXPECT_LT((z1.grad() - z2.grad()).abs().max().item<double>(), 1e-6);
  }
  // sequence_logprobs: causal alignment and mask.
  auto ids = torch::tensor({{3, 4, 5}}, torch::kInt64);
  auto lg = torch::randn({1, 3, 11});
  auto mask = torch::tensor({{0.f, 0.f, 1.f}});  // only the last token
  auto lsm = torch::log_softmax(lg, -1);
  EXPECT_NEAR(sequence_logprobs(lg, ids, mask).item<double>(), lsm[0][1][5].item<double>(), 1e-5);
}

TEST(TrainBatching, BucketsCoverEveryIndexOnceAndAreDeterministic) {
  std::vector<int64_t> lengths;
  for (int i = 0; i < 103; ++i) lengths.push_back((i * 37) % 50 + 1);
  auto b1 = make_batches(lengths, 8, 42, 3), b2 = make_batches(lengths, 8, 42, 3), b3 = make_batches(lengths, 8, 42, 4);
  EXPECT_EQ(b1, b2);
  EXPECT_NE(b1, b3);
  std::multiset<int64_t> seen;
  for (auto& b : b1) seen.insert(b.begin(), b.end());
  EXPECT_EQ(seen.size(), 103u);
  EXPECT_EQ(std::set<int64_t>(seen.begin(), seen.end()).size(), 103u);

  std::vector<TokenSeq> seqs = {{{5, 6, 7}, {0, 1, 1}}, {{8, 9}, {}}, {{10, 11, 12, 13}, {0, 0, 1, 1}}};
  auto pb = pad_right(seqs, /*pad_id=*/99);
  EXPECT_TRUE(torch::equal(pb.input_ids[1], torch::tensor({8, 9, 99, 99}, torch::kInt64)));
  EXPECT_TRUE(torch::equal(pb.attention_mask[1], torch::tensor({1, 1, 0, 0}, torch::kInt64)));
  EXPECT_TRUE(torch::equal(pb.loss_mask[0], torch::tensor({0.f, 1.f, 1.f, 0.f})));
  auto rows = pack_sequences({3, 2, 4}, 5);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0], (std::vector<int64_t>{0, 1}));
  auto pk = pad_packed(seqs, rows, 99);
  EXPECT_TRUE(torch::equal(pk.position_ids[0], torch::tensor({0, 1, 2, 0, 1}, torch::kInt64)));
  // The second example's first token is not predicted from the first example.
  EXPECT_TRUE(torch::equal(pk.loss_mask[0], torch::tensor({0.f, 1.f, 1.f, 0.f, 1.f})));
}

TEST(TrainJsonl, ErrorsNameFileLineAndField) {
  test::TempDir tmp;
  const auto path = tmp / "d.jsonl";
  std::ofstream(path) << "{\"prompt\": \"a\", \"completion\": \"b\"}\n{not json\n{\"prompt\": \"a\"}\n\n";
  auto parse = [](const nlohmann::json& j, int64_t) {
    string_field(j, "prompt");
    string_field(j, "completion");
  };
  try {
    read_jsonl(path, {}, parse);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path + ":2: malformed JSON"), std::string::npos) << e.what();
  }
  JsonlOptions skip;
  skip.skip_bad_lines = true;
  auto rep = read_jsonl(path, skip, parse);
  EXPECT_EQ(rep.read, 1);
  EXPECT_EQ(rep.skipped, 2);
  std::ofstream(path) << "{\"prompt\": \"a\"}\n";
  try {
    read_jsonl(path, {}, parse);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path + ":1: field \"completion\": missing"), std::string::npos) << e.what();
  }
  std::ofstream(path) << "\n";
  try {
    read_jsonl(path, {}, parse);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("empty dataset"), std::string::npos) << e.what();
  }
}

TEST(TrainCheckpoint, RoundTripsOptimizerRngAndState) {
  test::TempDir tmp;
  auto model = test::tiny_gpt2(16, false);
  AdamW opt(default_param_groups([&] {
              std::vector<NamedParam> v;
              for (auto& w : model->weights()) v.push_back({w.name, w.tensor});
              return v;
            }(), {}),
            {});
  auto ids = torch::randint(0, 16, {2, 6}, torch::kInt64);
  model->forward_logits(ids, torch::ones_like(ids)).sum().backward();
  opt.step(1e-3);
  Checkpoint ck;
  ck.models.push_back({"", model.get(), {}});
  ck.optimizers.push_back({"optimizer", &opt});
  ck.state.step = 7;
  ck.state.data_position = 3;
  ck.state.state = {{"kl_coef", 0.2}};
  ck.json_files["train_config.json"] = {{"lr", 1e-3}};
  const auto dir = tmp / "ck";
  save_checkpoint(dir, ck);
  std::ofstream(tmp / "ck/metrics.jsonl") << "{}\n";
  save_checkpoint(dir, ck);  // replacing keeps files it does not write
  EXPECT_TRUE(std::filesystem::exists(tmp / "ck/metrics.jsonl"));
  const double r1 = torch::rand({1}).item<double>();
  auto loaded = load_model(dir);
  AdamW opt2(default_param_groups([&] {
               std::vector<NamedParam> v;
               for (auto& w : loaded->weights()) v.push_back({w.name, w.tensor});
               return v;
             }(), {}),
             {});
  auto st = load_checkpoint(dir, {{"optimizer", &opt2}});
  EXPECT_EQ(st.step, 7);
  EXPECT_EQ(st.data_position, 3);
  EXPECT_EQ(st.state["kl_coef"], 0.2);
  EXPECT_EQ(opt2.steps(), 1);
  EXPECT_EQ(torch::rand({1}).item<double>(), r1);  // RNG restored to the saved point
  for (auto& [k, v] : opt.state_dict()) EXPECT_TRUE(torch::equal(v, opt2.state_dict()[k])) << k;
  EXPECT_THROW(load_checkpoint(tmp / "nope", {}), Error);
}

TEST(TrainMetrics, JsonlLines) {
  test::TempDir tmp;
  {
    MetricsLog log(tmp / "m.jsonl", false);
    log.log(1, {{"loss", 0.5}, {"lr", 1e-5}});
    log.log(2, {{"accuracy", 1.0}}, "eval");
  }
  std::ifstream in(tmp / "m.jsonl");
  std::string l1, l2;
  std::getline(in, l1);
  std::getline(in, l2);
  auto j1 = nlohmann::json::parse(l1), j2 = nlohmann::json::parse(l2);
  EXPECT_EQ(j1["step"], 1);
  EXPECT_EQ(j1["loss"], 0.5);
  EXPECT_EQ(j2["split"], "eval");
  EXPECT_EQ(format_metrics({{"loss", 0.53125}, {"lr", 1e-5}}), "loss 0.5312 lr 1.00e-05");
}

TEST(TrainTensorBoard, Crc32cMatchesRfc3720Vectors) {
  // RFC 3720 (iSCSI) appendix B.4, and the usual check value of "123456789".
  std::string zeros(32, '\0'), ones(32, '\xFF'), up(32, 0), down(32, 0);
  for (int i = 0; i < 32; ++i) {
    up[i] = static_cast<char>(i);
    down[i] = static_cast<char>(31 - i);
  }
  EXPECT_EQ(io::crc32c(zeros.data(), 32), 0x8A9136AAu);
  EXPECT_EQ(io::crc32c(ones.data(), 32), 0x62A8AB43u);
  EXPECT_EQ(io::crc32c(up.data(), 32), 0x46DD794Eu);
  EXPECT_EQ(io::crc32c(down.data(), 32), 0x113FDB5Cu);
  EXPECT_EQ(io::crc32c("123456789", 9), 0xE3069283u);
  EXPECT_EQ(io::crc32c_extend(io::crc32c("1234", 4), "56789", 5), 0xE3069283u);
}

TEST(TrainTensorBoard, EventBytesByHand) {
  // Event{wall_time: 0, step: 3, summary{value{tag: "a", simple_value: 1}}}, field by field:
  //   09 <8 zero bytes>  10 03  2a 0a [ 0a 08 [ 0a 01 'a'  15 00 00 80 3f ] ]      (1.0f = 0x3f800000, LE)
  const std::string want = std::string("\x09", 1) + std::string(8, '\0') + std::string("\x10\x03\x2a\x0a\x0a\x08", 6) +
                           std::string("\x0a\x01" "a" "\x15\x00\x00\x80\x3f", 8);
  EXPECT_EQ(encode_scalar_event(0.0, 3, {{"a", 1.0}}), want);
  // The frame: u64 length, masked CRC of those 8 bytes, the data, masked CRC of the data.
  const std::string f = tfrecord_frame(want);
  ASSERT_EQ(f.size(), 8 + 4 + want.size() + 4);
  EXPECT_EQ(static_cast<unsigned char>(f[0]), want.size());
  uint32_t data_crc = 0;
  for (int i = 0; i < 4; ++i) data_crc |= static_cast<uint32_t>(static_cast<unsigned char>(f[f.size() - 4 + i])) << (8 * i);
  EXPECT_EQ(data_crc, io::crc32c_masked(io::crc32c(want.data(), want.size())));
}

TEST(TrainMetrics, TensorBoardBesideJsonl) {
  test::TempDir tmp;
  {
    MetricsLog log(tmp / "m.jsonl", false, "tensorboard");
    log.log(1, {{"loss", 0.5}});
  }
  int files = 0;
  for (const auto& e : std::filesystem::directory_iterator(tmp / "runs")) {
    EXPECT_NE(e.path().filename().string().find("events.out.tfevents."), std::string::npos);
    EXPECT_GT(std::filesystem::file_size(e.path()), 0u);
    ++files;
  }
  EXPECT_EQ(files, 1);
  EXPECT_THROW(MetricsLog(tmp / "n.jsonl", false, "wandb"), Error);
}

TEST(TrainSave, ShardSizeAndDtypeFlags) {
  // save_pretrained's max_shard_size: KB/MB/GB are powers of 10, KiB/MiB/GiB powers of 2.
  EXPECT_EQ(parse_shard_size(""), 0u);
  EXPECT_EQ(parse_shard_size("0"), 0u);
  EXPECT_EQ(parse_shard_size("5GB"), 5000000000u);
  EXPECT_EQ(parse_shard_size("500MB"), 500000000u);
  EXPECT_EQ(parse_shard_size("2GiB"), 2147483648u);
  EXPECT_EQ(parse_shard_size("10KiB"), 10240u);
  EXPECT_EQ(parse_shard_size("1234"), 1234u);
  EXPECT_THROW(parse_shard_size("5 GB"), Error);
  EXPECT_THROW(parse_shard_size("GB"), Error);
  EXPECT_EQ(save_dtype_from_flag(""), "");
  EXPECT_EQ(save_dtype_from_flag("bf16"), "bfloat16");
  EXPECT_EQ(save_dtype_from_flag("fp32"), "float32");
  EXPECT_THROW(save_dtype_from_flag("fp8"), Error);
}
