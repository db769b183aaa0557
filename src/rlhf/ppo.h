// PPO against a reward model with a per-token KL penalty to the reference policy (Ziegler et al. 2019,
// InstructGPT, Huang et al. 2024), and the critic-free GRPO / RLOO that share its rollout, scoring and loop.
// The math is at the top of ppo.cpp; grpo.h has the critic-free advantages and loss.
//
// Four networks, explicit: policy π (trained), reference π_ref (frozen copy of the starting policy), critic V
// (trained; PPO only; initialised from the reward model by default), reward model r (frozen, eval).
#pragma once
#include <torch/types.h>

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "dist/world.h"
#include "lora/adapters.h"
#include "model/model.h"
#include "rlhf/rollout.h"
#include "train/batching.h"
#include "train/memory_options.h"
#include "train/metrics.h"

namespace rlhf {

// One flat config for `rlhf ppo` (every flag is a field; defaults commented with where they come from).
struct PPOConfig {
  // --- inputs / outputs
  std::string policy;         // SFT model folder: the starting policy and the frozen reference
  std::string reward;         // reward model folder (*ForSequenceClassification, 1 label)
  std::string prompts;        // JSONL: {"prompt": str} or {"messages": [...]}
  std::string out;            // output folder: metrics.jsonl, samples.jsonl, checkpoint/, final/
  std::string save_dtype;     // final/'s stored dtype: "" keeps the policy's | fp32 | bf16 (checkpoint/ keeps fp32)
  std::string max_shard_size; // shard final/ and checkpoint/ above this size ("5GB", "2GiB"; "": one file)
  std::string report_to = "none";  // none | tensorboard (OUT/runs/ event files beside metrics.jsonl)
  std::string critic;         // value model folder; "" = from critic_init
  std::string critic_init = "reward";  // reward: the RM's body and head (TRL, OpenRLHF); policy: zero-init head
  std::string algo = "ppo";   // ppo | grpo | rloo
  int chat = -1;              // -1: as the policy's rlhf_format.json says; 0/1: force plain / chat prompts
  bool resume = false;        // continue from OUT/checkpoint
  // LoRA on the policy (--lora-r > 0): only its adapters train; the reference is the policy with its adapters off
  // (no second copy of the weights); checkpoint/ and final/ are PEFT adapter folders. The critic (PPO, with
  // --critic-init reward and no --critic) is an adapter of its own on the reward model's frozen body, with its own
  // copy of the head; otherwise a full model trained in full.
  lora::LoraOptions lora;
  train::MemoryOptions memory;  // --gradient-checkpointing: the policy's and the critic's training forwards

  // --- rollout
  int64_t iterations = 100;       // rollout + update rounds
  int64_t batch_size = 16;        // prompts per iteration (GRPO/RLOO: × group_size samples)
  int64_t group_size = 4;         // G samples per prompt (grpo, rloo; ppo uses 1)
  double temperature = 0.7;       // TRL default; log-probs use the same τ for π and π_ref
  int64_t top_k = 0;              // 0: off
  double top_p = 1.0;             // 1: off
  int64_t max_new_tokens = 53;    // TRL default
  int64_t max_prompt_tokens = 0;  // > 0: keep the last tokens of longer prompts

  // --- scoring
  std::string kl_estimator = "k1";  // k1 (log ratio) | k3 ((ratio − 1) − log ratio, ≥ 0)
  double kl_coef = 0.05;            // β₀ (TRL 0.05; DS-Chat 0.1; OpenRLHF 0.01; GRPO: the loss coefficient)
  bool adaptive_kl = false;         // Ziegler et al. controller
  double kl_target = 6.0;           // nats per sequence (old TRL default)
  double kl_horizon = 10000;        // samples (old TRL default)
  double missing_eos_penalty = 0;   // s −= penalty for a response without EOS (0: off; Huang et al. use one)
  double score_scale = 1.0;         // s ·= scale
  bool normalize_score = false;     // s ← (s − running mean) / running std
  double score_clip = 0;            // |s| ≤ clip after the above (0: off)

  // --- update
  int64_t ppo_epochs = 4;           // TRL 4
  int64_t num_minibatches = 1;      // TRL 1
  int64_t grad_accum = 1;           // micro-batches per minibatch
  double lr = 3e-6;                 // policy (TRL 3e-6; tiny models need ~1e-3)
  double critic_lr = 1e-5;          // critic (anchors 5e-6 to 1e-5)
  std::string lr_schedule = "linear";  // linear | cosine | constant over all optimizer steps (TRL: linear)
  int64_t warmup_steps = 0;
  double adam_eps = 1e-5;           // OpenAI's lm-human-preferences (Huang et al. detail); torch default 1e-8
  double weight_decay = 0;
  double max_grad_norm = 1.0;       // per model; 0: off
  double clip_eps = 0.2;            // ε of the clipped surrogate
  double vf_clip = 0.2;             // ε_v of the clipped value loss (OpenRLHF/veRL 0.5)
  double vf_coef = 0.1;             // c_v
  double ent_coef = 0.0;            // entropy bonus (0: off)
  double gamma = 1.0;               // GAE γ
  double lam = 0.95;                // GAE λ (TRL, DS-Chat; OpenRLHF/veRL 1)
  bool whiten_advantages = true;    // mean 0, std 1 over valid tokens (PPO); GRPO normalises per group
  bool whiten_rewards = false;      // per-token rewards scaled to std 1, mean kept
  double target_approx_kl = 0;      // stop this iteration's epochs once approx-KL exceeds it (0: off)
  double grpo_eps = 1e-4;           // A = (s − mean)/(std + eps) (TRL)

  // --- PPO-ptx (InstructGPT eq. 2)
  std::string ptx_data;             // JSONL {"prompt","response"} | {"messages"} | {"text"}; "" = off
  double ptx_coef = 0;              // γ_ptx
  int64_t ptx_batch_size = 8;       // examples per minibatch
  int64_t ptx_max_tokens = 256;     // truncate longer examples

  // --- held-out evaluation: answers to eval_prompts, scored like the rollouts (eval_score, eval_reward/…)
  std::string eval_prompts;         // JSONL like prompts ("" = off)
  int64_t eval_every = 0;           // iterations between evaluations (0: only before the first and after the last)
  int64_t eval_samples = 1;         // answers per eval prompt, sampled as the rollouts (τ, top-k, top-p)
  bool eval_greedy = false;         // greedy answers instead (one per prompt)

  // --- run
  uint64_t seed = 0;
  int64_t save_every = 10;          // iterations between checkpoints (0: only at the end)
  int64_t samples_every = 10;       // iterations between samples.jsonl entries (0: off)
  int64_t num_samples = 4;          // samples written each time
  int64_t log_every = 1;            // iterations between log lines
  bool skip_nonfinite = false;      // NaN/inf loss or KL: skip the batch and count it instead of stopping
  std::string device = "cpu";       // set by the command from --device

  void validate() const;  // throws with the allowed values
  nlohmann::json to_json() const;
};

// What a reward function gets of one rollout batch (B rows): the tokens, each row's prompt line, and the text.
struct ScoreQuery {
  const Rollout& rollout;                   // (B, P + N) tokens
  std::vector<const Prompt*> prompts;       // (B,) the prompt line of each row (Prompt::row keeps extra fields)
  std::vector<std::string> prompt_text;     // (B,) the prompt as the policy saw it (chat template applied)
  std::vector<std::string> response_text;   // (B,) cut at the stop token, special tokens skipped
  std::vector<std::string> query_text;      // (B,) prompt + response tokens decoded with special tokens
  int64_t iteration = 0;                    // 1-based
};                                          // the texts are empty when RLData has no formatter

struct ScoreResult {
  torch::Tensor score;         // (B,) s before the missing-EOS penalty, scale, normalisation and clip
  train::Metrics components;   // logged after the iteration's metrics (e.g. reward/numeric)
};

// Hooks for callers of the library (the command, the demo, the tests).
struct RLHooks {
  // A gold judge: logged as `gold` (mean over the batch) when set. Needs text, so a Formatter.
  std::function<double(const std::string& prompt, const std::string& response)> gold;
  // Replaces the reward model: `rlhf ppo --reward` (reward/reward_set.h: folders, servers, commands, rules and
  // their combination) and scripted rewards in tests. An exception names what failed; the loop adds the
  // iteration's last good checkpoint.
  std::function<ScoreResult(const ScoreQuery&)> score;
  // The reward model behind `score`, when it has one (the first reward-model folder of --reward): with LoRA the
  // PPO critic is an adapter on its frozen body instead of a second copy; `score` then runs with those adapters off.
  std::shared_ptr<TransformerLM> reward_model;
  // Called after each iteration with its metrics.
  std::function<void(int64_t iteration, const train::Metrics&)> on_iteration;
};

struct RLModels {
  std::shared_ptr<TransformerLM> policy;  // trained
  std::shared_ptr<TransformerLM> ref;     // frozen
  std::shared_ptr<TransformerLM> critic;  // trained, PPO only (null for grpo/rloo)
  std::shared_ptr<TransformerLM> reward;  // frozen; may be null when hooks.score is set
  // LoRA (PPOConfig::lora): the policy's adapters; then ref is the policy itself, scored with the adapters off.
  std::shared_ptr<lora::LoraAdapters> policy_lora;
  // LoRA with --critic-init reward: the critic's adapters on the reward model; then critic == reward (one object),
  // which scores with these adapters off and estimates values with them on.
  std::shared_ptr<lora::LoraAdapters> critic_lora;
};

struct RLData {
  std::vector<Prompt> prompts;
  std::vector<Prompt> eval_prompts;  // held-out prompts (PPOConfig::eval_prompts; empty: no evaluation)
  std::vector<train::TokenSeq> ptx;  // PPO-ptx examples (empty: off)
  const Formatter* formatter = nullptr;  // for samples.jsonl text and the gold hook (null: ids only)
  std::vector<int64_t> stop_ids;
  int64_t pad_id = 0;
};

// ---- the pieces, each tested on its own ----

// Per-token rewards r_t = −β·KL_t, plus score on the last real token. kl, mask: (B, N); score: (B,).
torch::Tensor per_token_rewards(const torch::Tensor& kl, const torch::Tensor& score, const torch::Tensor& mask,
                                double beta);

struct PolicyLoss {
  torch::Tensor loss;  // scalar, differentiable
  double clip_frac = 0, approx_kl = 0, ratio_mean = 0, ratio_var = 0;
};
// logp, old_logp, advantages, mask: (B, N). L = mean_valid(max(−A·ρ, −A·clip(ρ, 1−ε, 1+ε))), ρ = e^{logp − old}.
PolicyLoss ppo_policy_loss(const torch::Tensor& logp, const torch::Tensor& old_logp, const torch::Tensor& advantages,
                           const torch::Tensor& mask, double clip_eps);

struct ValueLoss {
  torch::Tensor loss;  // scalar
  double clip_frac = 0;
};
// values, old_values, returns, mask: (B, N). L = ½·mean_valid(max((V − R)², (clip(V, V_old ± ε_v) − R)²)).
ValueLoss ppo_value_loss(const torch::Tensor& values, const torch::Tensor& old_values, const torch::Tensor& returns,
                         const torch::Tensor& mask, double vf_clip);

// Running mean / std of scores (Chan et al. parallel update), for normalize_score; saved in checkpoints.
struct RunningMoments {
  double mean = 0, var = 1;
  int64_t count = 0;
  void update(const torch::Tensor& x);  // x: (B,)
  double std() const;
};

// ---- the loop ----

// Iterations of rollout → scoring → update on the given models. When cfg.out is set, writes metrics.jsonl,
// samples.jsonl and checkpoints there (see run_rl). Returns the metrics of every iteration run (global metrics,
// the same on every rank). world (null: one process): data parallel over its ranks (rl_shard.h), every rank
// calling rl_train with the same config, models and prompts; rank 0 writes and evaluates.
std::vector<train::Metrics> rl_train(const PPOConfig& cfg, RLModels& models, const RLData& data,
                                     const RLHooks& hooks = {}, dist::World* world = nullptr);

// From folders: loads the four models (or resumes from OUT/checkpoint), the prompts and ptx data, runs rl_train
// and saves the final policy as a Hugging Face folder OUT/final (tokenizer files copied from cfg.policy; rank 0).
std::vector<train::Metrics> run_rl(const PPOConfig& cfg, const RLHooks& hooks = {}, dist::World* world = nullptr);

}  // namespace rlhf
