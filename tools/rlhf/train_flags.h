// Flags shared by the training commands (sft, reward, dpo): one struct with commented defaults, registered in
// one place, validated, printed at start and saved as train_config.json in every checkpoint.
#pragma once
#include <torch/torch.h>

#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "command.h"
#include "common/memory.h"
#include "common/error.h"
#include "dist/launch_env.h"
#include "dist/world.h"
#include "io/crc32c.h"
#include "lora/peft_format.h"
#include "model/model.h"
#include "rlhf/examples.h"
#include "train/loop.h"
#include "train/memory_options.h"
#include "dist/options.h"

namespace rlhf::cli {

struct TrainFlags {
  std::string model;                 // starting model folder (Hugging Face)
  std::string data;                  // training JSONL
  std::string out;                   // output folder: final model, checkpoints/, metrics.jsonl
  std::string save_dtype;            // final model's stored dtype: "" keeps the starting model's | fp32 | bf16
  std::string max_shard_size;        // shard saved models above this size ("5GB", "500MB", "2GiB"; "": one file)
  std::string report_to = "none";    // none | tensorboard (OUT/runs/ event files beside metrics.jsonl)
  std::string eval_data;             // eval JSONL ("" = split eval_fraction off data)
  double eval_fraction = 0.05;       // held-out share of data when no eval file is given
  std::string resume;                // checkpoint folder to continue from
  int64_t epochs = 1;
  int64_t max_steps = 0;             // > 0: stop after this many optimizer steps
  int64_t batch_size = 8;
  int64_t grad_accum = 1;
  double lr = 1e-5;
  std::string lr_schedule = "cosine";  // cosine | linear | constant
  int64_t warmup_steps = 0;
  double min_lr_ratio = 0.0;
  double weight_decay = 0.0;
  double adam_eps = 1e-8;
  double max_grad_norm = 1.0;        // <= 0: no clipping
  int64_t save_every = 0;            // checkpoint every N steps (0: only the final model)
  int64_t eval_every = 0;            // eval every N steps (0: only at the end)
  int64_t log_every = 10;
  uint64_t seed = 0;                 // torch's RNG (new heads) and the batch order; set once at the start
  int64_t max_len = 512;             // tokens per sequence
  std::string overlong = "truncate-left"; // truncate-left | truncate | drop | error (rlhf/examples.h)
  bool skip_bad_lines = false;
  bool chat = false;                 // format string prompts with the chat template
  bool dry_run = false;              // read and tokenize the data, print the counts as JSON, load no model, stop
  std::string dtype = "fp32";        // fp32 | bf16 (autocast of the forward passes; weights stay fp32)
  lora::LoraOptions lora;            // --lora-r > 0: train LoRA adapters only, save a PEFT adapter folder
  train::MemoryOptions memory;       // --gradient-checkpointing
  dist::DistOptions dist;            // several processes (torchrun / mpirun / srun): --dist-timeout, --dist-backend

  void add(CLI::App& app) {
    app.add_option("--model", model, "starting model folder")->required();
    app.add_option("--data", data, "training data (JSONL)")->required();
    app.add_option("--out", out, "output folder")->required();
    app.add_option("--save-dtype", save_dtype, "final model's stored dtype: fp32 | bf16 (default: as loaded)");
    app.add_option("--max-shard-size", max_shard_size, "shard saved models above this size, e.g. 5GB (default: one file)");
    app.add_option("--report-to", report_to, "none | tensorboard (event files in OUT/runs/)")->capture_default_str();
    app.add_option("--eval-data", eval_data, "eval data (JSONL); default: split off --data");
    app.add_option("--eval-fraction", eval_fraction, "held-out share of --data without --eval-data")->capture_default_str();
    app.add_option("--resume", resume, "continue from this checkpoint folder");
    app.add_option("--epochs", epochs, "passes over the data")->capture_default_str();
    app.add_option("--max-steps", max_steps, "stop after N optimizer steps (0: epochs decide)")->capture_default_str();
    app.add_option("--batch-size", batch_size, "examples per micro-batch")->capture_default_str();
    app.add_option("--grad-accum", grad_accum, "micro-batches per optimizer step")->capture_default_str();
    app.add_option("--lr", lr, "peak learning rate")->capture_default_str();
    app.add_option("--lr-schedule", lr_schedule, "cosine | linear | constant")->capture_default_str();
    app.add_option("--warmup-steps", warmup_steps, "linear warmup steps")->capture_default_str();
    app.add_option("--min-lr-ratio", min_lr_ratio, "final lr as a fraction of --lr")->capture_default_str();
    app.add_option("--weight-decay", weight_decay, "AdamW decoupled weight decay")->capture_default_str();
    app.add_option("--adam-eps", adam_eps, "AdamW epsilon")->capture_default_str();
    app.add_option("--max-grad-norm", max_grad_norm, "clip the global grad norm (<= 0: off)")->capture_default_str();
    app.add_option("--save-every", save_every, "checkpoint every N steps (0: final only)")->capture_default_str();
    app.add_option("--eval-every", eval_every, "eval every N steps (0: at the end)")->capture_default_str();
    app.add_option("--log-every", log_every, "log line every N steps (non-tty)")->capture_default_str();
    app.add_option("--seed", seed, "random seed")->capture_default_str();
    app.add_option("--max-len", max_len, "max tokens per sequence")->capture_default_str();
    app.add_option("--overlong", overlong, "longer sequences: truncate-left (cut the prompt's start, as TRL's keep_end) | truncate (keep the start) | drop | error")->capture_default_str();
    app.add_flag("--skip-bad-lines", skip_bad_lines, "skip and count malformed lines instead of stopping");
    app.add_flag("--chat", chat, "format string prompts with the tokenizer's chat template");
    app.add_flag("--dry-run", dry_run,
                 "read and tokenize the data, print kept / truncated / dropped counts as JSON, and stop (no model is "
                 "loaded, nothing is written)");
    app.add_option("--dtype", dtype, "fp32 | bf16 (autocast)")->capture_default_str();
    add_lora_flags(app, lora);
    add_memory_flags(app, memory);
    add_dist_flags(app, dist);
  }

  static void add_dist_flags(CLI::App& app, dist::DistOptions& d) {
    app.add_option("--dist-timeout", d.timeout_s,
                   "seconds a rank waits for the others in a collective before stopping with an error naming the late "
                   "rank")
        ->capture_default_str();
    app.add_option("--dist-backend", d.backend, "auto | gloo | nccl (auto: nccl on CUDA, gloo on CPU)")
        ->capture_default_str();
    app.add_option("--dist-bucket-mb", d.bucket_mb, "gradients are all-reduced in buckets of this many MiB")
        ->capture_default_str();
    app.add_option("--zero", d.zero,
                   "1: ZeRO stage 1, AdamW's moments sharded over the ranks (each keeps ~1/N); 0: plain data parallel")
        ->capture_default_str();
  }

  static void add_memory_flags(CLI::App& app, train::MemoryOptions& m) {
    app.add_flag("--gradient-checkpointing", m.gradient_checkpointing,
                 "recompute each block's activations in backward instead of keeping them (less memory, ~30% more "
                 "compute)");
    app.add_option("--frozen-dtype", m.frozen_dtype,
                   "fp32 | bf16: store frozen weights (reference, reward model, the base under LoRA) in bf16, computed "
                   "in fp32")
        ->capture_default_str();
  }

  static void add_lora_flags(CLI::App& app, lora::LoraOptions& l) {
    app.add_option("--lora-r", l.r, "LoRA rank (0: train the whole model)")->capture_default_str();
    app.add_option("--lora-alpha", l.alpha, "LoRA alpha: the adapters are scaled by alpha/r")->capture_default_str();
    app.add_option("--lora-dropout", l.dropout, "dropout on the adapters' input")->capture_default_str();
    app.add_option("--lora-targets", l.targets,
                   "modules to adapt, PEFT's names: q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj "
                   "(GPT-2: c_attn,c_proj,c_fc) or all-linear (default: gpt2 c_attn; llama/qwen q_proj,v_proj)");
    app.add_flag("--lora-rslora", l.use_rslora, "scale the adapters by alpha/sqrt(r) (rsLoRA)");
  }

  void validate() const {
    RLHF_CHECK(epochs >= 1, "--epochs must be >= 1, got ", epochs);
    RLHF_CHECK(max_steps >= 0, "--max-steps must be >= 0, got ", max_steps);
    RLHF_CHECK(batch_size >= 1, "--batch-size must be >= 1, got ", batch_size);
    RLHF_CHECK(grad_accum >= 1, "--grad-accum must be >= 1, got ", grad_accum);
    RLHF_CHECK(lr > 0, "--lr must be > 0, got ", lr);
    RLHF_CHECK(weight_decay >= 0, "--weight-decay must be >= 0, got ", weight_decay);
    RLHF_CHECK(adam_eps > 0, "--adam-eps must be > 0, got ", adam_eps);
    RLHF_CHECK(eval_fraction >= 0 && eval_fraction < 1, "--eval-fraction must be in [0, 1), got ", eval_fraction);
    RLHF_CHECK(dtype == "fp32" || dtype == "bf16", "--dtype: \"", dtype, "\" is not one of fp32, bf16");
    save_dtype_from_flag(save_dtype);
    parse_shard_size(max_shard_size);
    RLHF_CHECK(report_to == "none" || report_to == "tensorboard", "--report-to: \"", report_to,
               "\" is not one of none, tensorboard");
    data_options().validate();
    schedule().validate();
    lora.validate();
    memory.validate();
    dist.validate();
  }

  DataOptions data_options() const {
    DataOptions d;
    d.max_len = max_len;
    d.overlong = overlong;
    d.skip_bad_lines = skip_bad_lines;
    return d;
  }
  train::ScheduleConfig schedule() const {
    train::ScheduleConfig s;
    s.kind = lr_schedule;
    s.warmup_steps = warmup_steps;
    s.min_lr_ratio = min_lr_ratio;
    return s;
  }
  nlohmann::json to_json() const {
    return {{"model", model},           {"data", data},         {"out", out},
            {"eval_data", eval_data},   {"eval_fraction", eval_fraction}, {"resume", resume},
            {"epochs", epochs},         {"max_steps", max_steps}, {"batch_size", batch_size},
            {"grad_accum", grad_accum}, {"lr", lr},             {"lr_schedule", lr_schedule},
            {"warmup_steps", warmup_steps}, {"min_lr_ratio", min_lr_ratio}, {"weight_decay", weight_decay},
            {"adam_eps", adam_eps},     {"max_grad_norm", max_grad_norm}, {"save_every", save_every},
            {"eval_every", eval_every}, {"log_every", log_every}, {"seed", seed},
            {"max_len", max_len},       {"overlong", overlong}, {"skip_bad_lines", skip_bad_lines},
            {"chat", chat},             {"dtype", dtype},       {"device", runtime_flags().device},
            {"save_dtype", save_dtype}, {"max_shard_size", max_shard_size}, {"report_to", report_to},
            {"lora", lora.to_json()},   {"memory", memory.to_json()}};
  }
  // --dry-run: the data's counts on stdout, {"data": {...}, "eval_data": {...}, "train": n, "eval": n}.
  void print_dry_run(const DataReport& data_rep, const DataReport* eval_rep, size_t n_train, size_t n_eval) const {
    nlohmann::json j{{"data", data_rep.to_json()}, {"train", n_train}, {"eval", n_eval}};
    if (eval_rep) j["eval_data"] = eval_rep->to_json();
    std::cout << j.dump() << std::endl;
  }
  train::LoopOptions loop(const std::string& label, const nlohmann::json& config,
                          const nlohmann::json& format) const {
    train::LoopOptions l;
    l.out = out;
    l.resume = resume;
    l.tokenizer_dir = model;
    l.save_dtype = save_dtype_from_flag(save_dtype);
    l.max_shard_bytes = parse_shard_size(max_shard_size);
    l.report_to = report_to;
    l.epochs = epochs;
    l.max_steps = max_steps;
    l.grad_accum = grad_accum;
    l.lr = lr;
    l.schedule = schedule();
    l.adamw.weight_decay = weight_decay;
    l.adamw.eps = adam_eps;
    l.max_grad_norm = max_grad_norm;
    l.save_every = save_every;
    l.eval_every = eval_every;
    l.log_every = log_every;
    l.seed = seed;
    l.label = label;
    l.autocast = dtype;
    l.json_files = {{"train_config.json", config}, {"rlhf_format.json", format}};
    l.base_model = model;
    return l;
  }
};

// The model a training command trains, and its adapters when --lora-r > 0.
struct TrainModel {
  std::shared_ptr<TransformerLM> model;
  std::shared_ptr<lora::LoraAdapters> lora;  // null without LoRA
};

// Without LoRA: --resume's model, else --model's. With LoRA: always --model (the frozen base), with fresh adapters
// (drawn from --seed) or, resuming, the checkpoint's adapters (and score head).
inline TrainModel load_train_model(const TrainFlags& f, const LoadOptions& lo) {
  if (!f.lora.enabled()) {
    RLHF_CHECK(f.resume.empty() || !lora::is_peft_adapter(f.resume), "--resume ", f.resume,
               " holds a LoRA adapter: pass the same --lora-r (and --lora-* flags) as the run that wrote it");
    auto model = load_model(f.resume.empty() ? f.model : f.resume, lo);
    model->set_gradient_checkpointing(f.memory.gradient_checkpointing);
    return {model, nullptr};
  }
  TrainModel t;
  t.model = load_model(f.model, lo);
  t.model->set_gradient_checkpointing(f.memory.gradient_checkpointing);
  if (f.resume.empty()) {
    t.lora = lora::attach_lora(*t.model, f.lora, f.seed);
  } else {
    RLHF_CHECK(lora::is_peft_adapter(f.resume), "--resume ", f.resume,
               " holds no LoRA adapter (adapter_config.json); it was written without --lora-r");
    t.lora = lora::load_peft_adapter(*t.model, f.resume);
    const auto& got = t.lora->options;
    RLHF_CHECK(got.r == f.lora.r && got.alpha == f.lora.alpha && got.use_rslora == f.lora.use_rslora, "--resume ",
               f.resume, ": its adapter has r = ", got.r, ", alpha = ", got.alpha, ", rslora = ", got.use_rslora,
               " but the flags say r = ", f.lora.r, ", alpha = ", f.lora.alpha, ", rslora = ", f.lora.use_rslora,
               " (hint: resume with the flags of the run that wrote it)");
    t.lora->options = f.lora;  // dropout and targets as given
    for (const auto& e : t.lora->entries) e.lora->dropout = f.lora.dropout;
  }
  if (f.memory.frozen_bf16()) t.model->store_frozen_weights(torch::kBFloat16);  // the base: frozen by the adapters
  std::cerr << "lora: " << t.lora->entries.size() << " adapted layers, "
            << [&] {
                 int64_t n = 0;
                 for (const auto& w : lora::adapter_weights(*t.model, *t.lora)) n += w.tensor.numel();
                 return n;
               }()
            << " trainable of " << t.model->parameter_count() << " parameters\n";
  return t;
}

// A file's CRC-32C and size as text ("" for no path): what the ranks compare to catch different data.
inline std::string file_fingerprint(const std::string& path) {
  if (path.empty()) return "";
  std::ifstream in(path, std::ios::binary);
  RLHF_CHECK(in.good(), "cannot read ", path);
  std::vector<char> buf(1 << 20);
  uint32_t crc = 0;
  uint64_t n = 0;
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    const auto got = static_cast<size_t>(in.gcount());
    crc = io::crc32c_extend(crc, buf.data(), got);
    n += got;
  }
  return path + ":" + std::to_string(n) + ":" + std::to_string(crc);
}

// Joins the launch this process belongs to (dist/launch_env.h; a World of one without a launcher), moves `device`
// to this rank's GPU (cuda -> cuda:LOCAL_RANK), and checks that every rank runs the same config on the same
// files: a mismatched launch stops at start, naming the ranks that differ.
inline std::unique_ptr<dist::World> join_world(const dist::DistOptions& opts, torch::Device& device,
                                               const nlohmann::json& config, const std::vector<std::string>& files) {
  const auto env = dist::read_launch_env();
  if (!env.distributed()) return std::make_unique<dist::World>();
  device = dist::rank_device(device, env);
  auto world = std::make_unique<dist::World>(env, opts, device);
  // The config (and the distributed flags): every rank's, compared key by key with rank 0's, so the error says
  // which flag differs.
  auto all = config;
  all["dist"] = opts.to_json();
  const auto configs = world->all_gather_strings("config", all.dump());
  const auto mine = nlohmann::json::parse(configs[0]);
  for (size_t r = 1; r < configs.size(); ++r) {
    const auto theirs = nlohmann::json::parse(configs[r]);
    for (const auto& [k, v] : mine.items())
      RLHF_CHECK(theirs.contains(k) && theirs[k] == v, "mismatched launch: rank ", r, "'s config differs from rank 0's at \"",
                 k, "\" (", theirs.contains(k) ? theirs[k].dump() : "missing", " vs ", v.dump(),
                 "): start every rank with the same command line");
  }
  std::string data;
  for (const auto& f : files) data += file_fingerprint(f) + " ";
  world->check_same("data files", data);
  return world;
}

// Prints the resolved config (one JSON object) to stderr.
inline void print_config(const std::string& command, const nlohmann::json& config) {
  std::cerr << command << " config: " << config.dump() << "\n";
}

}  // namespace rlhf::cli

namespace rlhf::cli {
inline nlohmann::json metrics_json(const train::Metrics& m) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [k, v] : m) j[k] = v;
  return j;
}

// The memory part of a training command's closing summary: {"peak_rss_mb": ..., "peak_cuda_allocated_mb": ...}.
inline nlohmann::json memory_json() {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [k, v] : memory_metrics()) j[k] = v;
  return j;
}

// The training and eval sets: everything in --data and the examples of --eval-data when given, else an
// eval_fraction share split off --data (seeded). load_eval(path) reads the eval file.
template <typename T, typename LoadEval>
std::pair<std::vector<T>, std::vector<T>> split_train_eval(std::vector<T> data, const TrainFlags& f,
                                                           LoadEval load_eval) {
  if (!f.eval_data.empty()) return {std::move(data), load_eval(f.eval_data)};
  auto [tr, ev] = split_indices(static_cast<int64_t>(data.size()), f.eval_fraction, f.seed);
  std::vector<T> train, eval;
  for (auto i : tr) train.push_back(data[i]);
  for (auto i : ev) eval.push_back(data[i]);
  return {std::move(train), std::move(eval)};
}

}  // namespace rlhf::cli
