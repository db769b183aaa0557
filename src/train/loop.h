// The optimisation loop that SFT, the reward model and DPO share (PPO has its own outer loop and uses the
// pieces below directly): epochs of batches, gradient accumulation, clipping, AdamW + schedule, metrics.jsonl,
// eval every N steps, checkpoints every N steps and at the end, --resume.
//
// The algorithm supplies two functions: loss_fn(batch indices) -> (loss, metrics) and eval_fn() -> metrics.
// Everything that is not the algorithm lives here, once.
#pragma once
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "dist/world.h"
#include "lora/adapters.h"
#include "model/model.h"
#include "train/metrics.h"
#include "train/optim.h"

namespace rlhf::train {

struct LoopOptions {
  std::string out;                 // output folder: final model, checkpoints/step-N, metrics.jsonl
  std::string resume;              // checkpoint folder to continue from ("" = fresh)
  std::string tokenizer_dir;       // tokenizer files are copied from here into every saved model
  // The final model's stored dtype (SaveOptions::dtype: "" keeps the loaded dtypes, "float32", "bfloat16").
  // Checkpoints under checkpoints/ keep the training dtype, so that --resume continues from the exact weights.
  std::string save_dtype;
  uint64_t max_shard_bytes = 0;    // shard every saved model above this size (0: one model.safetensors)
  std::string report_to = "none";  // "tensorboard": also write OUT/runs/ event files (train/tensorboard.h)
  int64_t epochs = 1;
  int64_t max_steps = 0;           // > 0: stop after this many optimizer steps (and size the schedule by it)
  int64_t grad_accum = 1;          // micro-batches per optimizer step
  double lr = 1e-5;
  ScheduleConfig schedule;         // total_steps is filled in by run_training
  AdamWConfig adamw;
  double max_grad_norm = 1.0;      // <= 0: no clipping
  int64_t save_every = 0;          // checkpoint every N steps (0: only at the end)
  int64_t eval_every = 0;          // eval every N steps (0: only at the end)
  int64_t log_every = 10;          // plain log line every N steps (when stderr is not a terminal)
  uint64_t seed = 0;               // batch order
  std::map<std::string, nlohmann::json> json_files;  // written into every checkpoint (config, format)
  std::string label = "train";
  // LoRA: when set, only these adapters (and a classifier's score head) train, and the final result and every
  // checkpoint are PEFT adapter folders (lora/peft_format.h) in place of full models; --resume then reads the
  // adapter and the optimizer state of a checkpoint onto the base that the caller loaded.
  const lora::LoraAdapters* lora = nullptr;
  std::string base_model;          // adapter_config.json's base_model_name_or_path
  // "fp32", or "bf16": forward passes (loss_fn, eval_fn) under autocast to bfloat16 on the model's device (CPU or
  // CUDA); weights, gradients, optimizer state and the log-prob/loss math stay float32.
  std::string autocast = "fp32";
  // Data parallel (dist/world.h), null or one process: the same run. Otherwise every rank calls run_training with
  // the same data and options; each takes every world-th example of each global batch (so --batch-size is the
  // global batch), its loss is weighted by its share, the gradients are summed over ranks before clipping, and
  // the optimizers step in lockstep. Rank 0 alone evaluates and writes metrics, checkpoints and the final model.
  dist::World* world = nullptr;
};

// Given the epoch, its batches (lists of example indices); must be deterministic in the epoch.
using BatchesFn = std::function<std::vector<std::vector<int64_t>>(int64_t epoch)>;
// A micro-batch's loss (already averaged within the batch; divided by grad_accum here) and its metrics.
// "tokens" in the metrics is summed into tokens/s. "weight", when present (and not logged), is what the loss
// averages over (loss tokens for SFT); default: the number of examples. Data parallel weighs each rank's loss and
// metrics by it, so that the global batch's loss is Σ_r w_r·L_r / Σ_r w_r, as one process would compute it.
using LossFn = std::function<std::pair<torch::Tensor, Metrics>(const std::vector<int64_t>& batch)>;
using EvalFn = std::function<Metrics()>;

struct LoopResult {
  int64_t steps = 0;
  Metrics last_train, last_eval;
  double seconds = 0;
};

// Trains model in place and saves the final model to opts.out (a checkpoint folder that load_model reads).
LoopResult run_training(TransformerLM& model, const LoopOptions& opts, const BatchesFn& batches,
                        const LossFn& loss_fn, const EvalFn& eval_fn = nullptr);

// model->weights() as NamedParams for default_param_groups.
std::vector<NamedParam> named_params(TransformerLM& model, const std::string& prefix = "");
// The trainable tensors of LoRA adapters under their PEFT names (lora::adapter_weights), for the optimizer.
std::vector<NamedParam> lora_params(TransformerLM& model, const lora::LoraAdapters& adapters,
                                    const std::string& prefix = "");

}  // namespace rlhf::train
