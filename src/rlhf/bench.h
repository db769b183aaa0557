// `rlhf bench`: the RLHF workload timed on random weights and tokens, with the same model shapes, flags,
// defaults and JSON keys as the PyTorch peer ../shared/bench/torch_ref.py, so that the two can be compared
// line by line (bench/compare.sh prints the ratios).
//
//   sft       one step: logits = π(x) (B,T,V); L = −mean_{t<T−1} log p(x_{t+1}|x_{≤t}); backward; clip 1.0; AdamW
//   rm        one step: r = RM([chosen; rejected]) at the last token (2B,); L = −mean log σ(r_c − r_r); backward...
//   dpo       one step: log π / log π_ref of B pairs (prompt P, responses G); L = −mean log σ(β·h), β 0.1 (dpo.h);
//             the reference's log-probs computed each step, as TRL's DPOTrainer by default
//   grpo      one whole GRPO iteration of rl_train: B completions (B/group prompts × group samples), scored by an RM,
//             π_ref with β 0.04 (k3), one update (TRL GRPOConfig: num_iterations 1, ε 0.2, token-level mean)
//   generate  B prompts of P tokens, G new tokens sampled at temperature τ (KV cache), EOS = 1, pad = 0
//   ppo       one whole PPO iteration of rl_train (rollout, scoring with π_ref + critic + RM, E epochs × M
//             minibatches), PPOConfig set to the peer's TRL defaults (see bench.cpp)
// tokens: sft B·T, rm 2·B·T, dpo 2·B·(P+G), generate new tokens (B × generated length), ppo/grpo B·(P+G) per
// iteration. bench/trl/trl_bench.py runs TRL's trainers on the same workloads.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "lora/options.h"
#include "train/memory_options.h"

namespace rlhf::bench {

struct BenchConfig {
  std::string task = "sft";         // sft | rm | dpo | generate | ppo | grpo
  // gpt2-tiny | gpt2-small | llama-tiny | qwen2-0.5b (the GPU baseline's shape), or a Hugging Face config.json
  // (a file, or a folder holding one): its shapes with random weights, e.g. Qwen2.5-1.5B's config
  std::string model = "gpt2-tiny";
  int64_t batch = 8;                // B
  int64_t prompt_len = 64;          // P
  int64_t gen_len = 64;             // G
  int64_t seq_len = 0;              // sft/rm T (0: P + G)
  int64_t steps = 3;                // timed steps (ppo: iterations) after the warm-up
  int64_t warmup = 1;               // ppo/grpo: untimed iterations first (0: time the first one too)
  uint64_t seed = 0;
  int threads = 2;                  // the peer's default; set by the command (0 on the command line = 2)
  double temperature = 0.7;         // PPOConfig default
  int64_t mini_batches = 1;         // PPOConfig num_mini_batches
  int64_t ppo_epochs = 4;           // PPOConfig num_ppo_epochs
  int64_t group = 4;                // grpo: samples per prompt (GRPOConfig num_generations)
  std::string sft_loss = "nll";     // nll (the peer's chunked_nll is not implemented here)
  double max_grad_norm = 1.0;       // sft/rm clipping as HF Trainer; 0 = off
  bool trl_metrics = false;         // sft: TRL's no-grad entropy + accuracy logging
  std::string device = "cpu";       // cpu | cuda
  std::string dtype = "fp32";       // fp32 | bf16 (sft/rm: autocast, fp32 master weights; generate: bf16 weights)
  bool reference_kernels = false;   // libtorch ops only (no rows_gemm, no fused sampling): results must not change
  // ppo/grpo: LoRA on the policy (reference = adapters off) and, for ppo, the critic as an adapter on the reward
  // model's body, as `rlhf ppo --lora-r` runs them; and gradient checkpointing of the trained models.
  lora::LoraOptions lora;
  train::MemoryOptions memory;

  void validate() const;  // throws with the allowed values
  nlohmann::json to_json() const;
};

// The config.json of a named benchmark model, or of a config.json file / folder (causal LM, or the
// *ForSequenceClassification with 1 label).
nlohmann::json model_config_json(const std::string& name, bool classifier);

// Runs the benchmark and returns the result line (the peer's keys plus peak_rss_mb, device, dtype).
nlohmann::json run_bench(const BenchConfig& cfg);

// A large float32 (or bf16) matrix multiply through libtorch: the machine's matmul peak in GFLOP/s, for MFU.
double matmul_peak_gflops(int64_t n, const std::string& dtype, const std::string& device, int reps);

}  // namespace rlhf::bench
