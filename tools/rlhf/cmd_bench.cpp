// rlhf bench --task sft|rm|dpo|generate|ppo|grpo --model gpt2-tiny|gpt2-small|llama-tiny|qwen2-0.5b|CONFIG.json
//   [--batch B] [--prompt-len P] [--gen-len G] [--seq-len T] [--steps N] [--threads N] [--device cpu|cuda]
//   [--dtype fp32|bf16] [--reference-kernels] [--mfu] [--lora-r R --lora-alpha A --lora-targets all-linear]
//   [--gradient-checkpointing]
// Random weights and tokens with a fixed seed, one warm-up, then one JSON line with the keys of the PyTorch
// peer ../shared/bench/torch_ref.py (plus peak_rss_mb). --mfu adds a large sgemm's GFLOP/s and the fraction of
// it that the sft step reaches (nanoGPT's MFU).
#include <cmath>
#include <iostream>

#include "command.h"
#include "common/runtime.h"
#include "rlhf/bench.h"
#include "train_flags.h"

namespace {

struct BenchFlags {
  rlhf::bench::BenchConfig cfg;
  bool mfu = false;
  int64_t peak_n = 4096;  // sgemm size for the peak: large enough to be compute bound on these CPUs
};

int run_bench_cmd(BenchFlags& f) {
  auto& rt = rlhf::cli::runtime_flags();
  // The peer defaults to 2 threads; main's default (0) means all cores, so pin 2 unless --threads was given.
  f.cfg.threads = rt.threads > 0 ? rt.threads : 2;
  rlhf::set_threads(f.cfg.threads);
  f.cfg.device = rt.device == "auto" ? "cpu" : rt.device;
  if (f.cfg.device.rfind("cuda", 0) == 0) (void)rlhf::resolve_device(f.cfg.device);  // a clear error without CUDA
  auto res = rlhf::bench::run_bench(f.cfg);
  if (f.mfu) {
    const double peak = rlhf::bench::matmul_peak_gflops(f.peak_n, f.cfg.dtype, f.cfg.device, 3);
    res["matmul_peak_gflops"] = std::round(peak * 10) / 10;
    res["matmul_peak_n"] = f.peak_n;
    if (res.contains("model_gflops_per_s")) res["mfu"] = res["model_gflops_per_s"].get<double>() / peak;
  }
  std::cout << res.dump() << std::endl;
  return 0;
}

rlhf::cli::Command reg{
    "bench", "Time SFT, reward-model, DPO, generation, PPO and GRPO steps on random weights (JSON line, as torch_ref.py)",
    [](CLI::App& app) {
      auto f = std::make_shared<BenchFlags>();
      auto& c = f->cfg;
      app.add_option("--task", c.task, "sft | rm | dpo | generate | ppo | grpo")->capture_default_str();
      app.add_option("--model", c.model, "gpt2-tiny | gpt2-small | llama-tiny | qwen2-0.5b | a config.json (random weights)")
          ->capture_default_str();
      app.add_option("--batch", c.batch, "B")->capture_default_str();
      app.add_option("--prompt-len", c.prompt_len, "P")->capture_default_str();
      app.add_option("--gen-len", c.gen_len, "G")->capture_default_str();
      app.add_option("--seq-len", c.seq_len, "sft/rm sequence length T (0: P + G)")->capture_default_str();
      app.add_option("--steps", c.steps, "timed steps (ppo: iterations) after one warm-up")->capture_default_str();
      app.add_option("--warmup", c.warmup, "ppo/grpo: untimed iterations first (0 for large models)")
          ->capture_default_str();
      app.add_option("--seed", c.seed, "random weights and tokens")->capture_default_str();
      app.add_option("--temperature", c.temperature, "sampling temperature (PPOConfig: 0.7)")->capture_default_str();
      app.add_option("--mini-batches", c.mini_batches, "ppo num_mini_batches")->capture_default_str();
      app.add_option("--ppo-epochs", c.ppo_epochs, "ppo epochs per iteration")->capture_default_str();
      app.add_option("--group", c.group, "grpo: samples per prompt (--batch counts completions)")
          ->capture_default_str();
      app.add_option("--sft-loss", c.sft_loss, "nll")->capture_default_str();
      app.add_option("--max-grad-norm", c.max_grad_norm, "sft/rm clipping; 0 = off")->capture_default_str();
      app.add_flag("--trl-metrics", c.trl_metrics, "sft: add TRL's no-grad entropy/accuracy logging");
      app.add_option("--dtype", c.dtype, "fp32 | bf16 (sft/rm: autocast; generate: bf16 weights)")
          ->capture_default_str();
      app.add_flag("--reference-kernels", c.reference_kernels,
                   "libtorch ops only (no few-row matmul kernels, no fused sampler): same tokens and losses, slower");
      rlhf::cli::TrainFlags::add_lora_flags(app, c.lora);  // ppo/grpo: as rlhf ppo --lora-r
      rlhf::cli::TrainFlags::add_memory_flags(app, c.memory);
      app.add_flag("--mfu", f->mfu, "also measure a large matmul's GFLOP/s and report the sft step's fraction");
      app.add_option("--peak-n", f->peak_n, "matrix size of that matmul")->capture_default_str();
      return [f] { return run_bench_cmd(*f); };
    }};

}  // namespace
