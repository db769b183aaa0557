// PPO for RLHF, one iteration (Ziegler et al. 2019; InstructGPT; Huang et al. 2024, "The N Implementation Details"):
//
//  1. rollout   y ~ π(·|x) at temperature τ, truncated after the first EOS; mask m_t = 1 up to and including EOS.
//  2. scoring   logp_t = log softmax(z_t/τ)[y_t] (π, before the update), ref_t the same under π_ref;
//               V_t = critic at the state before y_t; s = RM(x, y) at the last real token;
//               s −= missing_eos_penalty when y has no EOS; s ·= scale; s ← (s − μ)/σ (running, optional);
//               s ← clip(s, ±c) (optional).
//  3. rewards   KL_t = logp_t − ref_t (k1) or e^{ref_t − logp_t} − 1 − (ref_t − logp_t) (k3)
//               r_t = −β·KL_t + [t = last]·s
//  4. GAE       δ_t = r_t + γ·V_{t+1} − V_t,  A_t = δ_t + γλ·A_{t+1},  R_t = A_t + V_t;  A whitened over valid tokens
//  5. update    for E epochs × M minibatches (each split into grad_accum micro-batches):
//               ρ_t = e^{logp_new − logp_t}
//               L_pg = mean_valid(max(−A·ρ, −A·clip(ρ, 1−ε, 1+ε)))
//               L_v  = ½·mean_valid(max((V − R)², (clip(V, V_old ± ε_v) − R)²))
//               L    = L_pg + c_v·L_v − c_ent·mean_valid(H_t) + γ_ptx·(−mean log π(x_ptx))
//               grads clipped per model to max_grad_norm; AdamW on π and V;
//               epochs stop early once ½·mean((logp_new − logp_t)²) > target_approx_kl.
//  6. β         adaptive: e = clip(KL_seq/target − 1, ±0.2), β ← β(1 + e·B/horizon), KL_seq = mean_b Σ_t KL_t.
// GRPO / RLOO (grpo.h) replace 3-4 with group-relative sequence advantages and drop the critic.
// Several processes (rl_shard.h): each rank rolls out, scores and trains on its prompts' rows; μ, σ of 2, the
// whitening of 4, KL_seq of 6 and the metrics are over the global batch; gradients are summed before the clip of 5.
#include "rlhf/ppo.h"

#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>

#include "common/error.h"
#include "common/runtime.h"
#include "dist/grad_sync.h"
#include "dist/zero.h"
#include "lora/peft_format.h"
#include "rlhf/gae.h"
#include "rlhf/grpo.h"
#include "rlhf/kl.h"
#include "rlhf/rl_shard.h"
#include "train/checkpoint.h"
#include "train/jsonl.h"
#include "train/logprobs.h"
#include "train/loop.h"
#include "train/optim.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace rlhf {

// ---------------------------------------------------------------- config

void PPOConfig::validate() const {
  lora.validate();
  memory.validate();
  RLHF_CHECK(algo == "ppo" || algo == "grpo" || algo == "rloo", "--algo must be ppo, grpo or rloo, not \"", algo,
             "\"");
  RLHF_CHECK(critic_init == "reward" || critic_init == "policy", "--critic-init must be reward or policy, not \"",
             critic_init, "\"");
  parse_kl_estimator(kl_estimator);
  RLHF_CHECK(iterations > 0, "--iterations must be > 0");
  RLHF_CHECK(batch_size > 0, "--batch-size must be > 0");
  RLHF_CHECK(algo == "ppo" || group_size >= 2, "--group-size must be >= 2 for ", algo);
  RLHF_CHECK(temperature > 0, "--temperature must be > 0");
  RLHF_CHECK(top_k >= 0, "--top-k must be >= 0 (0: off)");
  RLHF_CHECK(top_p > 0 && top_p <= 1, "--top-p must be in (0, 1]");
  RLHF_CHECK(max_new_tokens > 0, "--max-new-tokens must be > 0");
  RLHF_CHECK(kl_coef >= 0, "--kl-coef must be >= 0");
  RLHF_CHECK(kl_target > 0 && kl_horizon > 0, "--kl-target and --kl-horizon must be > 0");
  RLHF_CHECK(ppo_epochs > 0 && num_minibatches > 0 && grad_accum > 0,
             "--ppo-epochs, --num-minibatches and --grad-accum must be > 0");
  const int64_t rows = batch_size * (algo == "ppo" ? 1 : group_size);
  RLHF_CHECK(rows % (num_minibatches * grad_accum) == 0, "the rollout batch (", rows,
             " sequences) must divide into --num-minibatches × --grad-accum = ", num_minibatches * grad_accum);
  RLHF_CHECK(lr >= 0 && critic_lr >= 0, "--lr and --critic-lr must be >= 0 (0: the models stay as they are, a baseline run)");
  RLHF_CHECK(lr_schedule == "linear" || lr_schedule == "cosine" || lr_schedule == "constant",
             "--lr-schedule must be linear, cosine or constant");
  RLHF_CHECK(clip_eps > 0 && vf_clip > 0, "--clip-eps and --vf-clip must be > 0");
  RLHF_CHECK(gamma >= 0 && gamma <= 1 && lam >= 0 && lam <= 1, "--gamma and --lam must be in [0, 1]");
  RLHF_CHECK(score_clip >= 0 && missing_eos_penalty >= 0, "--score-clip and --missing-eos-penalty must be >= 0");
  RLHF_CHECK(ptx_coef >= 0, "--ptx-coef must be >= 0");
  RLHF_CHECK(ptx_coef == 0 || ptx_batch_size > 0, "--ptx-batch-size must be > 0");
  RLHF_CHECK(eval_every >= 0, "--eval-every must be >= 0 (0: before the first and after the last iteration)");
  RLHF_CHECK(eval_samples >= 1, "--eval-samples must be >= 1");
  RLHF_CHECK(save_every >= 0 && samples_every >= 0 && log_every > 0, "--save-every, --samples-every >= 0, --log-every > 0");
  save_dtype_from_flag(save_dtype);
  parse_shard_size(max_shard_size);
  RLHF_CHECK(report_to == "none" || report_to == "tensorboard", "--report-to: \"", report_to,
             "\" is not one of none, tensorboard");
}

json PPOConfig::to_json() const {
  return {{"policy", policy},
          {"reward", reward},
          {"prompts", prompts},
          {"out", out},
          {"save_dtype", save_dtype},
          {"max_shard_size", max_shard_size},
          {"report_to", report_to},
          {"critic", critic},
          {"critic_init", critic_init},
          {"algo", algo},
          {"chat", chat},
          {"lora", lora.to_json()},
          {"memory", memory.to_json()},
          {"iterations", iterations},
          {"batch_size", batch_size},
          {"group_size", group_size},
          {"temperature", temperature},
          {"top_k", top_k},
          {"top_p", top_p},
          {"max_new_tokens", max_new_tokens},
          {"max_prompt_tokens", max_prompt_tokens},
          {"kl_estimator", kl_estimator},
          {"kl_coef", kl_coef},
          {"adaptive_kl", adaptive_kl},
          {"kl_target", kl_target},
          {"kl_horizon", kl_horizon},
          {"missing_eos_penalty", missing_eos_penalty},
          {"score_scale", score_scale},
          {"normalize_score", normalize_score},
          {"score_clip", score_clip},
          {"ppo_epochs", ppo_epochs},
          {"num_minibatches", num_minibatches},
          {"grad_accum", grad_accum},
          {"lr", lr},
          {"critic_lr", critic_lr},
          {"lr_schedule", lr_schedule},
          {"warmup_steps", warmup_steps},
          {"adam_eps", adam_eps},
          {"weight_decay", weight_decay},
          {"max_grad_norm", max_grad_norm},
          {"clip_eps", clip_eps},
          {"vf_clip", vf_clip},
          {"vf_coef", vf_coef},
          {"ent_coef", ent_coef},
          {"gamma", gamma},
          {"lam", lam},
          {"whiten_advantages", whiten_advantages},
          {"whiten_rewards", whiten_rewards},
          {"target_approx_kl", target_approx_kl},
          {"grpo_eps", grpo_eps},
          {"ptx_data", ptx_data},
          {"ptx_coef", ptx_coef},
          {"ptx_batch_size", ptx_batch_size},
          {"ptx_max_tokens", ptx_max_tokens},
          {"eval_prompts", eval_prompts},
          {"eval_every", eval_every},
          {"eval_samples", eval_samples},
          {"eval_greedy", eval_greedy},
          {"seed", seed},
          {"save_every", save_every},
          {"samples_every", samples_every},
          {"num_samples", num_samples},
          {"log_every", log_every},
          {"skip_nonfinite", skip_nonfinite},
          {"device", device}};
}

// ---------------------------------------------------------------- the pieces

torch::Tensor per_token_rewards(const torch::Tensor& kl, const torch::Tensor& score, const torch::Tensor& mask,
                                double beta) {
  TORCH_CHECK(kl.sizes() == mask.sizes() && score.dim() == 1 && score.size(0) == kl.size(0),
              "per_token_rewards: kl ", kl.sizes(), ", score ", score.sizes(), ", mask ", mask.sizes());
  auto rewards = -beta * kl * mask;
  auto last = (mask.sum(1) - 1).clamp_min(0).to(torch::kInt64);  // (B,): the mask is a prefix
  return rewards.scatter_add(1, last.unsqueeze(1), score.to(rewards.scalar_type()).unsqueeze(1));
}

PolicyLoss ppo_policy_loss(const torch::Tensor& logp, const torch::Tensor& old_logp, const torch::Tensor& advantages,
                           const torch::Tensor& mask, double clip_eps) {
  TORCH_CHECK(logp.sizes() == old_logp.sizes() && logp.sizes() == advantages.sizes() && logp.sizes() == mask.sizes(),
              "ppo_policy_loss: logp ", logp.sizes(), ", old_logp ", old_logp.sizes(), ", advantages ",
              advantages.sizes(), ", mask ", mask.sizes());
  auto log_ratio = logp - old_logp;
  auto ratio = torch::exp(log_ratio);
  auto pg1 = -advantages * ratio;
  auto pg2 = -advantages * torch::clamp(ratio, 1.0 - clip_eps, 1.0 + clip_eps);
  PolicyLoss out;
  out.loss = masked_mean(torch::max(pg1, pg2), mask);
  torch::NoGradGuard ng;
  out.clip_frac = masked_mean((pg2 > pg1).to(torch::kFloat32), mask).item<double>();
  out.approx_kl = 0.5 * masked_mean(log_ratio.pow(2), mask).item<double>();
  out.ratio_mean = masked_mean(ratio, mask).item<double>();
  out.ratio_var = masked_var(ratio, mask).item<double>();
  return out;
}

ValueLoss ppo_value_loss(const torch::Tensor& values, const torch::Tensor& old_values, const torch::Tensor& returns,
                         const torch::Tensor& mask, double vf_clip) {
  TORCH_CHECK(values.sizes() == old_values.sizes() && values.sizes() == returns.sizes() &&
                  values.sizes() == mask.sizes(),
              "ppo_value_loss: values ", values.sizes(), ", old_values ", old_values.sizes(), ", returns ",
              returns.sizes(), ", mask ", mask.sizes());
  auto clipped = old_values + torch::clamp(values - old_values, -vf_clip, vf_clip);
  auto l1 = (values - returns).pow(2), l2 = (clipped - returns).pow(2);
  ValueLoss out;
  out.loss = 0.5 * masked_mean(torch::max(l1, l2), mask);
  torch::NoGradGuard ng;
  out.clip_frac = masked_mean((l2 > l1).to(torch::kFloat32), mask).item<double>();
  return out;
}

void RunningMoments::update(const torch::Tensor& x) {
  const auto xd = x.detach().to(torch::kFloat64);
  const int64_t n = xd.numel();
  if (n == 0) return;
  const double bmean = xd.mean().item<double>();
  const double bvar = n > 1 ? xd.var(/*unbiased=*/false).item<double>() : 0.0;
  const double tot = static_cast<double>(count + n);
  const double delta = bmean - mean;
  const double m2 = (count ? var * count : 0.0) + bvar * n + delta * delta * count * n / tot;
  mean += delta * n / tot;
  var = m2 / tot;
  count += n;
}

double RunningMoments::std() const { return std::sqrt(std::max(var, 1e-8)); }

// ---------------------------------------------------------------- the loop

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::vector<train::NamedParam> named_params(TransformerLM& m) {
  std::vector<train::NamedParam> out;
  for (auto& w : m.weights()) out.push_back({w.name, w.tensor});
  return out;
}

void freeze(TransformerLM& m) {
  m.eval();
  for (auto& p : m.parameters()) p.set_requires_grad(false);
}

bool all_finite(const torch::Tensor& t) { return torch::isfinite(t).all().item<bool>(); }

// The prompts of iteration `it`: a stream over epochs of seeded shuffles (deterministic in (seed, it), so a
// resumed run draws the same prompts).
std::vector<int64_t> iteration_prompts(int64_t n, int64_t batch, uint64_t seed, int64_t it) {
  std::vector<int64_t> out;
  int64_t pos = it * batch;
  while (static_cast<int64_t>(out.size()) < batch) {
    const int64_t epoch = pos / n;
    auto order = train::shuffled_indices(n, seed, epoch);
    out.push_back(order[pos % n]);
    ++pos;
  }
  return out;
}

std::vector<int64_t> to_vector(const torch::Tensor& t) {
  auto c = t.to(torch::kCPU, torch::kInt64).contiguous();
  return {c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel()};
}

// The ptx loss −mean log π(x) over the loss tokens of a batch of examples.
torch::Tensor ptx_loss(TransformerLM& policy, const std::vector<train::TokenSeq>& ptx, int64_t batch, int64_t pad_id,
                       uint64_t seed, int64_t draw) {
  std::vector<train::TokenSeq> seqs;
  const int64_t n = static_cast<int64_t>(ptx.size());
  auto idx = iteration_prompts(n, batch, seed ^ 0x9e3779b97f4a7c15ULL, draw);
  for (auto i : idx) seqs.push_back(ptx[i]);
  auto b = train::pad_right(seqs, pad_id);
  const auto device = policy.parameters().front().device();
  auto ids = b.input_ids.to(device), mask = b.attention_mask.to(device);
  auto logits = policy.forward_logits(ids, mask);
  auto lp = train::causal_logprobs(logits, ids, 1.0);  // (B, T−1)
  auto lm = b.loss_mask.to(device).narrow(1, 1, ids.size(1) - 1);
  return -masked_mean(lp, lm);
}

struct RunState {
  int64_t iteration = 0;  // iterations done
  KLController kl;
  RunningMoments score_moments;
  int64_t skipped = 0;
  json to_json() const {
    return {{"iteration", iteration},
            {"kl_controller", kl.to_json()},
            {"score_mean", score_moments.mean},
            {"score_var", score_moments.var},
            {"score_count", score_moments.count},
            {"skipped", skipped}};
  }
  void from_json(const json& j) {
    iteration = j.at("iteration").get<int64_t>();
    kl = KLController::from_json(j.at("kl_controller"));
    score_moments.mean = j.at("score_mean").get<double>();
    score_moments.var = j.at("score_var").get<double>();
    score_moments.count = j.at("score_count").get<int64_t>();
    skipped = j.at("skipped").get<int64_t>();
  }
};

std::string checkpoint_dir(const PPOConfig& cfg) { return (fs::path(cfg.out) / "checkpoint").string(); }

void save_rl_checkpoint(const PPOConfig& cfg, RLModels& models, train::AdamW& pol_opt, train::AdamW* critic_opt,
                        const RunState& st, const RLData& data) {
  train::Checkpoint ck;
  SaveOptions so;
  so.source_dir = cfg.policy;
  so.max_shard_bytes = parse_shard_size(cfg.max_shard_size);
  if (models.policy_lora) ck.adapters.push_back({"", models.policy.get(), models.policy_lora.get(), {cfg.policy, cfg.policy}});
  else ck.models.push_back({"", models.policy.get(), so});
  if (models.critic_lora) {
    ck.adapters.push_back({"critic", models.critic.get(), models.critic_lora.get(), {cfg.reward, cfg.reward}});
  } else if (models.critic) {
    SaveOptions cso;
    cso.max_shard_bytes = so.max_shard_bytes;
    cso.source_dir = cfg.critic.empty() ? (cfg.critic_init == "reward" ? cfg.reward : cfg.policy) : cfg.critic;
    ck.models.push_back({"critic", models.critic.get(), cso});
  }
  ck.optimizers.push_back({"optimizer", &pol_opt});
  if (critic_opt) ck.optimizers.push_back({"critic_optimizer", critic_opt});
  ck.state.step = pol_opt.steps();
  ck.state.state = st.to_json();
  ck.json_files["ppo_config.json"] = cfg.to_json();
  if (data.formatter) ck.json_files["rlhf_format.json"] = data.formatter->options().to_json();
  train::save_checkpoint(checkpoint_dir(cfg), ck);
}

// ---------------------------------------------------------------- one iteration, step by step
//
// rl_train below runs, for each iteration, the numbered steps of the math at the top of this file:
// rollout_step (1) → score_step (2, KL_t of 3) → advantages_step (r_t of 3, 4) → update_step (5) → β (6), then
// iteration_metrics → record_step → checkpoint_step.
// Shapes: B rollout rows (batch_size·G; G = 1 for PPO, group_size for GRPO/RLOO), N response tokens,
// P prompt tokens. Each step takes what it reads and returns what it makes; the run's state that outlives an
// iteration is RunState, Optimizers and Outputs.

// The optimizers of the two trained networks and the learning-rate schedule they share (over all policy steps).
struct Optimizers {
  train::AdamW policy;                   // π
  std::unique_ptr<train::AdamW> critic;  // V (PPO only; null for GRPO/RLOO)
  train::ScheduleConfig sched;
  // --zero 1 on several ranks (dist/zero.h): each optimizer's moments sharded over the ranks; null otherwise.
  std::unique_ptr<dist::Zero1> zero_policy, zero_critic;
  Optimizers(const PPOConfig& cfg, RLModels& models);
  void shard_state(dist::World& world) {
    zero_policy = std::make_unique<dist::Zero1>(world, policy);
    if (critic) zero_critic = std::make_unique<dist::Zero1>(world, *critic);
  }
  // Around a checkpoint write: rank 0 gets every tensor's moments, and gives them back after.
  void gather_state() {
    if (zero_policy) zero_policy->gather_state();
    if (zero_critic) zero_critic->gather_state();
  }
  void drop_foreign_state() {
    if (zero_policy) zero_policy->drop_foreign_state();
    if (zero_critic) zero_critic->drop_foreign_state();
  }
};

// Σ_r of one model's gradients, the clip to max_norm and AdamW at lr (ZeRO-1: reduced to owners, stepped there,
// broadcast). Returns ‖g‖ before clipping; the grads are cleared.
double step_model(const RLShard& shard, train::AdamW& opt, dist::Zero1* zero, double lr, double max_norm) {
  if (zero) return zero->step(lr, max_norm);
  if (shard.distributed())
    dist::all_reduce_gradients(*shard.world(), opt.params(), shard.world()->options().bucket_mb << 20);
  const double gn = train::clip_grad_norm(opt.params(), max_norm);
  opt.step(lr);
  opt.zero_grad();
  return gn;
}

train::AdamWConfig adamw_config(const PPOConfig& cfg) {
  train::AdamWConfig acfg;
  acfg.eps = cfg.adam_eps;
  acfg.weight_decay = cfg.weight_decay;
  return acfg;
}

Optimizers::Optimizers(const PPOConfig& cfg, RLModels& models)
    : policy(train::default_param_groups(models.policy_lora ? train::lora_params(*models.policy, *models.policy_lora)
                                                            : named_params(*models.policy),
                                         adamw_config(cfg)),
             adamw_config(cfg)) {
  if (cfg.algo == "ppo") {
    const auto acfg = adamw_config(cfg);
    critic = std::make_unique<train::AdamW>(
        train::default_param_groups(models.critic_lora ? train::lora_params(*models.critic, *models.critic_lora)
                                                       : named_params(*models.critic),
                                    acfg),
        acfg);
  }
  sched.kind = cfg.lr_schedule;
  sched.warmup_steps = cfg.warmup_steps;
  sched.total_steps = cfg.iterations * cfg.ppo_epochs * cfg.num_minibatches;
}

// Where the iterations' records go: OUT/metrics.jsonl and OUT/samples.jsonl (appended to on --resume; not opened
// when cfg.out is ""), the progress line, and the last checkpoint written, which a failure message names. Of
// several ranks, rank 0 alone writes and prints (main); the others keep only last_good.
struct Outputs {
  bool main = true;
  std::unique_ptr<train::MetricsLog> log;  // null when cfg.out is "" or not main
  std::ofstream samples;                   // open when log is
  train::Progress progress;
  std::string last_good;
  Outputs(const PPOConfig& cfg, const RunState& st, std::string last_good_checkpoint, bool main_rank);
  void note(const std::string& line) {
    if (main) progress.note(line);
  }
  void update(int64_t step, const train::Metrics& m) {
    if (main) progress.update(step, m);
  }
  void finish() {
    if (main) progress.finish();
  }
};

Outputs::Outputs(const PPOConfig& cfg, const RunState& st, std::string last_good_checkpoint, bool main_rank)
    : main(main_rank),
      progress(cfg.iterations, st.iteration, cfg.log_every, cfg.algo),
      last_good(std::move(last_good_checkpoint)) {
  if (main && !cfg.out.empty()) {
    log = std::make_unique<train::MetricsLog>((fs::path(cfg.out) / "metrics.jsonl").string(), cfg.resume,
                                              cfg.report_to);
    samples.open(fs::path(cfg.out) / "samples.jsonl", cfg.resume ? std::ios::app : std::ios::trunc);
    train::write_json_atomic((fs::path(cfg.out) / "ppo_config.json").string(), cfg.to_json());
  }
}

// What to do when iteration `it` meets a non-finite `what` (KL, score or loss): returns true (skip the batch,
// counted in RunState::skipped) under --skip-nonfinite, else throws naming the last good checkpoint.
using NonFinite = std::function<bool(const std::string& what, int64_t it)>;

torch::Device device_of(TransformerLM& m) { return m.parameters().front().device(); }

// The rollout batch of one iteration.
struct Sampled {
  Rollout rollout;                     // prompt_ids (B, P); response_ids, response_mask, logprobs (B, N); has_eos (B,)
  std::vector<int64_t> prompt_of_row;  // (B,): the index into data.prompts of each row
};

// The seed of global rollout row `row` of iteration `it` (splitmix64 steps: nearby seeds give unrelated streams).
uint64_t row_seed(uint64_t seed, int64_t it, int64_t row) {
  const auto mix = [](uint64_t z) {
    z += 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  };
  return mix(mix(seed * 1000003ULL + static_cast<uint64_t>(it) + 1) + static_cast<uint64_t>(row));
}

// 1. Rollout. In: the policy π, the prompts; iteration `it`; this rank's share. Out: the rank's rows of the
// B = batch_size·G, the batch_size prompts of the iteration (iteration_prompts: a seeded shuffle, deterministic in
// (seed, it)) each repeated G times, one response y ~ π(·|x) each at temperature τ (top-k / top-p as configured),
// cut after the first stop token. Global row g draws from a generator of its own seeded by (seed, it, g)
// (row_seed), so a resumed run samples the same responses and a row samples the same on any number of ranks.
Sampled rollout_step(const PPOConfig& cfg, TransformerLM& policy, const RLData& data, int64_t G, int64_t it,
                     const RLShard& shard) {
  SamplingOptions so;
  so.temperature = static_cast<float>(cfg.temperature);
  so.top_k = static_cast<int>(cfg.top_k);
  so.top_p = static_cast<float>(cfg.top_p);
  so.max_new_tokens = static_cast<int>(cfg.max_new_tokens);
  so.stop_at_eos = true;
  auto pidx = iteration_prompts(static_cast<int64_t>(data.prompts.size()), cfg.batch_size, cfg.seed, it);
  Sampled s;
  std::vector<std::vector<int64_t>> prompt_ids;
  std::vector<at::Generator> gens;
  for (int64_t j = shard.prompt_lo(); j < shard.prompt_hi(); ++j)
    for (int64_t g = 0; g < G; ++g) {
      const int64_t p = pidx[static_cast<size_t>(j)];
      prompt_ids.push_back(data.prompts[p].ids);
      s.prompt_of_row.push_back(p);
      gens.push_back(at::detail::createCPUGenerator(row_seed(cfg.seed, it, j * G + g)));
    }
  ComputeDtypeWeights fp32(policy);  // --frozen-dtype bf16: cast once for the whole generation, not per token
  s.rollout = rollout_generate_rows(policy, prompt_ids, so, data.stop_ids, data.pad_id, gens);
  return s;
}

// What the networks say about a rollout before the update (no grad). 0 on padding where per token.
struct Scored {
  torch::Tensor old_logp;    // (B, N) logp_t under π at τ
  torch::Tensor ref_logp;    // (B, N) the same under π_ref
  torch::Tensor old_values;  // (B, N) V_t of the critic (PPO only; undefined for GRPO/RLOO)
  torch::Tensor raw_score;   // (B,) float32: RM(x, y) at the last real token, or the score hook
  torch::Tensor score;       // (B,) s: raw_score − missing-EOS penalty, · scale, normalised, clipped (as configured)
  torch::Tensor kl;          // (B, N) KL_t, k1 or k3
  torch::Tensor entropy;     // (B, N) H_t of π at τ
  train::Metrics components; // the score hook's components (reward/<name>), logged with the iteration
};

// The score hook's view of rows of r: each row's prompt line and, with a formatter, the prompt, response and
// query text. prompt_of_row: (B,) indices into prompts.
ScoreQuery score_query(const RLData& data, const std::vector<Prompt>& prompts, const Rollout& r,
                       const std::vector<int64_t>& prompt_of_row, int64_t iteration) {
  ScoreQuery q{r, {}, {}, {}, {}, iteration};
  auto resp = r.response_ids.cpu();
  auto lens = r.response_mask.sum(1).to(torch::kCPU, torch::kInt64);
  for (int64_t b = 0; b < r.batch(); ++b) {
    const Prompt& p = prompts[static_cast<size_t>(prompt_of_row[static_cast<size_t>(b)])];
    q.prompts.push_back(&p);
    if (!data.formatter) continue;
    auto ids = to_vector(resp[b]);
    q.prompt_text.push_back(data.formatter->prompt_text(p.prompt));
    q.response_text.push_back(data.formatter->decode_response(ids));
    std::vector<int32_t> full(p.ids.begin(), p.ids.end());
    full.insert(full.end(), ids.begin(), ids.begin() + lens[b].item<int64_t>());
    q.query_text.push_back(data.formatter->tokenizer().decode(full, /*skip_special_tokens=*/false));
  }
  return q;
}

// The reward model's scores (rollout.h sequence_scores). With the critic an adapter on the reward model's body,
// the same weights with the critic's adapters (and value head) off: the reward model exactly as loaded.
torch::Tensor reward_model_scores(RLModels& models, const Rollout& r) {
  std::optional<lora::AdaptersOff> off;
  if (models.critic_lora) off.emplace(*models.reward);
  return sequence_scores(*models.reward, r);
}

// s of each row: the score hook (with its components) or the reward model at the last real token. (B,) float32.
torch::Tensor raw_scores(RLModels& models, const RLHooks& hooks, const ScoreQuery& q, train::Metrics* components) {
  if (!hooks.score) return reward_model_scores(models, q.rollout);
  std::optional<lora::AdaptersOff> off;  // the hook's reward model may be the LoRA critic's body
  if (models.critic_lora) off.emplace(*models.critic);
  ScoreResult res = hooks.score(q);
  off.reset();
  RLHF_CHECK(res.score.defined() && res.score.dim() == 1 && res.score.size(0) == q.rollout.batch(),
             "the score hook returned ", res.score.defined() ? res.score.sizes() : c10::IntArrayRef{},
             " for a batch of ", q.rollout.batch());
  if (components) *components = std::move(res.components);
  return res.score.to(device_of(*models.policy), torch::kFloat32);
}

// 2. Scoring (and KL_t of 3). In: the rollout r (this rank's B rows, N response tokens); π, π_ref, the reward model
// (or hooks.score), the critic (PPO); the running score moments, updated here with the global batch's scores when
// normalize_score is on. Out: Scored, computed in this order: π's log-probs and entropy, π_ref's log-probs, the
// score and its transformations, KL_t · m_t, V_t.
Scored score_step(const PPOConfig& cfg, RLModels& models, const RLHooks& hooks, const RLData& data, const Sampled& s,
                  int64_t it, KLEstimator est, RunningMoments& moments, const RLShard& shard) {
  torch::NoGradGuard ng;
  const Rollout& r = s.rollout;
  const auto& mask = r.response_mask;  // (B, N)
  Scored sc;
  auto f = response_logprobs(*models.policy, r, cfg.temperature, /*with_entropy=*/true);
  sc.old_logp = f.logprobs;
  sc.entropy = f.entropy;
  {
    // With LoRA the reference is the policy itself with its adapters off: the base model bit for bit.
    std::optional<lora::AdaptersOff> off;
    if (models.policy_lora) off.emplace(*models.ref);
    sc.ref_logp = response_logprobs(*models.ref, r, cfg.temperature).logprobs;
  }
  sc.raw_score = hooks.score ? raw_scores(models, hooks, score_query(data, data.prompts, r, s.prompt_of_row, it + 1),
                                          &sc.components)
                             : reward_model_scores(models, r);
  auto score = sc.raw_score - cfg.missing_eos_penalty * r.has_eos.logical_not().to(torch::kFloat32);
  score = score * cfg.score_scale;
  if (cfg.normalize_score) {
    moments.update(shard.gather_rows(score, "scores for --normalize-score"));
    score = (score - moments.mean) / moments.std();
  }
  if (cfg.score_clip > 0) score = score.clamp(-cfg.score_clip, cfg.score_clip);
  sc.score = score;
  sc.kl = kl_per_token(sc.old_logp, sc.ref_logp, est) * mask;  // (B, N)
  if (cfg.algo == "ppo") sc.old_values = response_values(*models.critic, r);
  return sc;
}

struct Advantages {
  torch::Tensor advantages;  // PPO: (B, N) A_t, whitened over valid tokens when asked; GRPO/RLOO: (B,) per sequence
  torch::Tensor returns;     // (B, N) R_t = A_t + V_t, from the unwhitened A_t (PPO only; undefined otherwise)
};

// 3-4. Rewards and advantages (no grad). In: Scored, the response mask m (B, N), this iteration's KL coefficient β.
// PPO: r_t = −β·KL_t + [t = last]·s (optionally scaled to std 1), GAE(γ, λ) over V_t, A whitened when asked
// (mean and variance over the valid tokens of the global batch). GRPO: A = (s − mean_group)/(std_group + ε). RLOO:
// leave-one-out baseline of s − β·Σ_t KL_t within each group (groups never straddle ranks).
Advantages advantages_step(const PPOConfig& cfg, const Scored& sc, const torch::Tensor& mask, double beta,
                           const RLShard& shard) {
  torch::NoGradGuard ng;
  Advantages out;
  if (cfg.algo == "ppo") {
    // masked_whiten over the global batch: the rows of every rank gathered (padded to max_new_tokens), whitened
    // together, this rank's rows kept.
    const auto whiten = [&](const torch::Tensor& x, bool shift_mean, const char* what) {
      if (!shard.distributed()) return masked_whiten(x, mask, shift_mean);
      const int64_t W = cfg.max_new_tokens;
      auto all = masked_whiten(shard.gather_rows(x, what, W), shard.gather_rows(mask, "response masks", W), shift_mean);
      return shard.own_rows(all).narrow(1, 0, x.size(1)).to(x.scalar_type()).contiguous();
    };
    auto rewards = per_token_rewards(sc.kl, sc.score, mask, beta);
    if (cfg.whiten_rewards) rewards = whiten(rewards, /*shift_mean=*/false, "rewards to whiten");
    auto g = gae(rewards, sc.old_values, mask, cfg.gamma, cfg.lam);
    out.advantages = cfg.whiten_advantages ? whiten(g.advantages, true, "advantages to whiten") : g.advantages;
    out.returns = g.returns;
  } else if (cfg.algo == "grpo") {
    out.advantages = grpo_advantages(sc.score, cfg.group_size, cfg.grpo_eps);  // (B,)
  } else {
    out.advantages = rloo_advantages(sc.score - beta * sc.kl.sum(1), cfg.group_size);  // (B,)
  }
  return out;
}

struct MicroLoss {
  torch::Tensor loss;      // scalar, differentiable in π (and V)
  train::Metrics metrics;  // policy_loss, value_loss, clip_frac, approx_kl, ... [, ptx_loss]
  double approx_kl = 0;    // ½·mean_valid((logp_new − logp_t)²)
};

// The names of micro_loss's metrics, in its order.
std::vector<std::string> micro_metric_names(const PPOConfig& cfg) {
  if (cfg.algo == "ppo")
    return {"policy_loss", "value_loss", "clip_frac", "approx_kl", "vf_clip_frac", "ratio_mean", "ratio_var"};
  return {"policy_loss", "value_loss", "clip_frac", "approx_kl", "kl_loss"};
}

// The loss of one micro-batch: rows idx (b,) of the rollout, on the device. PPO: L_pg + c_v·L_v; GRPO: the clipped
// surrogate + β·KL to π_ref; RLOO: the surrogate alone (its KL is in the reward); then − c_ent·mean_valid(H_t).
// Every term is a mean over the valid tokens of the rows. (PPO-ptx's term: ptx_term.)
MicroLoss micro_loss(const PPOConfig& cfg, RLModels& models, const Rollout& r, const Scored& sc,
                     const Advantages& adv, const torch::Tensor& idx, double beta) {
  auto sub = r.select(idx);
  auto sm = r.response_mask.index_select(0, idx);  // (b, N)
  auto f = response_logprobs(*models.policy, sub, cfg.temperature, /*with_entropy=*/cfg.ent_coef > 0);
  MicroLoss out;
  if (cfg.algo == "ppo") {
    auto pl = ppo_policy_loss(f.logprobs, sc.old_logp.index_select(0, idx), adv.advantages.index_select(0, idx), sm,
                              cfg.clip_eps);
    auto v = response_values(*models.critic, sub);
    auto vl = ppo_value_loss(v, sc.old_values.index_select(0, idx), adv.returns.index_select(0, idx), sm, cfg.vf_clip);
    out.loss = pl.loss + cfg.vf_coef * vl.loss;
    out.metrics = {{"policy_loss", pl.loss.item<double>()}, {"value_loss", vl.loss.item<double>()},
                   {"clip_frac", pl.clip_frac}, {"approx_kl", pl.approx_kl}, {"vf_clip_frac", vl.clip_frac},
                   {"ratio_mean", pl.ratio_mean}, {"ratio_var", pl.ratio_var}};
    out.approx_kl = pl.approx_kl;
  } else {
    const double kl_beta = cfg.algo == "grpo" ? beta : 0.0;  // RLOO: KL is in the reward
    torch::Tensor sub_ref = sc.ref_logp.index_select(0, idx);
    auto gl = grpo_loss(f.logprobs, sc.old_logp.index_select(0, idx), sub_ref, adv.advantages.index_select(0, idx),
                        sm, cfg.clip_eps, kl_beta);
    out.loss = gl.loss;
    out.metrics = {{"policy_loss", gl.pg_loss.item<double>()}, {"value_loss", 0.0}, {"clip_frac", gl.clip_frac},
                   {"approx_kl", gl.approx_kl}, {"kl_loss", gl.kl.item<double>()}};
    out.approx_kl = gl.approx_kl;
  }
  if (cfg.ent_coef > 0) out.loss = out.loss - cfg.ent_coef * masked_mean(f.entropy, sm);
  return out;
}

// A micro-batch's metrics over all ranks, from one exchange of every rank's [w_r, n_r, finite_r, m_r...]: the
// token-mean metrics as Σ_r w_r·m_r (w_r = n_r / n, the rank's share of the micro-batch's valid tokens), ratio_var
// (Bessel-corrected per rank) pooled with the law of total variance, approx_kl likewise; finite when every rank's
// loss is. One process: its own values.
struct MicroGlobal {
  train::Metrics metrics;
  double approx_kl = 0;
  bool finite = true;
};

MicroGlobal micro_global(const RLShard& shard, const PPOConfig& cfg, const MicroLoss& ml, double w, double n_own,
                         bool finite) {
  if (!shard.distributed()) return {ml.metrics, ml.approx_kl, finite};
  const auto names = micro_metric_names(cfg);
  const size_t K = names.size();
  std::vector<double> mine{w, n_own, finite ? 0.0 : 1.0};
  for (size_t k = 0; k < K; ++k) mine.push_back(ml.metrics.empty() ? 0.0 : ml.metrics[k].second);
  const auto all = shard.gather_values(mine, "micro-batch metrics");
  const size_t stride = 3 + K;
  const auto at = [&](int r, size_t j) { return all[static_cast<size_t>(r) * stride + j]; };
  MicroGlobal out;
  for (int r = 0; r < shard.ranks(); ++r) out.finite = out.finite && at(r, 2) == 0.0;
  std::vector<double> mean(K, 0.0);
  for (size_t k = 0; k < K; ++k)
    for (int r = 0; r < shard.ranks(); ++r) mean[k] += at(r, 0) * at(r, 3 + k);
  for (size_t k = 0; k < K; ++k) {
    double v = mean[k];
    if (names[k] == "ratio_var") {  // Σ_r (n_r/n)·(pop_r + (mean_r − mean)²), pop_r = var_r·(n_r − 1)/n_r; · n/(n − 1)
      const size_t km = std::find(names.begin(), names.end(), "ratio_mean") - names.begin();
      double n = 0, pop = 0;
      for (int r = 0; r < shard.ranks(); ++r) {
        const double nr = at(r, 1);
        n += nr;
        if (nr == 0) continue;
        const double d = at(r, 3 + km) - mean[km];
        pop += at(r, 0) * (at(r, 3 + k) * (nr - 1) / nr + d * d);
      }
      v = pop * n / std::max(n - 1, 1.0);
    }
    out.metrics.push_back({names[k], v});
  }
  out.approx_kl = mean[std::find(names.begin(), names.end(), "approx_kl") - names.begin()];
  return out;
}

struct Update {
  train::Metrics metrics;  // means over micro-batches and optimizer steps, in first-seen order (empty: no update)
  int64_t epochs = 0;      // epochs completed
  bool skipped = false;    // a non-finite loss stopped the update (the batch is skipped)
};

// 5. Update. In: the rollout (this rank's rows of the B), Scored, Advantages, β; every row's response length
// (B,) over all ranks; the optimizers (stepped here). For each of ppo_epochs epochs, a permutation of the B rows
// seeded by (seed, it, epoch) is cut into num_minibatches minibatches of grad_accum micro-batches; each
// micro-batch's loss / grad_accum is backpropagated: on several ranks each its own rows' loss × n_r/n (its share
// of the micro-batch's valid tokens; a rank without rows in it only PPO-ptx's share), so the summed gradients are
// one process's. Then the gradients are summed over ranks, each model's clipped to max_grad_norm, and AdamW steps
// at the scheduled lr. The epochs stop after a minibatch whose mean approx-KL exceeds target_approx_kl (> 0), and
// at a non-finite loss on any rank (`nonfinite` decides: skip the batch or stop the run). Out: the metrics means,
// the epochs completed, whether the batch was skipped.
Update update_step(const PPOConfig& cfg, RLModels& models, const RLData& data, Optimizers& opt, const Rollout& r,
                   const Scored& sc, const Advantages& adv, const torch::Tensor& lengths, double beta, int64_t it,
                   const NonFinite& nonfinite, const RLShard& shard) {
  const auto device = device_of(*models.policy);
  const int64_t rows = shard.global_rows();
  const auto len = lengths.to(torch::kCPU, torch::kFloat64).contiguous();
  const double* len_of = len.data_ptr<double>();  // valid tokens of each global row
  Update out;
  train::MetricsMean upd;
  bool early_stop = false;
  for (int64_t epoch = 0; epoch < cfg.ppo_epochs && !out.skipped && !early_stop; ++epoch) {
    auto pgen = at::detail::createCPUGenerator(cfg.seed * 7919ULL + static_cast<uint64_t>(it * 131 + epoch) + 17);
    auto perm = torch::randperm(rows, pgen, torch::kInt64);
    const int64_t* order = perm.data_ptr<int64_t>();
    const int64_t mb = rows / cfg.num_minibatches, micro = mb / cfg.grad_accum;
    for (int64_t m = 0; m < cfg.num_minibatches && !out.skipped; ++m) {
      const double lr = train::schedule_lr(opt.sched, cfg.lr, opt.policy.steps());
      const double clr = train::schedule_lr(opt.sched, cfg.critic_lr, opt.policy.steps());
      double mb_approx_kl = 0;
      for (int64_t a = 0; a < cfg.grad_accum; ++a) {
        // The micro-batch's global rows; this rank's among them (local indices) and their share of the tokens.
        std::vector<int64_t> own;
        double n_all = 0, n_own = 0;
        for (int64_t i = m * mb + a * micro; i < m * mb + (a + 1) * micro; ++i) {
          n_all += len_of[order[i]];
          if (!shard.owns(order[i])) continue;
          own.push_back(order[i] - shard.row_lo());
          n_own += len_of[order[i]];
        }
        const double w = n_own == n_all ? 1.0 : n_own / n_all;  // one process: exactly 1
        MicroLoss ml;
        torch::Tensor loss;
        if (!own.empty()) {
          ml = micro_loss(cfg, models, r, sc, adv, torch::tensor(own, torch::kInt64).to(device), beta);
          loss = w == 1.0 ? ml.loss : ml.loss * w;
        }
        double ptx = 0;
        if (cfg.ptx_coef > 0) {  // the same examples on every rank, each with 1/W of the term
          const int64_t draw =
              (it * cfg.ppo_epochs + epoch) * cfg.num_minibatches * cfg.grad_accum + m * cfg.grad_accum + a;
          auto pl = ptx_loss(*models.policy, data.ptx, cfg.ptx_batch_size, data.pad_id, cfg.seed, draw);
          ptx = pl.item<double>();
          auto term = (cfg.ptx_coef / shard.ranks()) * pl;
          loss = loss.defined() ? loss + term : term;
        }
        const bool finite = !loss.defined() || std::isfinite(loss.item<double>());
        auto g = micro_global(shard, cfg, ml, w, n_own, finite);
        if (cfg.ptx_coef > 0) g.metrics.push_back({"ptx_loss", ptx});
        mb_approx_kl += g.approx_kl / cfg.grad_accum;
        if (!g.finite) {
          out.skipped = nonfinite("loss", it);
          opt.policy.zero_grad();
          if (opt.critic) opt.critic->zero_grad();
          break;
        }
        if (loss.defined()) (loss / static_cast<double>(cfg.grad_accum)).backward();
        upd.add(g.metrics);
      }
      if (out.skipped) break;
      const double gn = step_model(shard, opt.policy, opt.zero_policy.get(), lr, cfg.max_grad_norm);
      train::Metrics gm{{"grad_norm", gn}, {"lr", lr}};
      if (opt.critic)
        gm.push_back({"critic_grad_norm", step_model(shard, *opt.critic, opt.zero_critic.get(), clr, cfg.max_grad_norm)});
      upd.add(gm);
      if (cfg.target_approx_kl > 0 && mb_approx_kl > cfg.target_approx_kl) early_stop = true;
    }
    if (!out.skipped) ++out.epochs;
  }
  out.metrics = upd.mean();
  return out;
}

struct Timings {
  double rollout_s = 0, scoring_s = 0, train_s = 0;  // scoring_s: score_step + advantages_step
};

// What the iteration's metrics and the β controller read of every row of the global batch (B,), the same on
// every rank: one exchange (RLShard::gather_rows) of a (b, 6) table of the rank's rows.
struct RowStats {
  torch::Tensor raw_score, score, seq_kl;  // RM(x, y) (or the hook's), s after its transformations, Σ_t KL_t
  torch::Tensor has_eos, length, entropy;  // 1/0; valid tokens; Σ_t H_t over them
};

RowStats row_stats(const Scored& sc, const torch::Tensor& seq_kl, const Rollout& r, const RLShard& shard) {
  auto local = torch::stack({sc.raw_score.to(torch::kFloat32), sc.score.to(torch::kFloat32), seq_kl.to(torch::kFloat32),
                             r.has_eos.to(torch::kFloat32), r.response_mask.sum(1), sc.entropy.sum(1)},
                            1);  // (b, 6)
  auto all = shard.gather_rows(local, "rollout statistics").cpu();
  return {all.select(1, 0), all.select(1, 1), all.select(1, 2), all.select(1, 3), all.select(1, 4), all.select(1, 5)};
}

// The metrics of one iteration, in the order of metrics.jsonl: score (mean raw score), kl (mean KL_seq), beta
// (after this iteration's update), reward (mean s − β·KL_seq), policy_loss, value_loss, clip_frac, approx_kl (NaN
// when no update ran), entropy, response_length, eos_frac, tokens_per_s, the three timings, the update's other
// means, epochs, skipped. In: the global batch's RowStats and kl_mean = mean KL_seq; this rank's timings.
train::Metrics iteration_metrics(const RowStats& g, double kl_mean, double beta, const Update& upd, const Timings& t,
                                 int64_t skipped) {
  const double tokens = g.length.sum().item<double>();
  const double total_s = t.rollout_s + t.scoring_s + t.train_s;
  train::Metrics met{{"score", g.raw_score.mean().item<double>()},
                     {"kl", kl_mean},
                     {"beta", beta},
                     {"reward", (g.score - beta * g.seq_kl).mean().item<double>()}};
  const auto& um = upd.metrics;
  for (const char* k : {"policy_loss", "value_loss", "clip_frac", "approx_kl"}) {
    double v = std::nan("");
    for (auto& [n, x] : um)
      if (n == k) v = x;
    met.push_back({k, v});
  }
  met.push_back({"entropy", g.entropy.sum().item<double>() / std::max(tokens, 1.0)});
  met.push_back({"response_length", g.length.mean().item<double>()});
  met.push_back({"eos_frac", g.has_eos.mean().item<double>()});
  met.push_back({"tokens_per_s", tokens / std::max(total_s, 1e-9)});
  met.push_back({"rollout_s", t.rollout_s});
  met.push_back({"scoring_s", t.scoring_s});
  met.push_back({"train_s", t.train_s});
  for (auto& [n, x] : um)
    if (n != "policy_loss" && n != "value_loss" && n != "clip_frac" && n != "approx_kl") met.push_back({n, x});
  met.push_back({"epochs", static_cast<double>(upd.epochs)});
  met.push_back({"skipped", static_cast<double>(skipped)});
  return met;
}

// Recording of iteration `it`: `gold` (the judge's mean over the global batch's rows) appended to met when
// hooks.gold and a formatter are set; the first num_samples rows to samples.jsonl every samples_every iterations
// (text through the formatter, else token ids; of several ranks, rank 0's rows, the batch's first); then
// metrics.jsonl, the progress line and hooks.on_iteration get met.
void record_step(const PPOConfig& cfg, const RLData& data, const RLHooks& hooks, const Sampled& s,
                 const Scored& sc, const torch::Tensor& seq_kl, int64_t it, train::Metrics& met, Outputs& out,
                 const RLShard& shard) {
  const Rollout& r = s.rollout;
  const auto& mask = r.response_mask;
  // Text for the gold judge and the samples file.
  const bool want_samples = out.log && cfg.samples_every > 0 && (it + 1) % cfg.samples_every == 0;
  std::vector<std::string> prompts_text, responses_text;
  if (data.formatter && (hooks.gold || want_samples)) {
    auto resp = r.response_ids.cpu();
    for (int64_t b = 0; b < r.batch(); ++b) {
      prompts_text.push_back(data.formatter->prompt_text(data.prompts[s.prompt_of_row[b]].prompt));
      responses_text.push_back(data.formatter->decode_response(to_vector(resp[b])));
    }
  }
  if (hooks.gold && data.formatter) {
    double g = 0;
    for (size_t b = 0; b < prompts_text.size(); ++b) g += hooks.gold(prompts_text[b], responses_text[b]);
    const auto tot = shard.sum({g, static_cast<double>(prompts_text.size())}, "gold judgements");
    met.push_back({"gold", tot[0] / tot[1]});
  }
  if (want_samples) {
    for (int64_t b = 0; b < std::min<int64_t>(cfg.num_samples, r.batch()); ++b) {
      json j{{"iteration", it + 1}, {"score", sc.raw_score[b].item<double>()}, {"kl", seq_kl[b].item<double>()}};
      if (data.formatter) {
        j["prompt"] = prompts_text[b];
        j["response"] = responses_text[b];
      } else {
        j["prompt_ids"] = data.prompts[s.prompt_of_row[b]].ids;
        auto resp = to_vector(r.response_ids[b]);
        resp.resize(static_cast<size_t>(mask[b].sum().item<double>()));
        j["response_ids"] = resp;
      }
      out.samples << j.dump() << "\n";
    }
    out.samples.flush();
  }
  if (out.log) out.log->log(it + 1, met);
  out.update(it + 1, met);
  if (hooks.on_iteration) hooks.on_iteration(it + 1, met);
}

// After iteration `it` (0-based), every save_every iterations and after the last: OUT/checkpoint with the state
// "it + 1 iterations done" (st is the state of iteration `it`); failure messages name it from then on. Of several
// ranks, rank 0 writes (every rank holds the same weights, optimizer moments and state) and the others wait for it.
void checkpoint_step(const PPOConfig& cfg, RLModels& models, Optimizers& opt, const RunState& st,
                     const RLData& data, int64_t it, Outputs& out, const RLShard& shard) {
  const bool last = it + 1 == cfg.iterations;
  if (!cfg.out.empty() && ((cfg.save_every > 0 && (it + 1) % cfg.save_every == 0) || last)) {
    RunState next = st;
    next.iteration = it + 1;
    opt.gather_state();  // ZeRO-1: every tensor's moments on rank 0 for the write (the same file as without)
    if (shard.is_main()) save_rl_checkpoint(cfg, models, opt.policy, opt.critic.get(), next, data);
    opt.drop_foreign_state();
    if (shard.distributed()) shard.world()->barrier("checkpoint " + checkpoint_dir(cfg));
    out.last_good = cat(checkpoint_dir(cfg), " (iteration ", it + 1, ")");
  }
}

// The models' modes for training: π_ref and the reward model frozen; π and V trainable. All in eval(): there is no
// dropout in these models; eval() everywhere all the same (Huang et al.).
void prepare_models(RLModels& models) {
  if (models.ref != models.policy) freeze(*models.ref);
  if (models.reward) freeze(*models.reward);
  models.policy->eval();
  if (models.policy_lora) lora::install_adapters(*models.policy, *models.policy_lora);  // base frozen, adapters not
  else
    for (auto& p : models.policy->parameters()) p.set_requires_grad(true);
  if (models.critic) {
    models.critic->eval();
    if (models.critic_lora) lora::install_adapters(*models.critic, *models.critic_lora);  // the RM's body frozen
    else
      for (auto& p : models.critic->parameters()) p.set_requires_grad(true);
  }
}

// The run's state at the start: β from the config, or (--resume) the state and optimizer moments of
// OUT/checkpoint, which then becomes the last good checkpoint.
RunState start_state(const PPOConfig& cfg, Optimizers& opt, std::string& last_good) {
  RunState st;
  st.kl.beta = cfg.kl_coef;
  st.kl.adaptive = cfg.adaptive_kl;
  st.kl.target = cfg.kl_target;
  st.kl.horizon = cfg.kl_horizon;
  if (cfg.resume) {
    RLHF_CHECK(!cfg.out.empty() && train::is_checkpoint(checkpoint_dir(cfg)), checkpoint_dir(cfg),
               ": no checkpoint to resume from (hint: drop --resume for a fresh run)");
    std::vector<train::CheckpointOptimizer> opts{{"optimizer", &opt.policy}};
    if (opt.critic) opts.push_back({"critic_optimizer", opt.critic.get()});
    auto ts = train::load_checkpoint(checkpoint_dir(cfg), opts);
    st.from_json(ts.state);
    last_good = checkpoint_dir(cfg);
  }
  return st;
}

// Runs f; an rlhf::Error from it (a reward server down, a malformed answer) gets the last good checkpoint
// appended, so the message says what is safe to resume from. Nothing is written on the way out.
template <class F>
auto with_last_good(const Outputs& out, F&& f) {
  try {
    return f();
  } catch (const Error& e) {
    fail(e.what(), ". Last good checkpoint: ", out.last_good);
  }
}

// Held-out evaluation is due after `done` iterations: before the first (done = 0), every eval_every, and after
// the last.
bool eval_due(const PPOConfig& cfg, const RLData& data, int64_t done, const Outputs& out) {
  if (data.eval_prompts.empty() || !out.main) return false;  // rank 0 evaluates; the others go on
  return done == 0 || done == cfg.iterations || (cfg.eval_every > 0 && done % cfg.eval_every == 0);
}

// Evaluation after `done` iterations: eval_samples answers per eval prompt, sampled as the rollouts are (τ,
// top-k, top-p, up to max_new_tokens, cut at the stop token) from a generator seeded by the seed alone, so every
// evaluation draws from the same stream; or one greedy answer each (eval_greedy). Scored like the rollouts (the
// score hook or the reward model, raw: no penalty, scale or normalisation) and logged as an eval row of
// metrics.jsonl ({"step": done, "split": "eval", "score", "eos_frac", "response_length", reward/<name>...}; the
// report plots eval_score, eval_reward/<name>, ...): with rule:numeric, eval_reward/numeric is the accuracy.
int eval_step(const PPOConfig& cfg, RLModels& models, const RLHooks& hooks, const RLData& data, int64_t done,
              Outputs& out) {
  torch::NoGradGuard ng;
  SamplingOptions so;
  so.greedy = cfg.eval_greedy;
  so.stop_at_eos = true;
  so.max_new_tokens = static_cast<int>(cfg.max_new_tokens);
  so.temperature = static_cast<float>(cfg.temperature);
  so.top_k = static_cast<int>(cfg.top_k);
  so.top_p = static_cast<float>(cfg.top_p);
  const int64_t K = cfg.eval_greedy ? 1 : cfg.eval_samples;
  std::vector<int64_t> jobs;  // prompt index of each answer
  for (int64_t i = 0; i < static_cast<int64_t>(data.eval_prompts.size()); ++i)
    for (int64_t k = 0; k < K; ++k) jobs.push_back(i);
  const int64_t n = static_cast<int64_t>(jobs.size()), chunk = 64;
  double score_sum = 0, eos_sum = 0, len_sum = 0;
  std::vector<std::pair<std::string, double>> comp_sums;
  auto gen = at::detail::createCPUGenerator(cfg.seed * 1000003ULL + 999331ULL);
  for (int64_t start = 0; start < n; start += chunk) {
    const int64_t end = std::min(n, start + chunk);
    std::vector<std::vector<int64_t>> ids;
    std::vector<int64_t> rows(jobs.begin() + start, jobs.begin() + end);
    for (auto i : rows) ids.push_back(data.eval_prompts[static_cast<size_t>(i)].ids);
    Rollout r = rollout_generate(*models.policy, ids, so, data.stop_ids, data.pad_id, gen);
    train::Metrics comps;
    auto q = score_query(data, data.eval_prompts, r, rows, done);
    auto sc = raw_scores(models, hooks, q, &comps);
    const double w = static_cast<double>(end - start);
    score_sum += sc.sum().item<double>();
    eos_sum += r.has_eos.to(torch::kFloat32).sum().item<double>();
    len_sum += r.response_mask.sum().item<double>();
    for (size_t k = 0; k < comps.size(); ++k) {
      if (comp_sums.size() <= k) comp_sums.push_back({comps[k].first, 0.0});
      comp_sums[k].second += comps[k].second * w;
    }
  }
  const double N = static_cast<double>(n);
  train::Metrics met{{"score", score_sum / N}, {"eos_frac", eos_sum / N}, {"response_length", len_sum / N}};
  for (auto& [k, v] : comp_sums) met.push_back({k, v / N});
  if (out.log) out.log->log(done, met, "eval");
  out.note(cat("eval after ", done, " iterations (", data.eval_prompts.size(), " prompts × ", K,
                        cfg.eval_greedy ? ", greedy" : " samples", "): ", train::format_metrics(met)));
  return 0;
}

}  // namespace

std::vector<train::Metrics> rl_train(const PPOConfig& cfg, RLModels& models, const RLData& data,
                                     const RLHooks& hooks, dist::World* world) {
  cfg.validate();
  const bool is_ppo = cfg.algo == "ppo";
  RLHF_CHECK(models.policy && models.ref, "rl_train: policy and reference models are required");
  RLHF_CHECK(!is_ppo || models.critic, "rl_train: PPO needs a critic");
  RLHF_CHECK(models.reward || hooks.score, "rl_train: give a reward model or a score hook");
  RLHF_CHECK(!data.prompts.empty(), "rl_train: no prompts");
  RLHF_CHECK(cfg.ptx_coef == 0 || !data.ptx.empty(), "--ptx-coef > 0 needs --ptx-data");
  const KLEstimator est = parse_kl_estimator(cfg.kl_estimator);
  if (!cfg.out.empty()) fs::create_directories(cfg.out);
  prepare_models(models);
  Optimizers opt(cfg, models);
  const int64_t G = is_ppo ? 1 : cfg.group_size;
  const int64_t rows = cfg.batch_size * G;
  const RLShard shard(world, cfg.batch_size, G);
  std::string last_good = "(none yet)";
  RunState st = start_state(cfg, opt, last_good);
  if (shard.distributed()) {  // every rank starts from rank 0's trained weights (adapters, heads, models)
    dist::broadcast_parameters(*world, opt.policy.params());
    if (opt.critic) dist::broadcast_parameters(*world, opt.critic->params());
    if (world->options().zero == 1) {
      opt.shard_state(*world);
      opt.drop_foreign_state();  // after --resume: keep this rank's tensors' moments
    }
  }
  Outputs out(cfg, st, last_good, shard.is_main());
  const NonFinite nonfinite = [&](const std::string& what, int64_t it) -> bool {
    if (cfg.skip_nonfinite) {
      ++st.skipped;
      out.note(cat("iteration ", it + 1, ": non-finite ", what, "; batch skipped (", st.skipped, " so far)"));
      return true;
    }
    fail("iteration ", it + 1, ": non-finite ", what, "; the run stops here. Last good checkpoint: ", out.last_good,
         " (hint: lower --lr, raise --kl-coef, or pass --skip-nonfinite to skip such batches)");
  };
  std::vector<train::Metrics> history;
  if (st.iteration == 0 && eval_due(cfg, data, 0, out))
    with_last_good(out, [&] { return eval_step(cfg, models, hooks, data, 0, out); });

  for (; st.iteration < cfg.iterations; ++st.iteration) {
    const int64_t it = st.iteration;
    Timings t;
    auto t0 = Clock::now();
    const Sampled s = rollout_step(cfg, *models.policy, data, G, it, shard);  // 1
    t.rollout_s = seconds_since(t0);

    auto t1 = Clock::now();
    const Scored sc = with_last_good(out, [&] {
      return score_step(cfg, models, hooks, data, s, it, est, st.score_moments, shard);  // 2, KL_t of 3
    });
    const Advantages adv = advantages_step(cfg, sc, s.rollout.response_mask, st.kl.beta, shard);  // r_t of 3, 4
    t.scoring_s = seconds_since(t1);
    const auto seq_kl = sc.kl.sum(1);                             // (B,) KL_seq of this rank's rows
    const RowStats g = row_stats(sc, seq_kl, s.rollout, shard);  // every row of the global batch
    const double kl_mean = g.seq_kl.mean().item<double>();
    bool skip = false;
    if (!all_finite(g.seq_kl) || !all_finite(g.raw_score)) skip = nonfinite("KL or score", it);

    auto t2 = Clock::now();
    const Update upd = skip ? Update{}
                            : update_step(cfg, models, data, opt, s.rollout, sc, adv, g.length, st.kl.beta, it,
                                          nonfinite, shard);  // 5
    t.train_s = seconds_since(t2);
    skip = skip || upd.skipped;

    if (!skip) st.kl.update(kl_mean, rows);  // 6. β
    auto met = iteration_metrics(g, kl_mean, st.kl.beta, upd, t, st.skipped);
    met.insert(met.end(), sc.components.begin(), sc.components.end());
    record_step(cfg, data, hooks, s, sc, seq_kl, it, met, out, shard);
    history.push_back(met);
    checkpoint_step(cfg, models, opt, st, data, it, out, shard);  // state: `it + 1` iterations done
    if (eval_due(cfg, data, it + 1, out))
      with_last_good(out, [&] { return eval_step(cfg, models, hooks, data, it + 1, out); });
  }
  out.finish();
  return history;
}

namespace {

// PPO-ptx examples: {"prompt","response"} or {"messages"} (loss on the response / assistant tokens) or {"text"}
// (loss on every token).
std::vector<train::TokenSeq> read_ptx(const std::string& path, const Formatter& fmt, int64_t max_tokens) {
  std::vector<train::TokenSeq> out;
  train::read_jsonl(path, {}, [&](const json& j, int64_t) {
    train::TokenSeq s;
    if (train::has_field(j, "messages")) {
      auto [ids, m] = fmt.encode_conversation(train::field(j, "messages", "a list of messages"));
      s.ids = ids;
      s.loss_mask = m;
    } else if (train::has_field(j, "text")) {
      auto ids = fmt.tokenizer().encode(train::string_field(j, "text"), true);
      s.ids.assign(ids.begin(), ids.end());
    } else {
      auto p = fmt.encode(train::field(j, "prompt", "a string or messages (or use \"text\" / \"messages\")"),
                          train::string_field(j, "response"));
      s.ids = p.prompt;
      s.loss_mask.assign(p.prompt.size(), 0);
      s.ids.insert(s.ids.end(), p.response.begin(), p.response.end());
      s.loss_mask.insert(s.loss_mask.end(), p.response.size(), 1);
    }
    if (max_tokens > 0 && static_cast<int64_t>(s.ids.size()) > max_tokens) {
      s.ids.resize(max_tokens);
      if (!s.loss_mask.empty()) s.loss_mask.resize(max_tokens);
    }
    RLHF_CHECK(s.ids.size() >= 2, "an example needs at least 2 tokens");
    out.push_back(std::move(s));
  });
  return out;
}

}  // namespace

std::vector<train::Metrics> run_rl(const PPOConfig& cfg, const RLHooks& hooks, dist::World* world) {
  cfg.validate();
  RLHF_CHECK(!cfg.policy.empty() && !cfg.prompts.empty() && !cfg.out.empty(),
             "ppo: --policy, --prompts and --out are required");
  RLHF_CHECK(!cfg.reward.empty() || hooks.score, "ppo: --reward is required");
  const auto device = resolve_device(cfg.device);
  const bool is_ppo = cfg.algo == "ppo";
  const std::string ck = checkpoint_dir(cfg);
  if (cfg.resume)
    RLHF_CHECK(train::is_checkpoint(ck), ck, ": no checkpoint to resume from (hint: drop --resume for a fresh run)");

  LoadOptions lm;
  lm.head = "lm";
  lm.device = device;
  RLModels models;
  if (cfg.lora.enabled()) {
    // One copy of the policy's weights: the base, frozen, with adapters (fresh, or the checkpoint's).
    models.policy = load_model(cfg.policy, lm);
    models.policy_lora = cfg.resume ? lora::load_peft_adapter(*models.policy, ck)
                                    : lora::attach_lora(*models.policy, cfg.lora, cfg.seed);
    if (cfg.resume) {
      const auto& got = models.policy_lora->options;
      RLHF_CHECK(got.r == cfg.lora.r && got.alpha == cfg.lora.alpha && got.use_rslora == cfg.lora.use_rslora, ck,
                 ": its adapter has r = ", got.r, ", alpha = ", got.alpha, " but the flags say r = ", cfg.lora.r,
                 ", alpha = ", cfg.lora.alpha, " (hint: resume with the flags of the run that wrote it)");
      for (const auto& e : models.policy_lora->entries) e.lora->dropout = cfg.lora.dropout;
    }
    models.ref = models.policy;
  } else {
    RLHF_CHECK(!cfg.resume || !lora::is_peft_adapter(ck), ck,
               " holds a LoRA adapter: pass the same --lora-r (and --lora-* flags) as the run that wrote it");
    models.policy = load_model(cfg.resume ? ck : cfg.policy, lm);
    models.ref = load_model(cfg.policy, lm);
  }
  if (!cfg.reward.empty() && !hooks.score) {  // with a score hook, cfg.reward is only the critic's start
    LoadOptions ro;
    ro.device = device;
    models.reward = load_model(cfg.reward, ro);
    RLHF_CHECK(models.reward->has_score_head() && models.reward->config().num_labels == 1, cfg.reward, ": ",
               models.reward->config().architecture, " is not a reward model with one label");
  }
  if (is_ppo) {
    LoadOptions co;
    co.head = "score";
    co.device = device;
    const auto rm_body = models.reward ? models.reward : hooks.reward_model;
    if (models.policy_lora && cfg.critic.empty() && cfg.critic_init == "reward" && rm_body) {
      // The critic as an adapter of its own on the reward model's frozen body (loaded for scoring anyway): V = the
      // reward model with the critic's adapters and its own copy of the head (PEFT's modules_to_save), started
      // from the reward model's head as --critic-init reward starts a full critic; with the adapters off the same
      // weights are the reward model exactly. No second copy of the reward model, no optimizer state for it.
      models.critic = rm_body;
      models.critic->make_adapter_score_head();
      const std::string critic_ck = (fs::path(ck) / "critic").string();
      if (cfg.resume) {
        RLHF_CHECK(lora::is_peft_adapter(critic_ck), critic_ck,
                   ": not an adapter folder (this checkpoint was written by a run whose critic was a full model)");
        models.critic_lora = lora::load_peft_adapter(*models.critic, critic_ck);
        for (const auto& e : models.critic_lora->entries) e.lora->dropout = cfg.lora.dropout;
      } else {
        // Its own draw of A (seed + 1): the critic's adapters are not the policy's.
        models.critic_lora = lora::attach_lora(*models.critic, cfg.lora, cfg.seed + 1);
      }
    } else if (cfg.resume) {
      models.critic = load_model((fs::path(ck) / "critic").string(), co);
    } else if (!cfg.critic.empty()) {
      models.critic = load_model(cfg.critic, co);
    } else if (cfg.critic_init == "reward") {
      RLHF_CHECK(!cfg.reward.empty(), "ppo: --critic-init reward needs --reward (or give --critic)");
      models.critic = load_model(cfg.reward, co);
    } else {
      co.score_init = "zeros";
      models.critic = load_model(cfg.policy, co);
    }
  }
  if (cfg.memory.frozen_bf16()) {
    // Every frozen model at rest in bf16, computed in fp32: π_ref (or the base under π's adapters) and the reward
    // model (also under the critic's adapters). The trained weights (adapters, heads, full models) stay fp32.
    const auto bf16 = [](TransformerLM& m, bool freeze_all) {
      if (freeze_all) freeze(m);
      m.store_frozen_weights(torch::kBFloat16);
    };
    if (models.policy_lora) bf16(*models.policy, false);
    else bf16(*models.ref, true);
    const auto rm = models.reward ? models.reward : hooks.reward_model;
    if (rm) bf16(*rm, rm != models.critic);
  }
  models.policy->set_gradient_checkpointing(cfg.memory.gradient_checkpointing);
  if (models.critic) models.critic->set_gradient_checkpointing(cfg.memory.gradient_checkpointing);
  Formatter fmt = Formatter::from_dir(cfg.policy, cfg.chat);
  RLData data;
  data.formatter = &fmt;
  data.prompts = read_prompts(cfg.prompts, fmt, cfg.max_prompt_tokens);
  if (!cfg.eval_prompts.empty()) data.eval_prompts = read_prompts(cfg.eval_prompts, fmt, cfg.max_prompt_tokens);
  data.stop_ids = fmt.stop_ids();
  for (auto e : models.policy->config().eos_token_ids)
    if (std::find(data.stop_ids.begin(), data.stop_ids.end(), e) == data.stop_ids.end()) data.stop_ids.push_back(e);
  data.pad_id = fmt.pad_id();
  if (!cfg.ptx_data.empty()) data.ptx = read_ptx(cfg.ptx_data, fmt, cfg.ptx_max_tokens);

  auto history = rl_train(cfg, models, data, hooks, world);
  if (world && !world->is_main()) return history;  // rank 0 writes final/
  const std::string final_dir = (fs::path(cfg.out) / "final").string();
  SaveOptions so;
  so.source_dir = cfg.policy;
  so.dtype = save_dtype_from_flag(cfg.save_dtype);
  so.max_shard_bytes = parse_shard_size(cfg.max_shard_size);
  if (models.policy_lora) lora::save_peft_adapter(*models.policy, *models.policy_lora, final_dir, {cfg.policy, cfg.policy});
  else save_model(*models.policy, final_dir, so);
  save_format(final_dir, fmt.options());
  return history;
}

}  // namespace rlhf
