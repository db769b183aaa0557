// `rlhf bench` workloads; see bench.h for the math and ../shared/bench/torch_ref.py for the peer.
#include "rlhf/bench.h"

#include "common/memory.h"

#include <dlfcn.h>
#include <sys/resource.h>
#include <torch/torch.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <chrono>
#include <cstdlib>

#include "common/error.h"
#include "model/config.h"
#include "model/generate.h"
#include "kernels/rows_gemm.h"
#include "model/decode_kernels.h"
#include "model/model.h"
#include "lora/adapters.h"
#include "rlhf/dpo.h"
#include "rlhf/ppo.h"
#include "train/autocast.h"
#include "train/logprobs.h"
#include "train/loop.h"
#include "train/optim.h"

using nlohmann::json;

namespace rlhf::bench {

namespace {

constexpr int64_t kPad = 0, kEos = 1;  // as the peer: data tokens drawn from [2, vocab), so prompts carry no pads

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

double round4(double x) { return std::round(x * 1e4) / 1e4; }
double round1(double x) { return std::round(x * 10) / 10; }

std::shared_ptr<TransformerLM> make_model(const BenchConfig& c, bool classifier, uint64_t seed,
                                          torch::Device device) {
  auto model = create_model(parse_model_config(model_config_json(c.model, classifier), "bench:" + c.model), seed);
  model->to(device);
  model->eval();  // no dropout in these models (TRL disables it)
  return model;
}

torch::Tensor rand_tokens(int64_t vocab, int64_t B, int64_t T, at::Generator& gen, torch::Device device) {
  return torch::randint(2, vocab, {B, T}, gen, torch::kInt64).to(device);  // never PAD or EOS
}

// What one timed unit returns.
struct StepResult {
  int64_t tokens = 0;
  double loss = std::nan("");
  double rollout_s = 0, scoring_s = 0, train_s = 0;
  int64_t checksum = 0;  // generate: Σ ids·(position + 1) over the output, to check that tokens are unchanged
};

// ---- sft / rm: one optimizer step, as HF Trainer's training_step (backward, clip_grad_norm_, AdamW, zero_grad)

struct TrainState {
  std::shared_ptr<TransformerLM> model;
  std::unique_ptr<train::AdamW> opt;
};

TrainState make_train_state(const BenchConfig& c, bool classifier, torch::Device device) {
  TrainState s;
  s.model = make_model(c, classifier, c.seed, device);
  train::AdamWConfig acfg;  // HF Trainer default: torch AdamW, betas (0.9, 0.999), eps 1e-8, weight_decay 0
  acfg.eps = 1e-8;
  acfg.weight_decay = 0.0;
  s.opt = std::make_unique<train::AdamW>(train::default_param_groups(train::named_params(*s.model), acfg), acfg);
  return s;
}

double optimizer_step(TrainState& s, const torch::Tensor& loss, double max_grad_norm, double lr) {
  loss.backward();
  if (max_grad_norm > 0) train::clip_grad_norm(s.opt->params(), max_grad_norm);
  s.opt->step(lr);
  s.opt->zero_grad();
  return loss.item<double>();  // a host sync: the step is complete when timed
}

StepResult sft_step(const BenchConfig& c, TrainState& s, at::Generator& gen, torch::Device device) {
  const int64_t B = c.batch, T = c.seq_len;
  auto ids = rand_tokens(s.model->config().vocab_size, B, T, gen, device);
  auto mask = torch::ones_like(ids);
  torch::Tensor loss;
  {
    train::AutocastScope ac(c.dtype == "bf16", device.is_cuda());
    auto logits = s.model->forward_logits(ids, mask);       // (B, T, V)
    auto logp = train::causal_logprobs(logits, ids);        // (B, T−1) float32
    loss = -logp.mean();                                    // CE summed / B·(T−1) labels
    if (c.trl_metrics) {
      torch::NoGradGuard ng;
      auto lg = logits.narrow(1, 0, T - 1);
      (void)train::token_entropy(lg).mean();
      (void)(lg.argmax(-1) == ids.narrow(1, 1, T - 1)).sum();
    }
  }
  StepResult r;
  r.tokens = B * T;
  r.loss = optimizer_step(s, loss, c.max_grad_norm, 1e-5);
  return r;
}

StepResult rm_step(const BenchConfig& c, TrainState& s, at::Generator& gen, torch::Device device) {
  const int64_t B = c.batch, T = c.seq_len, V = s.model->config().vocab_size;
  auto chosen = rand_tokens(V, B, T, gen, device), rejected = rand_tokens(V, B, T, gen, device);
  auto ids = torch::cat({chosen, rejected}, 0);  // chosen and rejected in one batch (TRL RewardTrainer)
  auto mask = ids.ne(kPad).to(torch::kInt64);
  torch::Tensor loss;
  {
    train::AutocastScope ac(c.dtype == "bf16", device.is_cuda());
    auto scores = s.model->forward_scores(ids, mask).squeeze(-1).to(torch::kFloat32);  // (2B,) at the last token
    auto rc = scores.narrow(0, 0, B), rr = scores.narrow(0, B, B);
    loss = -torch::log_sigmoid(rc - rr).mean();
  }
  StepResult r;
  r.tokens = 2 * B * T;
  r.loss = optimizer_step(s, loss, c.max_grad_norm, 1e-5);
  return r;
}

// ---- dpo: one step of train_dpo's loss (policy on chosen ++ rejected in one batch) with the reference's
// log-probs computed for the same batch, as TRL's DPOTrainer does by default (precompute_ref_log_probs=False; over
// one epoch that is also what `rlhf dpo`'s one pass before training costs per step)

struct DpoState {
  TrainState policy;
  std::shared_ptr<TransformerLM> ref;
};

StepResult dpo_step(const BenchConfig& c, DpoState& s, at::Generator& gen, torch::Device device) {
  const int64_t B = c.batch, P = c.prompt_len, G = c.gen_len, V = s.ref->config().vocab_size;
  auto prompts = rand_tokens(V, B, P, gen, torch::kCPU), chosen = rand_tokens(V, B, G, gen, torch::kCPU),
       rejected = rand_tokens(V, B, G, gen, torch::kCPU);
  auto seq = [&](const torch::Tensor& resp, int64_t b) {
    train::TokenSeq t;
    auto p = prompts[b].contiguous(), r = resp[b].contiguous();
    t.ids.assign(p.data_ptr<int64_t>(), p.data_ptr<int64_t>() + P);
    t.ids.insert(t.ids.end(), r.data_ptr<int64_t>(), r.data_ptr<int64_t>() + G);
    t.loss_mask.assign(P, 0);
    t.loss_mask.resize(P + G, 1);
    return t;
  };
  std::vector<dpo::DpoPair> pairs(B);
  for (int64_t b = 0; b < B; ++b) pairs[b] = {seq(chosen, b), seq(rejected, b)};
  dpo::compute_reference_logprobs(*s.ref, pairs, B, kPad, device);
  std::vector<const train::TokenSeq*> seqs;
  for (auto& p : pairs) seqs.push_back(&p.chosen);
  for (auto& p : pairs) seqs.push_back(&p.rejected);
  std::vector<double> rc, rr;
  for (auto& p : pairs) rc.push_back(p.ref_chosen), rr.push_back(p.ref_rejected);
  auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  auto ref_c = torch::tensor(rc, f64).to(device, torch::kFloat32), ref_r = torch::tensor(rr, f64).to(device, torch::kFloat32);
  torch::Tensor loss;
  {
    train::AutocastScope ac(c.dtype == "bf16", device.is_cuda());
    auto lp = dpo::response_logprobs(*s.policy.model, seqs, kPad, device);  // (2B,)
    loss = dpo::dpo_loss(lp.slice(0, 0, B), lp.slice(0, B, 2 * B), ref_c, ref_r, 0.1, "sigmoid");
  }
  StepResult r;
  r.tokens = 2 * B * (P + G);
  r.loss = optimizer_step(s.policy, loss, c.max_grad_norm, 1e-6);
  return r;
}

// ---- generate: HF generate(do_sample, temperature, top_k=0, top_p=1), stops when every row has its EOS

StepResult generate_step(const BenchConfig& c, TransformerLM& model, at::Generator& gen, torch::Device device) {
  auto ids = rand_tokens(model.config().vocab_size, c.batch, c.prompt_len, gen, device);
  auto mask = torch::ones_like(ids);
  SamplingOptions so;
  so.temperature = static_cast<float>(c.temperature + 1e-7);  // the peer adds 1e-7 too
  so.max_new_tokens = static_cast<int>(c.gen_len);
  so.stop_at_eos = true;
  auto out = generate(model, ids, mask, so, {kEos}, kPad, gen);
  StepResult r;
  r.tokens = c.batch * (out.output_ids.size(1) - c.prompt_len);
  auto pos = torch::arange(1, out.output_ids.size(1) + 1, out.output_ids.options());
  r.checksum = (out.output_ids * pos).sum().item<int64_t>();  // also the host sync (CUDA)
  return r;
}

// ---- ppo: rl_train with the peer's settings (TRL PPOConfig defaults + missing_eos_penalty 1.0)

PPOConfig ppo_config(const BenchConfig& c, int64_t iterations) {
  PPOConfig p;
  p.algo = "ppo";
  p.iterations = iterations;
  p.batch_size = c.batch;
  p.temperature = c.temperature + 1e-7;
  p.max_new_tokens = c.gen_len;
  p.kl_estimator = "k1";
  p.kl_coef = 0.05;
  p.missing_eos_penalty = 1.0;
  p.ppo_epochs = c.ppo_epochs;
  p.num_minibatches = c.mini_batches;
  p.lr = 3e-6;         // one AdamW over policy + value at 3e-6 in TRL
  p.critic_lr = 3e-6;
  p.lr_schedule = "constant";
  p.adam_eps = 1e-8;   // torch default (TRL)
  p.max_grad_norm = 0; // TRL's PPO does not clip
  p.clip_eps = 0.2;
  p.vf_clip = 0.2;
  p.vf_coef = 0.1;
  p.gamma = 1.0;
  p.lam = 0.95;
  p.whiten_advantages = true;
  p.whiten_rewards = false;
  p.seed = c.seed;
  p.save_every = 0;
  p.samples_every = 0;
  p.log_every = 1000000;  // quiet
  p.device = c.device;
  return p;
}

// ---- grpo: rl_train's GRPO with TRL GRPOConfig's defaults where they apply (one update per rollout, ε 0.2,
// token-level mean "dapo" loss, group-normalised scores) and β = 0.04, so that both sides run a reference model

PPOConfig grpo_config(const BenchConfig& c, int64_t iterations) {
  PPOConfig p = ppo_config(c, iterations);
  p.algo = "grpo";
  p.group_size = c.group;
  p.batch_size = c.batch / c.group;  // prompts; B = batch rows in all
  p.kl_estimator = "k3";
  p.kl_coef = 0.04;
  p.missing_eos_penalty = 0.0;
  p.ppo_epochs = 1;                  // TRL num_iterations = 1
  p.num_minibatches = 1;
  p.lr = 1e-6;
  p.max_grad_norm = c.max_grad_norm;  // HF Trainer clips at 1.0
  p.whiten_advantages = false;
  return p;
}

}  // namespace

void BenchConfig::validate() const {
  RLHF_CHECK(task == "sft" || task == "rm" || task == "dpo" || task == "generate" || task == "ppo" || task == "grpo",
             "--task must be sft, rm, dpo, generate, ppo or grpo, not \"", task, "\"");
  RLHF_CHECK(task != "grpo" || (group > 1 && batch % group == 0),
             "--task grpo: --batch (completions) must be a multiple of --group (> 1)");
  (void)model_config_json(model, false);
  RLHF_CHECK(batch > 0 && prompt_len > 0 && gen_len > 0 && seq_len > 1 && steps > 0,
             "--batch, --prompt-len, --gen-len, --steps must be > 0 and --seq-len > 1");
  RLHF_CHECK(temperature > 0, "--temperature must be > 0");
  RLHF_CHECK(mini_batches > 0 && batch % mini_batches == 0, "batch must be a multiple of --mini-batches");
  RLHF_CHECK(ppo_epochs > 0, "--ppo-epochs must be > 0");
  RLHF_CHECK(warmup >= 0 && (warmup >= 1 || task == "ppo" || task == "grpo"),
             "--warmup must be >= 1 (0 only for --task ppo and grpo)");
  RLHF_CHECK(sft_loss == "nll", "--sft-loss: only nll is implemented here (the peer also has chunked_nll)");
  RLHF_CHECK(max_grad_norm >= 0, "--max-grad-norm must be >= 0");
  RLHF_CHECK(device == "cpu" || device.rfind("cuda", 0) == 0, "--device must be cpu or cuda, not \"", device, "\"");
  RLHF_CHECK(dtype == "fp32" || dtype == "bf16", "--dtype must be fp32 or bf16, not \"", dtype, "\"");
  RLHF_CHECK(dtype == "fp32" || (task != "ppo" && task != "grpo"), "--task ppo/grpo run in fp32 only");
  lora.validate();
  RLHF_CHECK(!lora.enabled() || task == "ppo" || task == "grpo", "--lora-r: only --task ppo and grpo take LoRA here");
  memory.validate();
  RLHF_CHECK((!memory.gradient_checkpointing && !memory.frozen_bf16()) || task == "ppo" || task == "grpo",
             "--gradient-checkpointing and --frozen-dtype: only --task ppo and grpo take them here");
  const auto cfg = model_config_json(model, false);
  if (cfg.contains("n_positions")) {
    const int64_t n = cfg["n_positions"].get<int64_t>();
    RLHF_CHECK(std::max(seq_len, prompt_len + gen_len) <= n, model, ": sequences longer than n_positions (", n, ")");
  }
}

json BenchConfig::to_json() const {
  return {{"task", task}, {"model", model}, {"batch", batch}, {"prompt_len", prompt_len}, {"gen_len", gen_len},
          {"seq_len", seq_len}, {"steps", steps}, {"warmup", warmup}, {"seed", seed}, {"threads", threads},
          {"temperature", temperature}, {"mini_batches", mini_batches}, {"ppo_epochs", ppo_epochs}, {"group", group},
          {"sft_loss", sft_loss}, {"max_grad_norm", max_grad_norm}, {"trl_metrics", trl_metrics},
          {"device", device}, {"dtype", dtype}, {"reference_kernels", reference_kernels}, {"lora", lora.to_json()},
          {"memory", memory.to_json()}};
}

json model_config_json(const std::string& name, bool classifier) {
  json j;
  if (name == "gpt2-tiny" || name == "gpt2-small") {
    const bool tiny = name == "gpt2-tiny";
    j = {{"architectures", {classifier ? "GPT2ForSequenceClassification" : "GPT2LMHeadModel"}},
         {"model_type", "gpt2"},
         {"n_layer", tiny ? 4 : 12},
         {"n_embd", tiny ? 256 : 768},
         {"n_head", tiny ? 4 : 12},
         {"vocab_size", tiny ? 8192 : 50257},
         {"n_positions", tiny ? 512 : 1024},
         {"layer_norm_epsilon", 1e-5},
         {"activation_function", "gelu_new"}};
  } else if (name == "llama-tiny") {
    j = {{"architectures", {classifier ? "LlamaForSequenceClassification" : "LlamaForCausalLM"}},
         {"model_type", "llama"},
         {"num_hidden_layers", 4},
         {"hidden_size", 256},
         {"num_attention_heads", 8},
         {"num_key_value_heads", 2},
         {"intermediate_size", 688},
         {"vocab_size", 8192},
         {"rope_theta", 10000.0},
         {"rms_norm_eps", 1e-6},
         {"hidden_act", "silu"},
         {"tie_word_embeddings", false}};
  } else if (name == "qwen2-0.5b") {  // gpu_baseline.py's "qwen2.5-0.5B-shape"
    j = {{"architectures", {classifier ? "Qwen2ForSequenceClassification" : "Qwen2ForCausalLM"}},
         {"model_type", "qwen2"},
         {"num_hidden_layers", 24},
         {"hidden_size", 896},
         {"num_attention_heads", 14},
         {"num_key_value_heads", 2},
         {"intermediate_size", 4864},
         {"vocab_size", 151936},
         {"max_position_embeddings", 4096},
         {"rope_theta", 1000000.0},
         {"rms_norm_eps", 1e-6},
         {"hidden_act", "silu"},
         {"tie_word_embeddings", true}};
  } else if (std::filesystem::exists(name)) {
    // A Hugging Face config.json (or its folder): the shapes only, the weights are random.
    const auto path = std::filesystem::is_directory(name) ? std::filesystem::path(name) / "config.json"
                                                          : std::filesystem::path(name);
    std::ifstream in(path);
    RLHF_CHECK(in, path.string(), ": cannot read (hint: --model takes a benchmark name or a config.json)");
    try {
      j = json::parse(in);
    } catch (const json::exception& e) {
      fail(path.string(), ": not JSON (", e.what(), ")");
    }
    RLHF_CHECK(j.is_object() && j.contains("model_type"), path.string(), ": not a Hugging Face config.json (no model_type)");
    const std::string type = j["model_type"].get<std::string>();
    static const std::map<std::string, std::pair<std::string, std::string>> kArch = {
        {"gpt2", {"GPT2LMHeadModel", "GPT2ForSequenceClassification"}},
        {"llama", {"LlamaForCausalLM", "LlamaForSequenceClassification"}},
        {"qwen2", {"Qwen2ForCausalLM", "Qwen2ForSequenceClassification"}},
        {"qwen3", {"Qwen3ForCausalLM", "Qwen3ForSequenceClassification"}}};
    const auto it = kArch.find(type);
    RLHF_CHECK(it != kArch.end(), path.string(), ": model_type \"", type, "\" is not one of gpt2, llama, qwen2, qwen3");
    j["architectures"] = {classifier ? it->second.second : it->second.first};
    j.erase("id2label");
    j.erase("label2id");
  } else {
    fail("--model must be gpt2-tiny, gpt2-small, llama-tiny, qwen2-0.5b or a config.json, not \"", name, "\"");
  }
  if (classifier) j["num_labels"] = 1;
  return j;
}

double matmul_peak_gflops(int64_t n, const std::string& dtype, const std::string& device, int reps) {
  torch::NoGradGuard ng;
  const auto dt = dtype == "bf16" ? torch::kBFloat16 : torch::kFloat32;
  auto opts = torch::TensorOptions().dtype(dt).device(device);
  auto a = torch::randn({n, n}, opts), b = torch::randn({n, n}, opts);
  auto c = torch::matmul(a, b);  // warm-up
  (void)c.sum().item<double>();
  double best = 1e30;
  for (int i = 0; i < reps; ++i) {
    auto t = Clock::now();
    c = torch::matmul(a, b);
    (void)c[0][0].item<double>();
    best = std::min(best, seconds_since(t));
  }
  return 2.0 * n * n * n / best / 1e9;
}

json run_bench(const BenchConfig& cfg_in) {
  BenchConfig c = cfg_in;
  if (c.seq_len <= 0) c.seq_len = c.prompt_len + c.gen_len;
  c.validate();
  const torch::Device device(c.device);
  set_fast_cpu_kernels(!c.reference_kernels);

  json res = {{"impl", "rlhf-libtorch"}, {"torch", TORCH_VERSION}, {"task", c.task},   {"model", c.model},
              {"threads", c.threads},     {"seed", c.seed},          {"device", c.device}, {"dtype", c.dtype}};
  res["reference_kernels"] = c.reference_kernels;
  res["cpu_kernels_isa"] = kernels::kernels_isa();
  const char* omp = std::getenv("OMP_WAIT_POLICY");
  const char* blas = std::getenv("OPENBLAS_NUM_THREADS");
  res["env"] = {{"OPENBLAS_NUM_THREADS", blas ? json(blas) : json(nullptr)},
                {"OMP_WAIT_POLICY", omp ? json(omp) : json(nullptr)}};
  // What the process really runs with (set_threads sets OpenBLAS's pool through its API, not the environment).
  using GetFn = int (*)();
  if (auto fn = reinterpret_cast<GetFn>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads")))
    res["openblas_threads"] = fn();
  res["torch_threads"] = torch::get_num_threads();

  std::vector<double> step_times;
  int64_t tokens = 0;
  double loss = std::nan(""), rollout_s = 0, scoring_s = 0, train_s = 0;
  int64_t params = 0, checksum = 0;
  auto gen = at::detail::createCPUGenerator(c.seed + 1);  // tokens and sampling, as the peer's manual_seed(seed+1)

  if (c.task == "sft" || c.task == "rm") {
    auto s = make_train_state(c, c.task == "rm", device);
    params = s.model->parameter_count();
    auto step = [&] { return c.task == "sft" ? sft_step(c, s, gen, device) : rm_step(c, s, gen, device); };
    step();  // warm-up
    for (int64_t i = 0; i < c.steps; ++i) {
      auto t = Clock::now();
      auto r = step();
      step_times.push_back(seconds_since(t));
      tokens += r.tokens;
      loss = r.loss;
    }
  } else if (c.task == "dpo") {
    DpoState s{make_train_state(c, false, device), make_model(c, false, c.seed, device)};
    params = s.policy.model->parameter_count();
    dpo_step(c, s, gen, device);  // warm-up
    for (int64_t i = 0; i < c.steps; ++i) {
      auto t = Clock::now();
      auto r = dpo_step(c, s, gen, device);
      step_times.push_back(seconds_since(t));
      tokens += r.tokens;
      loss = r.loss;
    }
  } else if (c.task == "generate") {
    auto model = make_model(c, false, c.seed, device);
    if (c.dtype == "bf16") model->to(torch::kBFloat16);
    params = model->parameter_count();
    generate_step(c, *model, gen, device);  // warm-up
    for (int64_t i = 0; i < c.steps; ++i) {
      auto t = Clock::now();
      auto r = generate_step(c, *model, gen, device);
      step_times.push_back(seconds_since(t));
      tokens += r.tokens;
      checksum += r.checksum;
    }
  } else {
    // policy and its frozen copy π_ref; the reward model and the critic starting as its copy (TRL's ppo.py
    // loads both from reward_model_path).
    // With LoRA (as `rlhf ppo --lora-r`): π_ref is π with its adapters off, and the critic is an adapter with its
    // own head on the reward model's frozen body: one copy of each model's weights.
    RLModels m;
    m.policy = make_model(c, false, c.seed, device);
    m.reward = make_model(c, true, c.seed + 7, device);
    if (c.lora.enabled()) {
      m.policy_lora = lora::attach_lora(*m.policy, c.lora, c.seed);
      m.ref = m.policy;
      if (c.task == "ppo") {
        m.critic = m.reward;
        m.critic->make_adapter_score_head();
        m.critic_lora = lora::attach_lora(*m.critic, c.lora, c.seed + 1);
      }
    } else {
      m.ref = make_model(c, false, c.seed, device);
      if (c.task == "ppo") m.critic = make_model(c, true, c.seed + 7, device);
    }
    m.policy->set_gradient_checkpointing(c.memory.gradient_checkpointing);
    if (m.critic) m.critic->set_gradient_checkpointing(c.memory.gradient_checkpointing);
    if (c.memory.frozen_bf16()) {  // as rlhf ppo --frozen-dtype bf16 (ppo.cpp run_rl)
      const auto bf16 = [](TransformerLM& model, bool freeze_all) {
        if (freeze_all)
          for (auto& p : model.parameters()) p.set_requires_grad(false);
        model.store_frozen_weights(torch::kBFloat16);
      };
      if (m.policy_lora) bf16(*m.policy, false);
      else bf16(*m.ref, true);
      bf16(*m.reward, m.reward != m.critic);
    }
    params = m.policy->parameter_count();
    RLData data;
    const int64_t n_prompts = c.task == "ppo" ? c.batch : c.batch / c.group;
    auto prompts = rand_tokens(m.policy->config().vocab_size, n_prompts, c.prompt_len, gen, torch::kCPU);
    for (int64_t b = 0; b < n_prompts; ++b) {
      auto row = prompts[b].contiguous();
      data.prompts.push_back({json(nullptr), {row.data_ptr<int64_t>(), row.data_ptr<int64_t>() + c.prompt_len}});
    }
    data.stop_ids = {kEos};
    data.pad_id = kPad;
    // One rl_train run of warmup + steps iterations; the first `warmup` are not timed (default 1; 0 for models so
    // large that one iteration takes minutes). Each iteration's wall time runs from
    // the previous iteration's end (its on_iteration call) to its own, so it includes everything rl_train does.
    auto last = Clock::now();
    int64_t done = 0;
    RLHooks hooks;
    hooks.on_iteration = [&](int64_t it, const train::Metrics& met) {
      const double wall = seconds_since(last);
      last = Clock::now();
      if (it > c.warmup) {
        step_times.push_back(wall);
        tokens += c.batch * (c.prompt_len + c.gen_len);
        for (const auto& [k, v] : met) {
          if (k == "rollout_s") rollout_s += v;
          if (k == "scoring_s") scoring_s += v;
          if (k == "train_s") train_s += v;
          if (k == "policy_loss") loss = v;
        }
      } else {
        last = Clock::now();
      }
      ++done;
    };
    const int64_t n = c.warmup + c.steps;
    rl_train(c.task == "ppo" ? ppo_config(c, n) : grpo_config(c, n), m, data, hooks);
    RLHF_CHECK(done == n, "bench: rl_train ran ", done, " iterations, expected ", n);
  }

  double wall = 0;
  for (double t : step_times) wall += t;
  res["params"] = params;
  res["batch"] = c.batch;
  res["steps"] = c.steps;
  if (c.task == "sft" || c.task == "rm" || c.task == "dpo") res["max_grad_norm"] = c.max_grad_norm;
  if (c.task == "sft" || c.task == "rm") {
    res["seq_len"] = c.seq_len;
    res["trl_metrics"] = c.trl_metrics;
    if (c.task == "sft") res["sft_loss"] = c.sft_loss;
  } else {
    res["prompt_len"] = c.prompt_len;
    res["gen_len"] = c.gen_len;
    res["temperature"] = c.temperature;
  }
  static const std::map<std::string, std::string> kTokensAre = {
      {"sft", "B*T"},
      {"rm", "2*B*T (chosen+rejected)"},
      {"dpo", "2*B*(P+G) (chosen+rejected)"},
      {"generate", "new tokens"},
      {"ppo", "B*(P+G) per iteration"},
      {"grpo", "B*(P+G) per iteration (B completions)"}};
  res["tokens"] = tokens;
  res["tokens_are"] = kTokensAre.at(c.task);
  res["wall_s"] = round4(wall);
  res["step_s"] = round4(wall / c.steps);
  res["tokens_per_s"] = round1(tokens / wall);
  res["step_s_min"] = round4(*std::min_element(step_times.begin(), step_times.end()));
  res["step_s_median"] = round4(median(step_times));
  res["loss"] = std::isnan(loss) ? json(nullptr) : json(loss);
  if (c.task == "generate") res["output_checksum"] = checksum;
  if (c.task == "ppo" || c.task == "grpo") {
    if (c.task == "grpo") res["group"] = c.group;
    res["mini_batches"] = c.mini_batches;
    res["ppo_epochs"] = c.task == "ppo" ? c.ppo_epochs : 1;
    res["iter_s"] = round4(wall / c.steps);
    res["rollout_s"] = round4(rollout_s / c.steps);
    res["scoring_s"] = round4(scoring_s / c.steps);
    res["train_s"] = round4(train_s / c.steps);
    res["rollout_new_tokens_per_s"] = round1(c.steps * c.batch * c.gen_len / rollout_s);
  }
  if (c.task == "sft") {
    // nanoGPT's estimate: 6N flops per token for the matmuls (N without the position table; a tied embedding
    // counts once, as the LM head's matmul) + 12·L·C·T for attention, × 3 for forward + backward folded in.
    auto mc = parse_model_config(model_config_json(c.model, false), c.model);
    const double N = static_cast<double>(params) - (mc.family == "gpt2" ? mc.max_position * mc.hidden_size : 0);
    const double per_token = 6.0 * N + 12.0 * mc.num_layers * mc.hidden_size * c.seq_len;
    res["flops_per_token"] = per_token;
    res["model_gflops_per_s"] = round1(per_token * tokens / wall / 1e9);
  }
  for (const auto& [k, v] : memory_metrics()) res[k] = v;
  if (c.lora.enabled()) res["lora"] = c.lora.to_json();
  res["gradient_checkpointing"] = c.memory.gradient_checkpointing;
  res["frozen_dtype"] = c.memory.frozen_dtype;
  return res;
}

}  // namespace rlhf::bench
