// Metrics are data: each step yields name/value pairs; MetricsLog appends them as one JSON object per line to
// metrics.jsonl ({"step": 12, "loss": 0.53, "lr": 1e-5, ...}), and Progress shows them: a one-line progress bar
// with ETA when stderr is a terminal, plain log lines (every `log_every` steps) otherwise. With report_to
// "tensorboard" the same values also go to TensorBoard event files in OUT/runs/ (train/tensorboard.h), tagged
// "<split>/<name>" ("train/loss", "eval/loss") as transformers' TensorBoard callback names them. Every train line
// also carries peak_rss_mb (and peak_cuda_allocated_mb on CUDA): the process's high-water mark so far.
#pragma once
#include <chrono>
#include <cstdint>
#include <fstream>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace rlhf::train {

// Ordered name/value pairs (order kept in the log and the JSON).
using Metrics = std::vector<std::pair<std::string, double>>;

// "loss 0.5312 lr 1.00e-05 grad_norm 0.812" (4 significant digits).
std::string format_metrics(const Metrics& m);

// Mean of each metric over several micro-batches / steps, in first-seen order.
class MetricsMean {
 public:
  void add(const Metrics& m);
  Metrics mean() const;
  bool empty() const { return names_.empty(); }
  void clear();

 private:
  std::vector<std::string> names_;
  std::vector<double> sums_;
  std::vector<int64_t> counts_;
};

class TensorBoardWriter;

class MetricsLog {
 public:
  // append = false truncates the file (a fresh run); true continues it (--resume). report_to: "none" or
  // "tensorboard" (event files in the folder "runs" beside path).
  MetricsLog(const std::string& path, bool append, const std::string& report_to = "none");
  ~MetricsLog();
  // Appends {"step": step, "split": split, name: value...} and flushes. split: "train" or "eval".
  void log(int64_t step, const Metrics& m, const std::string& split = "train");
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::ofstream out_;
  std::unique_ptr<TensorBoardWriter> tensorboard_;  // null unless report_to = "tensorboard"
};

class Progress {
 public:
  // total: steps of the run; first: the step it starts at (> 0 when resuming).
  Progress(int64_t total, int64_t first = 0, int64_t log_every = 10, std::string label = "train");
  // After step `step` (1-based count of steps done).
  void update(int64_t step, const Metrics& m);
  // A line that must not be overwritten by the bar (eval results, checkpoint saved).
  void note(const std::string& line);
  void finish();
  double elapsed_s() const;

 private:
  int64_t total_, first_, log_every_;
  std::string label_;
  bool tty_;
  bool bar_shown_ = false;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace rlhf::train
