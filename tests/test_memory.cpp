// The memory options (train/memory_options.h) against the plain computation they replace.
//
// Gradient checkpointing (model/grad_checkpoint.h) against the plain backward of the same model, the outside
// reference being libtorch's own autograd through every activation:
//   * full fine-tuning, all four families: the same loss, and every parameter's gradient to 1e-6 relative;
//   * LoRA on a frozen base (the blocks' input then needs no gradient, which a naive checkpoint drops): the
//     adapters' gradients to 1e-6, with dropout on (the recomputation draws the same masks) and off;
//   * no grad (evaluation, generation with a KV cache): nothing is checkpointed, the logits are the plain ones.
//
// Frozen weights stored in bf16 (TransformerLM::store_frozen_weights) against the fp32 model whose weights were
// rounded to bf16 by hand: the same logits and scores bit for bit, in half the bytes.
#include <gtest/gtest.h>

#include "lora/adapters.h"
#include "model/model.h"
#include "test_util.h"

using namespace rlhf;

namespace {

const char* kFamilies[] = {"gpt2-tiny", "llama-tiny", "qwen2-tiny", "qwen3-tiny-sharded"};

std::shared_ptr<TransformerLM> load(const std::string& name) {
  return load_model(test::data("models/" + name));
}

// Two rows, the second right-padded; a loss that weighs every logit differently (so every gradient is non-zero).
torch::Tensor loss_of(TransformerLM& model) {
  auto gen = at::detail::createCPUGenerator(7);
  auto ids = torch::randint(3, 500, {2, 12}, gen, torch::kInt64);
  auto mask = torch::ones_like(ids);
  mask.index_put_({1, torch::indexing::Slice(8)}, 0);
  auto logits = model.forward_logits(ids, mask);  // (2, 12, V)
  auto w = torch::randn(logits.sizes(), gen);
  return (torch::log_softmax(logits, -1) * w).sum() / 24.0;
}

struct Grads {
  double loss = 0;
  std::vector<torch::Tensor> grads;
};

Grads grads_of(TransformerLM& model, const std::vector<torch::Tensor>& params, bool checkpointing, uint64_t seed = 0) {
  model.set_gradient_checkpointing(checkpointing);
  for (auto p : params) p.mutable_grad() = torch::Tensor();
  torch::manual_seed(seed);  // LoRA dropout draws from the default generator
  auto loss = loss_of(model);
  loss.backward();
  Grads g;
  g.loss = loss.item<double>();
  for (const auto& p : params) g.grads.push_back(p.grad().defined() ? p.grad().clone() : torch::Tensor());
  return g;
}

void expect_same(const Grads& plain, const Grads& ck, const std::string& what) {
  EXPECT_NEAR(ck.loss, plain.loss, 1e-6 * std::abs(plain.loss)) << what;
  ASSERT_EQ(plain.grads.size(), ck.grads.size());
  for (size_t i = 0; i < plain.grads.size(); ++i) {
    ASSERT_TRUE(plain.grads[i].defined()) << what << " parameter " << i << ": no gradient in the plain backward";
    ASSERT_TRUE(ck.grads[i].defined()) << what << " parameter " << i << ": no gradient with checkpointing";
    const double scale = plain.grads[i].abs().max().item<double>();
    const double err = (ck.grads[i] - plain.grads[i]).abs().max().item<double>();
    EXPECT_LE(err, 1e-6 * scale + 1e-12) << what << " parameter " << i << " of " << plain.grads.size();
  }
}

}  // namespace

TEST(GradCheckpoint, FullFineTuneGradientsEqualThePlainBackward) {
  for (const char* name : kFamilies) {
    auto model = load(name);
    std::vector<torch::Tensor> params;
    for (auto& p : model->parameters()) {
      p.set_requires_grad(true);
      params.push_back(p);
    }
    auto plain = grads_of(*model, params, false);
    auto ck = grads_of(*model, params, true);
    expect_same(plain, ck, name);
  }
}

TEST(GradCheckpoint, LoraOnAFrozenBaseWithDropout) {
  for (const char* name : kFamilies)
    for (double dropout : {0.0, 0.2}) {
      auto model = load(name);
      lora::LoraOptions o;
      o.r = 4;
      o.alpha = 8;
      o.targets = "all-linear";
      o.dropout = dropout;
      auto a = lora::attach_lora(*model, o, 1);
      {
        torch::NoGradGuard ng;  // B = 0 gives A no gradient: give B values as training would
        auto gen = at::detail::createCPUGenerator(3);
        for (const auto& e : a->entries) e.lora->B.normal_(0.0, 0.05, gen);
      }
      model->train();  // dropout on the adapters' input
      std::vector<torch::Tensor> params;
      for (const auto& w : lora::adapter_weights(*model, *a)) params.push_back(w.tensor);
      auto plain = grads_of(*model, params, false, 11);
      auto ck = grads_of(*model, params, true, 11);
      expect_same(plain, ck, std::string(name) + " dropout " + std::to_string(dropout));
      if (dropout > 0) {  // the masks matter: another seed gives other gradients
        auto other = grads_of(*model, params, false, 12);
        EXPECT_GT((other.grads[0] - plain.grads[0]).abs().max().item<double>(), 1e-9) << name;
      }
    }
}

TEST(GradCheckpoint, NoGradAndKvCacheRunPlain) {
  auto model = load("llama-tiny");
  for (auto& p : model->parameters()) p.set_requires_grad(true);
  auto gen = at::detail::createCPUGenerator(5);
  auto ids = torch::randint(3, 500, {2, 8}, gen, torch::kInt64);
  auto mask = torch::ones_like(ids);
  torch::Tensor plain, ck, cached;
  {
    torch::NoGradGuard ng;
    plain = model->forward_logits(ids, mask);
    model->set_gradient_checkpointing(true);
    ck = model->forward_logits(ids, mask);
    auto cache = model->make_cache(8);
    auto pos = torch::arange(8, torch::kInt64).unsqueeze(0).expand({2, 8});
    cached = model->lm_logits(model->body(ids, mask, pos, &cache));
  }
  EXPECT_TRUE(torch::equal(plain, ck));
  EXPECT_LT((cached - plain).abs().max().item<double>(), 1e-5);
  // With grad on, the checkpointed forward's logits are the plain forward's bit for bit (same kernels, same inputs).
  model->set_gradient_checkpointing(false);
  auto with_grad = model->forward_logits(ids, mask);
  model->set_gradient_checkpointing(true);
  auto with_grad_ck = model->forward_logits(ids, mask);
  EXPECT_TRUE(with_grad_ck.requires_grad());
  EXPECT_TRUE(torch::equal(with_grad_ck.detach(), with_grad.detach()));
}

namespace {
int64_t parameter_bytes(TransformerLM& m) {
  int64_t n = 0;
  for (const auto& p : m.parameters()) n += p.numel() * static_cast<int64_t>(p.element_size());
  return n;
}
}  // namespace

TEST(FrozenDtype, Bf16StorageComputesTheRoundedModelExactly) {
  auto gen = at::detail::createCPUGenerator(9);
  auto ids = torch::randint(3, 500, {2, 12}, gen, torch::kInt64);
  auto mask = torch::ones_like(ids);
  mask.index_put_({1, torch::indexing::Slice(8)}, 0);
  std::vector<std::string> names(std::begin(kFamilies), std::end(kFamilies));
  names.push_back("gpt2-tiny-rm");
  names.push_back("llama-tiny-rm");
  for (const auto& name : names) {
    torch::NoGradGuard ng;
    auto stored = load(name), rounded = load(name);
    for (auto& p : stored->parameters()) p.set_requires_grad(false);
    const int64_t fp32_bytes = parameter_bytes(*stored);
    stored->store_frozen_weights(torch::kBFloat16);
    EXPECT_EQ(parameter_bytes(*stored) * 2, fp32_bytes) << name;
    for (auto& p : rounded->parameters()) p.copy_(p.to(torch::kBFloat16).to(torch::kFloat32));
    if (stored->has_lm_head()) {
      auto a = stored->forward_logits(ids, mask), b = rounded->forward_logits(ids, mask);
      EXPECT_EQ(a.scalar_type(), torch::kFloat32) << name;
      EXPECT_TRUE(torch::equal(a, b)) << name << ": max diff " << (a - b).abs().max().item<double>();
    } else {
      auto a = stored->forward_scores(ids, mask), b = rounded->forward_scores(ids, mask);
      EXPECT_TRUE(torch::equal(a, b)) << name << ": max diff " << (a - b).abs().max().item<double>();
    }
  }
}

TEST(FrozenDtype, ComputeDtypeWeightsForGenerationThenBackToBf16) {
  torch::NoGradGuard ng;
  auto model = load("qwen2-tiny");
  for (auto& p : model->parameters()) p.set_requires_grad(false);
  model->store_frozen_weights(torch::kBFloat16);
  auto gen = at::detail::createCPUGenerator(5);
  auto ids = torch::randint(3, 500, {2, 8}, gen, torch::kInt64);
  auto mask = torch::ones_like(ids);
  auto stored = model->forward_logits(ids, mask);
  const auto before = model->parameters()[0].data_ptr();
  {
    ComputeDtypeWeights fp32(*model);
    for (const auto& p : model->parameters()) EXPECT_EQ(p.scalar_type(), torch::kFloat32);
    EXPECT_TRUE(torch::equal(model->forward_logits(ids, mask), stored));
  }
  for (const auto& p : model->parameters()) EXPECT_EQ(p.scalar_type(), torch::kBFloat16);
  EXPECT_EQ(model->parameters()[0].data_ptr(), before);  // the same stored tensor, not a re-rounded copy
  EXPECT_TRUE(torch::equal(model->forward_logits(ids, mask), stored));
}

TEST(FrozenDtype, TrainedTensorsStayFp32UnderLora) {
  auto model = load("llama-tiny");
  lora::LoraOptions o;
  o.r = 4;
  o.targets = "all-linear";
  auto a = lora::attach_lora(*model, o, 1);
  model->store_frozen_weights(torch::kBFloat16);
  for (const auto& p : model->parameters()) EXPECT_EQ(p.scalar_type(), torch::kBFloat16);
  for (const auto& w : lora::adapter_weights(*model, *a)) EXPECT_EQ(w.tensor.scalar_type(), torch::kFloat32) << w.name;
  // Training still works: gradients reach the adapters, in fp32, with and without checkpointing.
  {
    torch::NoGradGuard ng;
    auto gen = at::detail::createCPUGenerator(3);
    for (const auto& e : a->entries) e.lora->B.normal_(0.0, 0.05, gen);
  }
  std::vector<torch::Tensor> params;
  for (const auto& w : lora::adapter_weights(*model, *a)) params.push_back(w.tensor);
  auto plain = grads_of(*model, params, false);
  auto ck = grads_of(*model, params, true);
  expect_same(plain, ck, "llama-tiny bf16 base");
  EXPECT_EQ(plain.grads[0].scalar_type(), torch::kFloat32);
}
