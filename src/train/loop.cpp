#include "train/loop.h"

#include "train/autocast.h"

#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <iostream>

#include "common/error.h"
#include "dist/grad_sync.h"
#include "dist/zero.h"
#include "train/checkpoint.h"

namespace fs = std::filesystem;

namespace rlhf::train {

std::vector<NamedParam> named_params(TransformerLM& model, const std::string& prefix) {
  std::vector<NamedParam> out;
  for (auto& w : model.weights()) out.push_back({prefix + w.name, w.tensor});
  return out;
}

std::vector<NamedParam> lora_params(TransformerLM& model, const lora::LoraAdapters& adapters,
                                    const std::string& prefix) {
  std::vector<NamedParam> out;
  for (auto& w : lora::adapter_weights(model, adapters)) out.push_back({prefix + w.name, w.tensor});
  return out;
}

namespace {

// Rank `rank`'s examples of a global batch: every world-th one (balanced lengths when batches are length-sorted).
std::vector<int64_t> shard_of(const std::vector<int64_t>& batch, int rank, int world) {
  std::vector<int64_t> out;
  for (size_t i = static_cast<size_t>(rank); i < batch.size(); i += static_cast<size_t>(world)) out.push_back(batch[i]);
  return out;
}

// The global micro-batch's weight W = Σ_r w_r and metrics Σ_r w_r·m_r / W ("tokens" summed), from one all-reduce.
// One process: W = w and the metrics unchanged.
std::pair<double, Metrics> global_metrics(dist::World* world, double w, const Metrics& m) {
  if (!world || !world->distributed()) return {w, m};
  std::vector<double> v{w};
  for (const auto& [k, x] : m) v.push_back(k == "tokens" ? x : w * x);
  auto t = torch::tensor(v, torch::kFloat64);
  std::vector<torch::Tensor> one{t};
  world->all_reduce_sum(one, "batch weights and metrics");
  const double W = t[0].item<double>();
  Metrics out;
  for (size_t i = 0; i < m.size(); ++i) {
    const double x = t[static_cast<int64_t>(i) + 1].item<double>();
    out.push_back({m[i].first, m[i].first == "tokens" ? x : x / std::max(W, 1e-300)});
  }
  return {W, out};
}

std::string step_dir(const std::string& out, int64_t step) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "step-%06ld", static_cast<long>(step));
  return (fs::path(out) / "checkpoints" / buf).string();
}
}  // namespace

LoopResult run_training(TransformerLM& model, const LoopOptions& opts, const BatchesFn& batches_fn,
                        const LossFn& loss_fn, const EvalFn& eval_fn) {
  RLHF_CHECK(opts.grad_accum >= 1, "--grad-accum must be >= 1, got ", opts.grad_accum);
  RLHF_CHECK(opts.epochs >= 1 || opts.max_steps > 0, "--epochs must be >= 1, got ", opts.epochs);
  RLHF_CHECK(opts.autocast == "fp32" || opts.autocast == "bf16", "--dtype: \"", opts.autocast,
             "\" is not one of fp32, bf16");
  fs::create_directories(opts.out);
  model.train();
  const bool autocast = opts.autocast == "bf16";
  const bool on_cuda = model.parameters().at(0).device().is_cuda();

  // Steps: one per grad_accum micro-batches; the schedule spans the whole run.
  const int64_t batches_per_epoch = static_cast<int64_t>(batches_fn(0).size());
  RLHF_CHECK(batches_per_epoch >= opts.grad_accum, "an epoch has ", batches_per_epoch,
             " batches, fewer than --grad-accum ", opts.grad_accum, " (lower --grad-accum or --batch-size)");
  const int64_t steps_per_epoch = std::max<int64_t>(1, batches_per_epoch / opts.grad_accum);
  const int64_t total_steps = opts.max_steps > 0 ? opts.max_steps : steps_per_epoch * opts.epochs;
  ScheduleConfig sched = opts.schedule;
  sched.total_steps = total_steps;
  sched.validate();

  AdamW opt(default_param_groups(opts.lora ? lora_params(model, *opts.lora) : named_params(model), opts.adamw),
            opts.adamw);
  dist::World one_process;
  dist::World& world = opts.world ? *opts.world : one_process;
  const bool main_rank = world.is_main();
  if (world.distributed()) {
    for (const auto& b : batches_fn(0))
      RLHF_CHECK(static_cast<int64_t>(b.size()) >= world.size(), "a batch of ", b.size(),
                 " examples cannot be split over ", world.size(), " ranks: raise --batch-size (the global batch) to ",
                 "at least the number of ranks, or use fewer examples per epoch remainder");
    // DDP's start: every rank from rank 0's weights (fresh heads and adapters included).
    dist::broadcast_parameters(world, opt.params());
  }
  // --zero 1: AdamW's moments sharded over the ranks (dist/zero.h).
  std::unique_ptr<dist::Zero1> zero;
  if (world.distributed() && world.options().zero == 1) zero = std::make_unique<dist::Zero1>(world, opt);
  TrainState st;
  if (!opts.resume.empty()) {
    st = load_checkpoint(opts.resume, {{"optimizer", &opt}});
    if (zero) zero->drop_foreign_state();  // the file has every tensor's moments; keep this rank's
    std::cerr << "resumed from " << opts.resume << " at step " << st.step << " (epoch " << st.epoch
              << ", batch " << st.data_position << ")\n";
  }
  // Rank 0 alone writes; the others keep quiet.
  std::unique_ptr<MetricsLog> log;
  std::unique_ptr<Progress> progress;
  if (main_rank) {
    log = std::make_unique<MetricsLog>((fs::path(opts.out) / "metrics.jsonl").string(), /*append=*/!opts.resume.empty(),
                                       opts.report_to);
    progress = std::make_unique<Progress>(total_steps, st.step, opts.log_every, opts.label);
  }

  auto save = [&](const std::string& dir, const std::string& dtype) {
    Checkpoint ck;
    if (opts.lora) ck.adapters.push_back({"", &model, opts.lora, {opts.base_model, opts.tokenizer_dir}});
    else ck.models.push_back({"", &model, SaveOptions{opts.tokenizer_dir, opts.max_shard_bytes, dtype}});
    ck.optimizers.push_back({"optimizer", &opt});
    ck.state = st;
    ck.json_files = opts.json_files;
    if (zero) zero->gather_state();  // rank 0 writes every tensor's moments: the file of plain data parallel
    if (main_rank) save_checkpoint(dir, ck);
    if (zero) zero->drop_foreign_state();
    world.barrier("checkpoint " + dir);  // written before any rank goes on (a failed write is named as rank 0's)
  };
  auto run_eval = [&]() {
    if (!eval_fn || !main_rank) return Metrics{};  // rank 0 evaluates on the whole eval set; the others wait
    model.eval();
    Metrics m;
    {
      torch::NoGradGuard ng;
      AutocastScope ac(autocast, on_cuda);
      m = eval_fn();
    }
    model.train();
    log->log(st.step, m, "eval");
    progress->note("eval step " + std::to_string(st.step) + ": " + format_metrics(m));
    return m;
  };

  LoopResult res;
  MetricsMean acc;
  int64_t micro = 0, tokens = 0;
  auto t_step = std::chrono::steady_clock::now();
  bool done = st.step >= total_steps;
  for (int64_t epoch = st.epoch; !done && (opts.max_steps > 0 || epoch < opts.epochs); ++epoch) {
    const auto batches = batches_fn(epoch);
    const int64_t first = epoch == st.epoch ? st.data_position : 0;
    st.epoch = epoch;
    // Only whole accumulation groups: a trailing partial group is dropped (same on resume).
    const int64_t usable = static_cast<int64_t>(batches.size()) / opts.grad_accum * opts.grad_accum;
    for (int64_t bi = first; bi < usable; ++bi) {
      torch::Tensor loss;
      Metrics m;
      const auto shard = world.distributed() ? shard_of(batches[bi], world.rank(), world.size()) : batches[bi];
      {
        AutocastScope ac(autocast, on_cuda);  // forward only; backward outside, as torch.autocast advises
        std::tie(loss, m) = loss_fn(shard);
      }
      // w: what this rank's loss averages over; W: the same over all ranks (= w in one process).
      double w = static_cast<double>(shard.size());
      Metrics local;
      for (const auto& kv : m)
        if (kv.first == "weight") w = kv.second;
        else local.push_back(kv);
      double W = w;
      std::tie(W, m) = global_metrics(&world, w, local);
      // Every rank decides on the same (global) number, so all stop together.
      double checked = loss.item<double>();
      for (const auto& [k, v] : m)
        if (k == "loss") checked = v;
      RLHF_CHECK(std::isfinite(checked), "loss is not finite at step ", st.step + 1, " (", format_metrics(m),
                 "); try a lower --lr");
      // ∇ of Σ_r (w_r/W)·L_r, summed over ranks below: the global batch's mean loss. One process: w/W = 1.
      (loss * (w / W) / static_cast<double>(opts.grad_accum)).backward();
      for (const auto& [k, v] : m)
        if (k == "tokens") tokens += static_cast<int64_t>(v);
      acc.add(m);
      st.data_position = bi + 1;
      if (++micro < opts.grad_accum) continue;
      micro = 0;
      const double lr = schedule_lr(sched, opts.lr, st.step);
      double gnorm = 0;
      if (zero) {
        gnorm = zero->step(lr, opts.max_grad_norm);  // reduce to owners, clip, step the owned, broadcast
      } else {
        dist::all_reduce_gradients(world, opt.params(), world.options().bucket_mb << 20);
        gnorm = clip_grad_norm(opt.params(), opts.max_grad_norm);
        opt.step(lr);
        opt.zero_grad();
      }
      ++st.step;
      const auto now = std::chrono::steady_clock::now();
      const double dt = std::chrono::duration<double>(now - t_step).count();
      t_step = now;
      Metrics out;
      for (const auto& kv : acc.mean())
        if (kv.first != "tokens") out.push_back(kv);
      out.push_back({"lr", lr});
      out.push_back({"grad_norm", gnorm});
      out.push_back({"epoch", static_cast<double>(epoch) + static_cast<double>(bi + 1) / batches.size()});
      if (tokens > 0) out.push_back({"tokens_per_s", tokens / std::max(dt, 1e-9)});
      acc.clear();
      tokens = 0;
      if (log) log->log(st.step, out);
      if (progress) progress->update(st.step, out);
      res.last_train = out;
      if (st.step >= total_steps) {
        done = true;
        break;
      }
      if (opts.eval_every > 0 && st.step % opts.eval_every == 0) res.last_eval = run_eval();
      if (opts.save_every > 0 && st.step % opts.save_every == 0) {
        // The position after this batch; at an epoch's end the next epoch starts at 0.
        TrainState keep = st;
        if (st.data_position >= usable) {
          st.epoch = epoch + 1;
          st.data_position = 0;
        }
        save(step_dir(opts.out, st.step), /*dtype=*/"");
        st = keep;
        if (progress) progress->note("saved " + step_dir(opts.out, st.step));
      }
    }
    if (!done) st.data_position = 0;
  }
  if (progress) progress->finish();
  res.last_eval = run_eval();
  save(opts.out, opts.save_dtype);
  res.steps = st.step;
  res.seconds = progress ? progress->elapsed_s() : 0.0;
  if (main_rank)
    std::cerr << opts.label << ": " << st.step << " steps in " << res.seconds << " s; "
            << (opts.lora ? "adapter" : "model") << " saved to " << opts.out << "\n";
  return res;
}

}  // namespace rlhf::train
