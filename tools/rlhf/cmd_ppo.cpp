// rlhf ppo --policy SFT_DIR --reward SPEC [--reward SPEC ...] --prompts FILE --out DIR [--algo ppo|grpo|rloo] ...
// Every field of rlhf::PPOConfig (src/rlhf/ppo.h, defaults commented there) is a flag here, and the reward
// functions' options (rlhf::reward::RewardOptions, src/reward/options.h); the resolved configs are printed at the
// start and saved as OUT/ppo_config.json (also in every checkpoint) and OUT/reward_config.json. Writes
// OUT/metrics.jsonl, OUT/samples.jsonl, OUT/checkpoint/ (policy, critic/, optimizer states, controller state) and
// OUT/final/ (the trained policy, a Hugging Face folder for `rlhf generate` and transformers).
#include <torch/torch.h>

#include <filesystem>
#include <iostream>

#include "command.h"
#include "common/runtime.h"
#include "common/error.h"
#include "reward/reward_set.h"
#include "reward/rules.h"
#include "rlhf/ppo.h"
#include "train/checkpoint.h"
#include "train_flags.h"

namespace {

// The prompt line's label for the reward functions: its label_key field, a string as it is, anything else
// (a number) as JSON text; none when the field is absent or null.
std::optional<std::string> label_of(const rlhf::Prompt& p, const std::string& key) {
  if (!p.row.is_object() || !p.row.contains(key) || p.row[key].is_null()) return std::nullopt;
  const auto& v = p.row[key];
  return v.is_string() ? v.get<std::string>() : v.dump();
}

// The reward of `rlhf ppo`: every --reward combined (reward/reward_set.h), as the loop's score hook.
std::function<rlhf::ScoreResult(const rlhf::ScoreQuery&)> score_hook(std::shared_ptr<rlhf::reward::RewardSet> rewards,
                                                                     std::string label_key) {
  return [rewards, label_key](const rlhf::ScoreQuery& q) {
    rlhf::reward::Batch b;
    b.prompts = q.prompt_text;
    b.responses = q.response_text;
    b.queries = q.query_text;
    b.rollout = &q.rollout;
    b.iteration = q.iteration;
    for (const auto* p : q.prompts) {
      b.labels.push_back(label_of(*p, label_key));
      b.sources.push_back(p->source);
    }
    auto c = rewards->score(b);
    return rlhf::ScoreResult{torch::tensor(c.total, torch::kFloat64).to(torch::kFloat32), c.metrics};
  };
}

// gold_judge: "" or "rule:NAME", a rule (reward/rules.h; e.g. the demo's hidden preference), logged as `gold` in
// metrics.jsonl next to the reward. It never enters the training signal.
int run_ppo(rlhf::PPOConfig cfg, rlhf::reward::RewardOptions ro, const std::string& gold_judge,
            const rlhf::dist::DistOptions& dist) {
  ro.validate();
  dist.validate();
  cfg.validate();
  // Several processes (torchrun / mpirun / srun): every rank runs the same config on the same files.
  auto device = rlhf::resolve_device(rlhf::cli::runtime_flags().device);
  auto config = nlohmann::json{{"ppo", cfg.to_json()}, {"reward", ro.to_json()}, {"gold_judge", gold_judge}};
  auto world = rlhf::cli::join_world(dist, device, config, {cfg.prompts, cfg.eval_prompts, cfg.ptx_data});
  cfg.device = world->distributed() ? device.str() : rlhf::cli::runtime_flags().device;
  rlhf::RLHooks hooks;
  if (!gold_judge.empty()) {
    RLHF_CHECK(gold_judge.rfind("rule:", 0) == 0, "--gold-judge must be rule:NAME, got \"", gold_judge, "\"");
    auto rule = rlhf::reward::find_rule(gold_judge.substr(5));
    hooks.gold = [rule](const std::string& p, const std::string& r) { return rule(p, r, std::nullopt); };
  }
  auto rewards = std::make_shared<rlhf::reward::RewardSet>(ro, cfg.device, /*load_models=*/true);
  cfg.reward = rewards->first_model_dir();  // what --critic-init reward starts the critic from
  RLHF_CHECK(cfg.algo != "ppo" || !cfg.critic.empty() || cfg.critic_init != "reward" || !cfg.reward.empty(),
             "ppo: --critic-init reward needs a reward-model folder among --reward (hint: with only servers, ",
             "commands or rules, pass --critic-init policy, or --algo grpo / rloo, which need no critic)");
  hooks.score = score_hook(rewards, ro.label_key);
  hooks.reward_model = rewards->first_model();
  cfg.validate();
  if (world->is_main()) {
    std::cerr << "ppo config: " << cfg.to_json().dump() << "\n";
    std::cerr << "reward config: " << ro.to_json().dump() << " (components: ";
    for (const auto& n : rewards->names()) std::cerr << n << (n == rewards->names().back() ? ")\n" : ", ");
    std::filesystem::create_directories(cfg.out);
    rlhf::train::write_json_atomic((std::filesystem::path(cfg.out) / "reward_config.json").string(), ro.to_json());
  }
  auto history = rlhf::run_rl(cfg, hooks, world.get());
  world->finish();
  if (!world->is_main()) return 0;  // rank 0 reports
  if (!history.empty()) {
    std::cerr << "done: " << history.size() << " iterations; final policy in " << cfg.out << "/final; "
              << rlhf::memory_summary() << "\n";
  }
  return 0;
}

rlhf::cli::Command reg{
    "ppo", "RL from a reward model: PPO with a KL penalty (or GRPO / RLOO)", [](CLI::App& app) {
      auto c = std::make_shared<rlhf::PPOConfig>();
      auto opt = [&](const char* name, auto& field, const char* help) {
        return app.add_option(name, field, help)->capture_default_str();
      };
      opt("--policy", c->policy, "SFT model folder (starting policy and frozen reference)")->required();
      rlhf::cli::TrainFlags::add_lora_flags(app, c->lora);  // the policy's adapters; reference = adapters off
      rlhf::cli::TrainFlags::add_memory_flags(app, c->memory);
      auto dist = std::make_shared<rlhf::dist::DistOptions>();
      rlhf::cli::TrainFlags::add_dist_flags(app, *dist);
      auto ro = std::make_shared<rlhf::reward::RewardOptions>();
      app.add_option("--reward", ro->specs,
                     "reward-model folder | http://HOST:PORT/PATH (OpenRLHF protocol) | exec:COMMAND (JSONL on "
                     "stdin/stdout) | rule:NAME (exact-match, numeric, regex:PATTERN, length, ...); repeat to combine")
          ->required();
      app.add_option("--reward-weights", ro->weights, "w_i of s = Σ w_i·s_i, one per --reward (default 1 each)")
          ->delimiter(',');
      app.add_option("--reward-timeout", ro->timeout_s, "seconds per HTTP request / exec batch")->capture_default_str();
      app.add_option("--reward-retries", ro->retries, "HTTP retries after a failed request")->capture_default_str();
      app.add_option("--reward-backoff", ro->backoff_s, "seconds before the first retry (doubling)")->capture_default_str();
      app.add_option("--label-key", ro->label_key, "prompt-line field sent as the label (rules, servers)")
          ->capture_default_str();
      opt("--eval-prompts", c->eval_prompts, "held-out prompts JSONL: answers scored as eval rows of metrics.jsonl");
      opt("--eval-every", c->eval_every, "iterations between evaluations (0: first and last only)");
      opt("--eval-samples", c->eval_samples, "answers per eval prompt, sampled as the rollouts");
      app.add_flag("--eval-greedy", c->eval_greedy, "greedy eval answers (one per prompt) instead");
      opt("--prompts", c->prompts, "JSONL with {\"prompt\": str} or {\"messages\": [...]} per line")->required();
      opt("--out", c->out, "output folder")->required();
      opt("--save-dtype", c->save_dtype, "final/'s stored dtype: fp32 | bf16 (default: as the policy)");
      opt("--max-shard-size", c->max_shard_size, "shard saved models above this size, e.g. 5GB (default: one file)");
      opt("--report-to", c->report_to, "none | tensorboard (event files in OUT/runs/)");
      opt("--critic", c->critic, "value model folder (default: from --critic-init)");
      opt("--critic-init", c->critic_init, "reward: critic = reward model; policy: policy body, zero value head");
      opt("--algo", c->algo, "ppo | grpo | rloo");
      opt("--chat", c->chat, "-1: as the policy's rlhf_format.json; 0: plain prompts; 1: chat template");
      app.add_flag("--resume", c->resume, "continue from OUT/checkpoint");
      opt("--iterations", c->iterations, "rollout + update rounds");
      opt("--batch-size", c->batch_size, "prompts per iteration");
      opt("--group-size", c->group_size, "samples per prompt (grpo, rloo)");
      opt("--temperature", c->temperature, "sampling temperature (also used for all log-probs)");
      opt("--top-k", c->top_k, "top-k sampling (0: off)");
      opt("--top-p", c->top_p, "nucleus sampling (1: off)");
      opt("--max-new-tokens", c->max_new_tokens, "response length limit");
      opt("--max-prompt-tokens", c->max_prompt_tokens, "keep the last N prompt tokens (0: all)");
      opt("--kl-estimator", c->kl_estimator, "k1 | k3");
      opt("--kl-coef", c->kl_coef, "β (initial β when adaptive; GRPO: KL loss coefficient)");
      app.add_flag("--adaptive-kl", c->adaptive_kl, "adaptive β controller (Ziegler et al.)");
      opt("--kl-target", c->kl_target, "target KL per sequence (nats), adaptive only");
      opt("--kl-horizon", c->kl_horizon, "controller horizon (samples), adaptive only");
      opt("--missing-eos-penalty", c->missing_eos_penalty, "subtracted from the score of a response without EOS");
      opt("--score-scale", c->score_scale, "multiplies the score");
      app.add_flag("--normalize-score", c->normalize_score, "normalise scores by a running mean/std");
      opt("--score-clip", c->score_clip, "clip |score| (0: off)");
      opt("--ppo-epochs", c->ppo_epochs, "epochs over each rollout batch");
      opt("--num-minibatches", c->num_minibatches, "minibatches per epoch");
      opt("--grad-accum", c->grad_accum, "micro-batches per minibatch");
      opt("--lr", c->lr, "policy learning rate");
      opt("--critic-lr", c->critic_lr, "critic learning rate");
      opt("--lr-schedule", c->lr_schedule, "linear | cosine | constant");
      opt("--warmup-steps", c->warmup_steps, "linear warmup (optimizer steps)");
      opt("--adam-eps", c->adam_eps, "Adam's epsilon");
      opt("--weight-decay", c->weight_decay, "AdamW decoupled weight decay");
      opt("--max-grad-norm", c->max_grad_norm, "gradient clipping per model (0: off)");
      opt("--clip-eps", c->clip_eps, "PPO ratio clip ε");
      opt("--vf-clip", c->vf_clip, "value clip ε_v");
      opt("--vf-coef", c->vf_coef, "value loss coefficient");
      opt("--ent-coef", c->ent_coef, "entropy bonus coefficient");
      opt("--gamma", c->gamma, "GAE γ");
      opt("--lam", c->lam, "GAE λ");
      opt("--whiten-advantages", c->whiten_advantages, "whiten advantages (true/false)");
      opt("--whiten-rewards", c->whiten_rewards, "whiten per-token rewards, keeping the mean (true/false)");
      opt("--target-approx-kl", c->target_approx_kl, "stop the epochs when approx-KL exceeds this (0: off)");
      opt("--grpo-eps", c->grpo_eps, "GRPO advantage ε");
      opt("--ptx-data", c->ptx_data, "PPO-ptx JSONL ({prompt,response} | {messages} | {text})");
      opt("--ptx-coef", c->ptx_coef, "PPO-ptx coefficient γ");
      opt("--ptx-batch-size", c->ptx_batch_size, "PPO-ptx examples per minibatch");
      opt("--ptx-max-tokens", c->ptx_max_tokens, "truncate PPO-ptx examples");
      opt("--seed", c->seed, "random seed");
      opt("--save-every", c->save_every, "iterations between checkpoints (0: end only)");
      opt("--samples-every", c->samples_every, "iterations between samples.jsonl entries (0: off)");
      opt("--num-samples", c->num_samples, "samples written each time");
      opt("--log-every", c->log_every, "iterations between log lines");
      app.add_flag("--skip-nonfinite", c->skip_nonfinite, "skip batches with NaN/inf loss or KL (counted)");
      auto gold = std::make_shared<std::string>();
      app.add_option("--gold-judge", *gold, "rule:NAME: log a known gold preference as `gold` (never trained on)");
      return [c, ro, gold, dist] { return run_ppo(*c, *ro, *gold, *dist); };
    }};

}  // namespace
