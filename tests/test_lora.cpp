// LoRA (src/lora) against things outside it:
//   * the merged model (W + s·B·A, a plain model with no adapter code in its forward) gives the LoRA forward's
//     logits to 1e-6 relative in float32 and float64 (gpt2's Conv1D transposed, llama/qwen2/qwen3 not);
//   * gradients of A and B equal central finite differences in float64 (one layer to 1e-8; the whole model to 2e-3,
//     its softmax and RMSNorm being float32) and the chain rule through the merged model's weight gradient;
//   * a fresh adapter (B = 0) gives the base model's logits bit for bit, and so does any adapter switched off;
//   * the PEFT folder round-trips: names, shapes and fields as PEFT 0.21.2 writes them (checked against a real
//     PEFT save in tests/py/test_peft.py), loading gives the saved adapter's logits bit for bit;
//   * errors name the file, the tensor and what was expected.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <functional>

#include "common/error.h"
#include "io/safetensors.h"
#include "lora/adapters.h"
#include "lora/peft_format.h"
#include "model/model.h"
#include "test_cli_util.h"
#include "test_util.h"

using namespace rlhf;
namespace fs = std::filesystem;
using test::error_of;

namespace {

const char* kFamilies[] = {"gpt2-tiny", "llama-tiny", "qwen2-tiny", "qwen3-tiny-sharded"};

std::shared_ptr<TransformerLM> load(const std::string& name, torch::ScalarType dtype = torch::kFloat32,
                                    const std::string& head = "auto") {
  LoadOptions lo;
  lo.dtype = dtype;
  lo.head = head;
  return load_model(test::data("models/" + name), lo);
}

// Two rows, the second right-padded (ids < 512, the fixtures' vocabulary).
std::pair<torch::Tensor, torch::Tensor> batch() {
  auto gen = at::detail::createCPUGenerator(7);
  auto ids = torch::randint(3, 500, {2, 10}, gen, torch::kInt64);
  auto mask = torch::ones_like(ids);
  mask.index_put_({1, torch::indexing::Slice(7)}, 0);
  return {ids, mask};
}

lora::LoraOptions options(const std::string& targets, int64_t r = 4, double alpha = 8) {
  lora::LoraOptions o;
  o.r = r;
  o.alpha = alpha;
  o.targets = targets;
  return o;
}

// B = 0 gives no signal: fill every B with random values, as training would after some steps.
void randomize_b(const lora::LoraAdapters& a, uint64_t seed, double std = 0.05) {
  torch::NoGradGuard ng;
  auto gen = at::detail::createCPUGenerator(seed);
  for (const auto& e : a.entries) e.lora->B.normal_(0.0, std, gen);
}

double rel_error(const torch::Tensor& a, const torch::Tensor& b) {
  return (a - b).abs().max().item<double>() / b.abs().max().item<double>();
}

}  // namespace

TEST(Lora, ForwardEqualsMergedForward) {
  torch::NoGradGuard ng;
  auto [ids, mask] = batch();
  for (const char* name : kFamilies)
    for (auto dtype : {torch::kFloat64, torch::kFloat32}) {
      auto model = load(name, dtype);
      auto a = lora::attach_lora(*model, options("all-linear"), /*seed=*/1);
      randomize_b(*a, 2);
      auto lora_logits = model->forward_logits(ids, mask);
      auto merged = load(name, dtype);
      lora::merge_adapters(*merged, *a);
      EXPECT_FALSE(merged->has_linear_deltas());
      auto merged_logits = merged->forward_logits(ids, mask);
      const double err = rel_error(lora_logits, merged_logits);
      // 1e-6 in both dtypes: the attention softmax and RMSNorm round to float32 even in a float64 model (as
      // transformers does), which turns the float64 difference of the two paths into float32 noise (measured
      // 4e-8 to 1.4e-7 relative for float64 and float32 alike).
      EXPECT_LT(err, 1e-6) << name << " " << dtype;
      // The adapters do change the model (else the comparison says nothing).
      EXPECT_GT(rel_error(lora_logits, load(name, dtype)->forward_logits(ids, mask)), 1e-3) << name;
    }
}

// Central finite differences of f at some entries of t, against t's autograd gradient g.
// Returns max |g − fd| / max(1, |fd|) over the entries.
double fd_error(torch::Tensor& t, const torch::Tensor& g, const std::function<double()>& f, double eps) {
  torch::NoGradGuard ng;
  double worst = 0;
  auto v = t.view(-1);
  for (int64_t flat : {int64_t(0), t.numel() / 3, t.numel() / 2 + 1, t.numel() - 1}) {
    const double x0 = v[flat].item<double>();
    v[flat] = x0 + eps;
    const double up = f();
    v[flat] = x0 - eps;
    const double down = f();
    v[flat] = x0;
    const double fd = (up - down) / (2 * eps);
    worst = std::max(worst, std::abs(g.reshape(-1)[flat].item<double>() - fd) / std::max(1.0, std::abs(fd)));
  }
  return worst;
}

TEST(Lora, GradientsMatchFiniteDifferences) {
  // 1. One adapted layer in float64 (no float32 step anywhere): y = x·Wᵀ + s·B·A·x, L = Σ y ⊙ w.
  {
    auto gen = at::detail::createCPUGenerator(11);
    auto opts = torch::TensorOptions().dtype(torch::kFloat64);
    auto x = torch::randn({3, 5, 16}, gen, opts), W = torch::randn({12, 16}, gen, opts);
    auto w = torch::randn({3, 5, 12}, gen, opts);
    auto l = lora::new_lora_linear(16, 12, 4, 8.0 / 4, 0.0, opts, gen);
    {
      torch::NoGradGuard ng;
      l->B.normal_(0.0, 0.5, gen);
    }
    l->A.set_requires_grad(true);
    l->B.set_requires_grad(true);
    auto loss = [&] { return ((torch::linear(x, W) + l->forward(x, false)) * w).sum(); };
    loss().backward();
    auto f = [&] { return loss().item<double>(); };
    EXPECT_LT(fd_error(l->A, l->A.grad(), f, 1e-6), 1e-8);
    EXPECT_LT(fd_error(l->B, l->B.grad(), f, 1e-6), 1e-8);
  }
  auto [ids, mask] = batch();
  for (const char* name : {"gpt2-tiny", "llama-tiny"}) {
    auto model = load(name, torch::kFloat64);
    auto a = lora::attach_lora(*model, options("all-linear", 3, 6), 1);
    randomize_b(*a, 3, 0.1);
    // L = Σ logits ⊙ w over real positions, w fixed random: every logit contributes.
    auto gen = at::detail::createCPUGenerator(5);
    auto w = torch::randn({2, 10, model->config().vocab_size}, gen, torch::TensorOptions().dtype(torch::kFloat64)) *
             mask.unsqueeze(-1).to(torch::kFloat64);
    auto loss_of = [&](TransformerLM& m) { return (m.forward_logits(ids, mask) * w).sum(); };
    loss_of(*model).backward();
    // 2. Through the whole model, against the chain rule through the merged model (no adapter code in it): with
    //    W' = W + s·B·A (nn.Linear; Conv1D stores W'ᵀ), dL/dA = s·Bᵀ·G and dL/dB = s·G·Aᵀ, G = dL/dW' (out, in).
    auto merged = load(name, torch::kFloat64);
    lora::merge_adapters(*merged, *a);
    loss_of(*merged).backward();
    const auto sites = merged->linear_sites();
    for (const auto& e : a->entries) {
      auto G = sites[e.site].weight.grad();
      if (e.fan_in_fan_out) G = G.t();
      const double s = e.lora->scaling;
      auto dA = s * torch::matmul(e.lora->B.detach().t(), G), dB = s * torch::matmul(G, e.lora->A.detach().t());
      // Measured 5e-8 to 3e-7 (the float32 softmax/RMSNorm again; a wrong factor would be O(1)).
      EXPECT_LT(rel_error(e.lora->A.grad(), dA), 1e-6) << name << " " << e.module;
      EXPECT_LT(rel_error(e.lora->B.grad(), dB), 1e-6) << name << " " << e.module;
    }
    // 3. Through the whole model by finite differences. The attention softmax and RMSNorm run in float32 even in a
    //    float64 model (as transformers does), so L carries float32 rounding: a larger step and a looser bound,
    //    still far below the errors a wrong scaling (×2) or a transposed factor would give.
    auto f = [&] {
      torch::NoGradGuard ng;
      return loss_of(*model).item<double>();
    };
    for (size_t k : {size_t(0), a->entries.size() / 2, a->entries.size() - 1}) {
      auto& e = a->entries[k];
      EXPECT_LT(fd_error(e.lora->A, e.lora->A.grad(), f, 1e-3), 2e-3) << name << " " << e.module << " A";
      EXPECT_LT(fd_error(e.lora->B, e.lora->B.grad(), f, 1e-3), 2e-3) << name << " " << e.module << " B";
    }
    // The base is frozen: no gradient reaches it.
    for (const auto& wt : model->weights()) EXPECT_FALSE(wt.tensor.grad().defined()) << wt.name;
  }
}

TEST(Lora, FreshAdapterAndAdaptersOffAreTheBaseBitForBit) {
  torch::NoGradGuard ng;
  auto [ids, mask] = batch();
  for (const char* name : kFamilies) {
    auto base_logits = load(name)->forward_logits(ids, mask);
    auto model = load(name);
    auto a = lora::attach_lora(*model, options("all-linear"), 1);
    // Step 0: B = 0, so B·A·x = 0 exactly and W·x + 0 = W·x.
    EXPECT_TRUE(torch::equal(model->forward_logits(ids, mask), base_logits)) << name;
    randomize_b(*a, 2);
    EXPECT_FALSE(torch::equal(model->forward_logits(ids, mask), base_logits)) << name;
    {
      lora::AdaptersOff off(*model);
      auto off_logits = model->forward_logits(ids, mask);
      EXPECT_TRUE(torch::equal(off_logits, base_logits)) << name << " max diff "
                                                          << (off_logits - base_logits).abs().max().item<double>();
    }
    EXPECT_TRUE(model->linear_deltas_enabled());
    EXPECT_FALSE(torch::equal(model->forward_logits(ids, mask), base_logits)) << name;
  }
}

TEST(Lora, TargetsFollowPeftsNamesAndDefaults) {
  auto gpt2 = load("gpt2-tiny");
  auto a = lora::attach_lora(*gpt2, options("c_proj"), 1);
  // "c_proj" is both attn.c_proj and mlp.c_proj, as in PEFT (suffix match).
  ASSERT_EQ(a->entries.size(), 4u);
  EXPECT_EQ(a->entries[0].module, "transformer.h.0.attn.c_proj");
  EXPECT_EQ(a->entries[1].module, "transformer.h.0.mlp.c_proj");
  EXPECT_TRUE(a->entries[0].fan_in_fan_out);
  EXPECT_EQ(a->target_modules, std::vector<std::string>{"c_proj"});
  // Default targets: PEFT's per-family mapping (gpt2: c_attn; llama: q_proj, v_proj).
  auto d = lora::attach_lora(*load("gpt2-tiny"), options(""), 1);
  ASSERT_EQ(d->entries.size(), 2u);
  EXPECT_EQ(d->entries[1].module, "transformer.h.1.attn.c_attn");
  auto l = lora::attach_lora(*load("llama-tiny"), options(""), 1);
  ASSERT_EQ(l->entries.size(), 4u);
  EXPECT_EQ(l->entries[1].module, "model.layers.0.self_attn.v_proj");
  EXPECT_FALSE(l->entries[1].fan_in_fan_out);
  // Shapes: A (r, in), B (out, r); v_proj of llama-tiny is 64 -> 2 kv heads · 16.
  EXPECT_EQ(l->entries[1].lora->A.sizes(), (std::vector<int64_t>{4, 64}));
  EXPECT_EQ(l->entries[1].lora->B.sizes(), (std::vector<int64_t>{32, 4}));
  // all-linear is written as the module paths (PEFT 0.21 expands it so).
  auto all = lora::attach_lora(*load("llama-tiny"), options("all-linear"), 1);
  EXPECT_EQ(all->entries.size(), 14u);
  EXPECT_EQ(all->target_modules.size(), 14u);
  EXPECT_EQ(all->target_modules[6], "model.layers.0.mlp.down_proj");
  // A ~ U(−1/√in, 1/√in) (kaiming_uniform_, a = √5), B = 0.
  const auto& A = all->entries[6].lora->A;  // down_proj: in = 128
  EXPECT_LE(A.abs().max().item<double>(), 1.0 / std::sqrt(128.0));
  EXPECT_GT(A.abs().max().item<double>(), 0.9 / std::sqrt(128.0));
  EXPECT_EQ(all->entries[6].lora->B.abs().max().item<double>(), 0.0);
  EXPECT_NEAR(all->entries[6].lora->scaling, 2.0, 0);  // α/r = 8/4
  // The same seed, the same adapters.
  auto again = lora::attach_lora(*load("llama-tiny"), options("all-linear"), 1);
  EXPECT_TRUE(torch::equal(again->entries[6].lora->A, A));
  // Only the adapters train.
  for (const auto& p : load("llama-tiny")->parameters()) EXPECT_TRUE(p.requires_grad());
  auto m = load("llama-tiny");
  auto am = lora::attach_lora(*m, options("q_proj"), 1);
  for (const auto& w : m->weights()) EXPECT_FALSE(w.tensor.requires_grad()) << w.name;
  auto tw = lora::adapter_weights(*m, *am);
  ASSERT_EQ(tw.size(), 4u);
  EXPECT_EQ(tw[0].name, "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight");
  EXPECT_EQ(tw[1].name, "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight");
  EXPECT_TRUE(tw[0].tensor.requires_grad());

  EXPECT_NE(error_of([&] { lora::attach_lora(*load("llama-tiny"), options("c_attn"), 1); })
                .find("no linear layer of this LlamaForCausalLM matches \"c_attn\""),
            std::string::npos);
  EXPECT_NE(error_of([&] { options("all-linear,q_proj").validate(); }).find("all-linear cannot be combined"),
            std::string::npos);
  auto bad = options("q_proj");
  bad.dropout = 1.0;
  EXPECT_NE(error_of([&] { bad.validate(); }).find("--lora-dropout must be in [0, 1)"), std::string::npos);
}

TEST(Lora, DropoutOnlyInTraining) {
  auto [ids, mask] = batch();
  auto model = load("llama-tiny");
  auto o = options("all-linear");
  o.dropout = 0.5;
  auto a = lora::attach_lora(*model, o, 1);
  randomize_b(*a, 2);
  torch::NoGradGuard ng;
  model->eval();
  auto e1 = model->forward_logits(ids, mask), e2 = model->forward_logits(ids, mask);
  EXPECT_TRUE(torch::equal(e1, e2));
  model->train();
  torch::manual_seed(0);
  auto t1 = model->forward_logits(ids, mask);
  EXPECT_FALSE(torch::equal(t1, e1));
  torch::manual_seed(0);
  EXPECT_TRUE(torch::equal(model->forward_logits(ids, mask), t1));  // the global RNG decides, as in PEFT
}

TEST(Lora, PeftFolderRoundTrip) {
  torch::NoGradGuard ng;
  test::TempDir tmp;
  auto [ids, mask] = batch();
  for (const char* name : {"gpt2-tiny", "qwen3-tiny-sharded"}) {
    auto model = load(name);
    auto a = lora::attach_lora(*model, options("all-linear", 2, 5), 1);
    randomize_b(*a, 2);
    const auto dir = tmp / (std::string(name) + "-adapter");
    lora::save_peft_adapter(*model, *a, dir, {"/models/base", test::data("tokenizers/gpt2")});
    auto cfg = lora::read_adapter_config(dir);
    EXPECT_EQ(cfg["peft_type"], "LORA");
    EXPECT_EQ(cfg["task_type"], "CAUSAL_LM");
    EXPECT_EQ(cfg["r"], 2);
    EXPECT_EQ(cfg["lora_alpha"], 5.0);
    EXPECT_EQ(cfg["bias"], "none");
    EXPECT_EQ(cfg["inference_mode"], true);
    EXPECT_EQ(cfg["base_model_name_or_path"], "/models/base");
    EXPECT_EQ(cfg["fan_in_fan_out"], std::string(name) == "gpt2-tiny");
    EXPECT_TRUE(cfg["modules_to_save"].is_null());
    EXPECT_TRUE(fs::exists(fs::path(dir) / "tokenizer.json"));
    auto tensors = io::load_safetensors(dir + "/adapter_model.safetensors");
    EXPECT_EQ(tensors.size(), 2 * a->entries.size());
    const std::string first = std::string(name) == "gpt2-tiny"
                                  ? "base_model.model.transformer.h.0.attn.c_attn.lora_A.weight"
                                  : "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight";
    ASSERT_TRUE(tensors.count(first)) << name;
    for (const auto& [k, t] : tensors) EXPECT_EQ(k.find(".default"), std::string::npos) << k;

    auto fresh = load(name);
    auto b = lora::load_peft_adapter(*fresh, dir);
    EXPECT_EQ(b->entries.size(), a->entries.size());
    EXPECT_EQ(b->target_modules, a->target_modules);
    EXPECT_TRUE(torch::equal(fresh->forward_logits(ids, mask), model->forward_logits(ids, mask))) << name;
    // Saving over the folder keeps files the adapter does not write (metrics.jsonl of a run).
    { std::ofstream(dir + "/metrics.jsonl") << "{}\n"; }
    lora::save_peft_adapter(*fresh, *b, dir, {"/models/base", ""});
    EXPECT_TRUE(fs::exists(dir + "/metrics.jsonl"));
  }
}

TEST(Lora, RewardModelTrainsAndSavesItsScoreHead) {
  torch::NoGradGuard ng;
  test::TempDir tmp;
  auto [ids, mask] = batch();
  // An LM checkpoint loaded as a classifier gets a new score head (the reward command's path).
  auto model = load("llama-tiny", torch::kFloat32, "score");
  auto a = lora::attach_lora(*model, options("q_proj,v_proj"), 1);
  EXPECT_EQ(a->task_type, "SEQ_CLS");
  EXPECT_EQ(a->modules_to_save, (std::vector<std::string>{"classifier", "score"}));
  auto tw = lora::adapter_weights(*model, *a);
  EXPECT_EQ(tw.back().name, "base_model.model.score.weight");
  EXPECT_TRUE(tw.back().tensor.requires_grad());
  randomize_b(*a, 2);
  for (auto& w : model->weights())
    if (w.name == "score.weight") w.tensor.add_(0.01);
  const auto dir = tmp / "rm-adapter";
  lora::save_peft_adapter(*model, *a, dir, {"base", ""});
  auto cfg = lora::read_adapter_config(dir);
  EXPECT_EQ(cfg["task_type"], "SEQ_CLS");
  EXPECT_EQ(cfg["modules_to_save"], nlohmann::json({"classifier", "score"}));
  auto fresh = load("llama-tiny", torch::kFloat32, "score");
  lora::load_peft_adapter(*fresh, dir);
  EXPECT_TRUE(torch::equal(fresh->forward_scores(ids, mask), model->forward_scores(ids, mask)));
  // A SEQ_CLS adapter on a causal LM is an error.
  EXPECT_NE(error_of([&] { lora::load_peft_adapter(*load("llama-tiny"), dir); })
                .find("a SEQ_CLS adapter needs the base loaded as a classifier"),
            std::string::npos);
}

TEST(Lora, LoadErrorsNameFileAndTensor) {
  test::TempDir tmp;
  auto model = load("llama-tiny");
  auto a = lora::attach_lora(*model, options("q_proj"), 1);
  const auto dir = tmp / "a";
  lora::save_peft_adapter(*model, *a, dir, {"base", ""});
  // A config whose r disagrees with the tensors.
  auto cfg = lora::read_adapter_config(dir);
  cfg["r"] = 8;
  { std::ofstream(dir + "/adapter_config.json") << cfg.dump(); }
  auto msg = error_of([&] { lora::load_peft_adapter(*load("llama-tiny"), dir); });
  EXPECT_NE(msg.find("adapter_model.safetensors: tensor \"base_model.model.model.layers.0.self_attn.q_proj.lora_A"
                     ".weight\" has shape [4, 64] but r = 8"),
            std::string::npos)
      << msg;
  cfg["r"] = 4;
  cfg["use_dora"] = true;
  { std::ofstream(dir + "/adapter_config.json") << cfg.dump(); }
  msg = error_of([&] { lora::load_peft_adapter(*load("llama-tiny"), dir); });
  EXPECT_NE(msg.find("adapter_config.json: use_dora = true is not supported"), std::string::npos) << msg;
  // A llama adapter on GPT-2: its tensors match no layer.
  cfg["use_dora"] = false;
  { std::ofstream(dir + "/adapter_config.json") << cfg.dump(); }
  msg = error_of([&] { lora::load_peft_adapter(*load("gpt2-tiny"), dir); });
  EXPECT_NE(msg.find("tensor(s) match no layer of this GPT2LMHeadModel"), std::string::npos) << msg;
  msg = error_of([&] { lora::load_peft_adapter(*load("gpt2-tiny"), tmp / "none"); });
  EXPECT_NE(msg.find("adapter_config.json: cannot open"), std::string::npos) << msg;
}

// ---- the commands, end to end on the gpt2-e2e fixture (real GPT-2 tokenizer) ----
namespace {

const std::string kE2E = test::data("models/gpt2-e2e");

std::vector<nlohmann::json> sft_lines() {
  std::vector<nlohmann::json> v;
  const char* animals[] = {"cat", "dog", "cow", "owl", "fox", "bee", "elk", "yak", "emu", "ant", "bat", "rat"};
  for (int i = 0; i < 14; ++i)
    v.push_back({{"prompt", "Name animal " + std::to_string(i) + ":"}, {"completion", std::string(" the ") + animals[i % 12]}});
  return v;
}

std::vector<nlohmann::json> pair_lines(int n) {
  std::vector<nlohmann::json> v;
  for (int i = 0; i < n; ++i)
    v.push_back({{"prompt", "Say something " + std::to_string(i % 5)}, {"chosen", " good good good"}, {"rejected", " bad"}});
  return v;
}

bool same_tensors(const std::string& a, const std::string& b) {
  auto x = io::load_safetensors(a), y = io::load_safetensors(b);
  if (x.size() != y.size()) return false;
  for (auto& [k, t] : x)
    if (!y.count(k) || !torch::equal(t, y[k])) return false;
  return true;
}

nlohmann::json first_metrics(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return nlohmann::json::parse(line);
}

}  // namespace

TEST(LoraCli, SftSavesAdapterAndResumesBitIdentical) {
  test::TempDir tmp;
  test::write_lines(tmp / "sft.jsonl", sft_lines());
  // Dropout on: the resumed run must also restore the RNG that draws its masks.
  const std::string common = "sft --model " + kE2E + " --data " + tmp / "sft.jsonl" +
                             " --eval-fraction 0 --batch-size 2 --max-steps 10 --lr 1e-2 --warmup-steps 2"
                             " --weight-decay 0.1 --seed 3 --threads 1 --device cpu --lora-r 4 --lora-alpha 8"
                             " --lora-dropout 0.1 --lora-targets all-linear";
  std::string out;
  ASSERT_EQ(test::run_rlhf(common + " --out " + tmp / "a" + " --save-every 5", &out), 0) << out;
  EXPECT_NE(out.find("lora: 8 adapted layers"), std::string::npos) << out;
  EXPECT_NE(out.find("\"lora\":{\"alpha\":8.0,\"dropout\":0.1,\"r\":4"), std::string::npos) << out;
  // The result is a PEFT adapter folder (with the tokenizer), not a model.
  EXPECT_TRUE(fs::exists(tmp / "a/adapter_config.json"));
  EXPECT_TRUE(fs::exists(tmp / "a/adapter_model.safetensors"));
  EXPECT_TRUE(fs::exists(tmp / "a/tokenizer.json"));
  EXPECT_FALSE(fs::exists(tmp / "a/model.safetensors"));
  EXPECT_EQ(lora::read_adapter_config(tmp / "a")["base_model_name_or_path"], kE2E);
  const auto ck = tmp / "a/checkpoints/step-000005";
  ASSERT_TRUE(fs::exists(ck + "/optimizer.safetensors"));
  ASSERT_TRUE(fs::exists(ck + "/adapter_model.safetensors"));
  // The optimizer state is the adapters' only (16 tensors: A and B of 8 layers), under the PEFT names.
  auto opt = io::load_safetensors(ck + "/optimizer.safetensors");
  EXPECT_EQ(opt.size(), 2u * 16 + 1);
  EXPECT_TRUE(opt.count("exp_avg.base_model.model.transformer.h.0.attn.c_attn.lora_A.weight"));
  ASSERT_EQ(test::run_rlhf(common + " --out " + tmp / "b" + " --resume " + ck, &out), 0) << out;
  EXPECT_NE(out.find("resumed from"), std::string::npos) << out;
  EXPECT_TRUE(same_tensors(tmp / "a/adapter_model.safetensors", tmp / "b/adapter_model.safetensors"));
  EXPECT_FALSE(same_tensors(tmp / "a/adapter_model.safetensors", ck + "/adapter_model.safetensors"));
  // Resuming without the LoRA flags, or with another rank, is an error naming the checkpoint.
  EXPECT_NE(test::run_rlhf("sft --model " + kE2E + " --data " + tmp / "sft.jsonl" + " --out " + tmp / "c" +
                               " --resume " + ck + " --device cpu",
                           &out),
            0);
  EXPECT_NE(out.find("holds a LoRA adapter: pass the same --lora-r"), std::string::npos) << out;
  EXPECT_NE(test::run_rlhf("sft --model " + kE2E + " --data " + tmp / "sft.jsonl" + " --out " + tmp / "c" +
                               " --resume " + ck + " --device cpu --lora-r 8 --lora-alpha 8",
                           &out),
            0);
  EXPECT_NE(out.find("its adapter has r = 4, alpha = 8"), std::string::npos) << out;

  // rlhf merge: a plain folder whose logits are the adapter's.
  ASSERT_EQ(test::run_rlhf("merge --model " + kE2E + " --adapter " + tmp / "a" + " --out " + tmp / "merged" +
                               " --device cpu",
                           &out),
            0)
      << out;
  EXPECT_TRUE(fs::exists(tmp / "merged/tokenizer.json"));
  torch::NoGradGuard ng;
  auto [ids, mask] = batch();
  auto base = load_model(kE2E);
  lora::load_peft_adapter(*base, tmp / "a");
  auto merged = load_model(tmp / "merged");
  EXPECT_FALSE(merged->has_linear_deltas());
  EXPECT_LT(rel_error(merged->forward_logits(ids, mask), base->forward_logits(ids, mask)), 1e-6);
  lora::AdaptersOff off(*base);
  EXPECT_GT(rel_error(merged->forward_logits(ids, mask), base->forward_logits(ids, mask)), 1e-4);
}

TEST(LoraCli, DpoReferenceIsThePolicyWithAdaptersOff) {
  test::TempDir tmp;
  test::write_lines(tmp / "pairs.jsonl", pair_lines(16));
  std::string out;
  ASSERT_EQ(test::run_rlhf("dpo --model " + kE2E + " --data " + tmp / "pairs.jsonl" + " --out " + tmp / "dpo" +
                               " --batch-size 4 --max-steps 6 --lr 1e-2 --beta 0.1 --eval-fraction 0.25"
                               " --device cpu --threads 1 --lora-r 4 --lora-targets c_attn,c_fc",
                           &out),
            0)
      << out;
  // Step 1's loss is measured before any update: B = 0, so the policy is the reference and h = 0, L = log 2
  // (up to the rounding of other padding lengths: the reference pass batches the pairs in another order).
  auto m = first_metrics(tmp / "dpo/metrics.jsonl");
  EXPECT_NEAR(m["loss"].get<double>(), std::log(2.0), 1e-6) << m;
  EXPECT_NEAR(m["rewards/margins"].get<double>(), 0.0, 1e-6) << m;
  // ... and training moves the margin.
  std::ifstream in(tmp / "dpo/metrics.jsonl");
  nlohmann::json last;
  for (std::string l; std::getline(in, l);) last = nlohmann::json::parse(l);
  EXPECT_GT(last["rewards/margins"].get<double>(), 0.0) << last;
  EXPECT_TRUE(fs::exists(tmp / "dpo/adapter_model.safetensors"));
  auto cfg = lora::read_adapter_config(tmp / "dpo");
  EXPECT_EQ(cfg["target_modules"], nlohmann::json({"c_attn", "c_fc"}));
}

TEST(LoraCli, RewardAdapterCarriesTheScoreHead) {
  test::TempDir tmp;
  test::write_lines(tmp / "pairs.jsonl", pair_lines(16));
  std::string out;
  ASSERT_EQ(test::run_rlhf("reward --model " + kE2E + " --data " + tmp / "pairs.jsonl" + " --out " + tmp / "rm" +
                               " --batch-size 4 --max-steps 4 --lr 1e-2 --eval-fraction 0 --device cpu --threads 1"
                               " --lora-r 2",
                           &out),
            0)
      << out;
  auto cfg = lora::read_adapter_config(tmp / "rm");
  EXPECT_EQ(cfg["task_type"], "SEQ_CLS");
  auto t = io::load_safetensors(tmp / "rm/adapter_model.safetensors");
  ASSERT_TRUE(t.count("base_model.model.score.weight"));
  EXPECT_EQ(t["base_model.model.score.weight"].sizes(), (std::vector<int64_t>{1, 32}));
  // The base (an LM) loads as a classifier with the adapter's head; merged, it is a GPT2ForSequenceClassification.
  ASSERT_EQ(test::run_rlhf("merge --model " + kE2E + " --adapter " + tmp / "rm" + " --out " + tmp / "rm-merged", &out),
            0)
      << out;
  auto merged = load_model(tmp / "rm-merged");
  EXPECT_EQ(merged->config().architecture, "GPT2ForSequenceClassification");
  EXPECT_NE(test::run_rlhf("reward --model " + kE2E + " --data " + tmp / "pairs.jsonl" + " --out " + tmp / "x" +
                               " --lora-r 2 --normalize mean --device cpu",
                           &out),
            0);
  EXPECT_NE(out.find("--normalize mean with --lora-r"), std::string::npos) << out;
}

TEST(LoraCli, RlReferenceIsThePolicyWithAdaptersOff) {
  test::TempDir tmp;
  {
    std::ofstream p(tmp / "prompts.jsonl");
    for (int i = 0; i < 8; ++i) p << nlohmann::json{{"prompt", "The animal " + std::to_string(i) + " says"}}.dump() << "\n";
  }
  for (const std::string algo : {"grpo", "ppo"}) {
    std::string out;
    const std::string dir = tmp / algo;
    ASSERT_EQ(test::run_rlhf("ppo --algo " + algo + " --policy " + kE2E + " --reward rule:length --prompts " +
                                 tmp / "prompts.jsonl" + " --out " + dir +
                                 " --iterations 3 --batch-size 4 --group-size 2 --max-new-tokens 6 --ppo-epochs 1"
                                 " --lr 1e-2 --critic-lr 1e-3 --critic-init policy --save-every 0 --samples-every 0"
                                 " --temperature 1.0 --device cpu --threads 1 --lora-r 4 --lora-targets all-linear",
                             &out),
              0)
        << out;
    std::ifstream in(dir + "/metrics.jsonl");
    std::vector<nlohmann::json> rows;
    for (std::string l; std::getline(in, l);) {
      auto j = nlohmann::json::parse(l);
      if (j.contains("kl")) rows.push_back(j);
    }
    ASSERT_EQ(rows.size(), 3u) << algo;
    // Iteration 1 scores before any update: B = 0, so the policy is its reference, to the bit (KL exactly 0).
    EXPECT_EQ(rows[0]["kl"].get<double>(), 0.0) << algo << " " << rows[0];
    EXPECT_NE(rows[2]["kl"].get<double>(), 0.0) << algo << " " << rows[2];
    EXPECT_TRUE(fs::exists(dir + "/final/adapter_model.safetensors")) << algo;
    EXPECT_TRUE(fs::exists(dir + "/checkpoint/adapter_model.safetensors")) << algo;
    EXPECT_FALSE(fs::exists(dir + "/final/model.safetensors")) << algo;
  }
}

namespace {

std::vector<nlohmann::json> train_rows(const std::string& path) {
  std::ifstream in(path);
  std::vector<nlohmann::json> rows;
  for (std::string l; std::getline(in, l);) {
    auto j = nlohmann::json::parse(l);
    if (j.value("split", "train") == "train") rows.push_back(j);
  }
  return rows;
}

}  // namespace

// PPO with LoRA: the critic is an adapter (and its own head) on the reward model's body, so the run holds one copy
// of the policy and one of the reward model. Checked against a full fine-tune (iteration 1 is the same run: B = 0
// on both adapters, the critic's head a copy of the reward model's), across --resume (bit for bit) and with
// gradient checkpointing (the same run to float rounding).
TEST(LoraCli, PpoCriticIsAnAdapterOnTheRewardModel) {
  test::TempDir tmp;
  const std::string rm = tmp / "rm";
  {
    test::save_reward_model(kE2E, rm);
    std::ofstream p(tmp / "prompts.jsonl");
    for (int i = 0; i < 8; ++i) p << nlohmann::json{{"prompt", "The animal " + std::to_string(i) + " says"}}.dump() << "\n";
  }
  const std::string base = "ppo --policy " + kE2E + " --reward " + rm + " --prompts " + tmp / "prompts.jsonl" +
                           " --batch-size 4 --max-new-tokens 6 --ppo-epochs 1 --num-minibatches 1 --lr 1e-2"
                           " --critic-lr 1e-2 --lr-schedule constant --samples-every 0 --temperature 1.0"
                           " --device cpu --threads 1";
  const std::string lora_flags = " --lora-r 4 --lora-targets all-linear";
  std::string out;
  const std::string a = tmp / "a", full = tmp / "full", b = tmp / "b", gc = tmp / "gc";
  ASSERT_EQ(test::run_rlhf(base + lora_flags + " --out " + a + " --iterations 3 --save-every 1", &out), 0) << out;
  EXPECT_NE(out.find("peak RSS"), std::string::npos) << out;
  // The critic's checkpoint is a SEQ_CLS adapter with its head, not a model.
  EXPECT_TRUE(fs::exists(a + "/checkpoint/critic/adapter_model.safetensors"));
  EXPECT_FALSE(fs::exists(a + "/checkpoint/critic/model.safetensors"));
  EXPECT_EQ(lora::read_adapter_config(a + "/checkpoint/critic")["task_type"], "SEQ_CLS");
  auto critic = io::load_safetensors(a + "/checkpoint/critic/adapter_model.safetensors");
  ASSERT_TRUE(critic.count("base_model.model.score.weight"));
  // ... trained: its head moved away from the reward model's.
  auto rm_head = io::load_safetensors(rm + "/model.safetensors").at("score.weight");
  EXPECT_GT((critic["base_model.model.score.weight"] - rm_head).abs().max().item<double>(), 1e-6);

  ASSERT_EQ(test::run_rlhf(base + " --out " + full + " --iterations 1 --save-every 0", &out), 0) << out;
  auto ra = train_rows(a + "/metrics.jsonl"), rf = train_rows(full + "/metrics.jsonl");
  ASSERT_EQ(ra.size(), 3u);
  ASSERT_EQ(rf.size(), 1u);
  EXPECT_TRUE(ra[0].contains("peak_rss_mb")) << ra[0];
  // Iteration 1: the same rollouts, the reward model's scores and the critic's values as the full run's.
  for (const char* k : {"score", "kl", "policy_loss", "value_loss", "response_length"})
    EXPECT_NEAR(ra[0][k].get<double>(), rf[0][k].get<double>(), 1e-6 + 1e-6 * std::abs(rf[0][k].get<double>()))
        << k << "\nlora " << ra[0] << "\nfull " << rf[0];

  // Resume: 2 iterations, then --resume to 3: the same adapters, bit for bit, as the uninterrupted run.
  ASSERT_EQ(test::run_rlhf(base + lora_flags + " --out " + b + " --iterations 2 --save-every 1", &out), 0) << out;
  ASSERT_EQ(test::run_rlhf(base + lora_flags + " --out " + b + " --iterations 3 --save-every 1 --resume", &out), 0)
      << out;
  for (const std::string f : {"/final/adapter_model.safetensors", "/checkpoint/critic/adapter_model.safetensors"}) {
    auto ta = io::load_safetensors(a + f), tb = io::load_safetensors(b + f);
    ASSERT_EQ(ta.size(), tb.size()) << f;
    for (const auto& [name, t] : ta) EXPECT_TRUE(torch::equal(t, tb.at(name))) << f << " " << name;
  }

  // Gradient checkpointing: the same run up to float rounding.
  ASSERT_EQ(test::run_rlhf(base + lora_flags + " --gradient-checkpointing --out " + gc + " --iterations 3", &out), 0)
      << out;
  auto rg = train_rows(gc + "/metrics.jsonl");
  ASSERT_EQ(rg.size(), 3u);
  for (size_t i = 0; i < 3; ++i)
    for (const char* k : {"score", "kl", "policy_loss", "value_loss"})
      EXPECT_NEAR(rg[i][k].get<double>(), ra[i][k].get<double>(), 1e-4 + 1e-4 * std::abs(ra[i][k].get<double>()))
          << "iteration " << i + 1 << " " << k;
}
