#include "train/metrics.h"

#include "common/memory.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/error.h"
#include "train/tensorboard.h"

namespace rlhf::train {

namespace {
std::string fmt_value(double v) {
  std::ostringstream os;
  const double a = std::fabs(v);
  if (v == std::floor(v) && a < 1e9) os << static_cast<int64_t>(v);
  else if (a != 0 && (a < 1e-3 || a >= 1e5)) os << std::scientific << std::setprecision(2) << v;
  else os << std::setprecision(4) << v;
  return os.str();
}

std::string fmt_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  const int64_t t = static_cast<int64_t>(s + 0.5);
  char buf[32];
  if (t >= 3600) std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", long(t / 3600), long(t / 60 % 60), long(t % 60));
  else std::snprintf(buf, sizeof buf, "%ld:%02ld", long(t / 60), long(t % 60));
  return buf;
}
}  // namespace

std::string format_metrics(const Metrics& m) {
  std::string out;
  for (const auto& [name, v] : m) {
    if (!out.empty()) out += " ";
    out += name + " " + fmt_value(v);
  }
  return out;
}

void MetricsMean::add(const Metrics& m) {
  for (const auto& [name, v] : m) {
    size_t i = 0;
    while (i < names_.size() && names_[i] != name) ++i;
    if (i == names_.size()) {
      names_.push_back(name);
      sums_.push_back(0);
      counts_.push_back(0);
    }
    sums_[i] += v;
    counts_[i] += 1;
  }
}

Metrics MetricsMean::mean() const {
  Metrics out;
  for (size_t i = 0; i < names_.size(); ++i) out.emplace_back(names_[i], sums_[i] / std::max<int64_t>(1, counts_[i]));
  return out;
}

void MetricsMean::clear() {
  names_.clear();
  sums_.clear();
  counts_.clear();
}

MetricsLog::MetricsLog(const std::string& path, bool append, const std::string& report_to)
    : path_(path), out_(path, append ? std::ios::app : std::ios::trunc) {
  RLHF_CHECK(out_, path, ": cannot open for writing");
  RLHF_CHECK(report_to == "none" || report_to == "tensorboard", "--report-to: \"", report_to,
             "\" is not one of none, tensorboard");
  if (report_to == "tensorboard")
    tensorboard_ = std::make_unique<TensorBoardWriter>(
        (std::filesystem::path(path).parent_path() / "runs").string());
}

MetricsLog::~MetricsLog() = default;

void MetricsLog::log(int64_t step, const Metrics& metrics, const std::string& split) {
  // Every training line carries the process's peak memory so far (common/memory.h).
  Metrics m = metrics;
  if (split == "train")
    for (auto& kv : memory_metrics()) m.push_back(std::move(kv));
  nlohmann::ordered_json j;
  j["step"] = step;
  j["split"] = split;
  for (const auto& [name, v] : m) j[name] = std::isfinite(v) ? nlohmann::ordered_json(v) : nlohmann::ordered_json();
  out_ << j.dump() << "\n";
  out_.flush();
  RLHF_CHECK(out_, path_, ": write failed (disk full?)");
  if (tensorboard_) {
    ScalarValues tagged;
    for (const auto& [name, v] : m) tagged.emplace_back(split + "/" + name, v);
    tensorboard_->add_scalars(step, tagged);
  }
}

Progress::Progress(int64_t total, int64_t first, int64_t log_every, std::string label)
    : total_(total),
      first_(first),
      log_every_(std::max<int64_t>(1, log_every)),
      label_(std::move(label)),
      tty_(::isatty(STDERR_FILENO) != 0),
      start_(std::chrono::steady_clock::now()) {}

double Progress::elapsed_s() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void Progress::update(int64_t step, const Metrics& m) {
  const double el = elapsed_s();
  const double done = static_cast<double>(step - first_);
  const double eta = done > 0 ? el / done * static_cast<double>(total_ - step) : NAN;
  if (tty_) {
    const int width = 24;
    const int filled = total_ > 0 ? static_cast<int>(width * std::min<double>(1.0, double(step) / total_)) : 0;
    std::string bar(filled, '#');
    bar += std::string(width - filled, '.');
    std::cerr << "\r\033[K" << label_ << " [" << bar << "] " << step << "/" << total_ << " " << fmt_duration(el)
              << "<" << fmt_duration(eta) << " " << format_metrics(m) << std::flush;
    bar_shown_ = true;
  } else if (step % log_every_ == 0 || step == total_ || step == first_ + 1) {
    std::cerr << label_ << " step " << step << "/" << total_ << " " << format_metrics(m) << " elapsed "
              << fmt_duration(el) << " eta " << fmt_duration(eta) << "\n";
  }
}

void Progress::note(const std::string& line) {
  if (tty_ && bar_shown_) std::cerr << "\r\033[K";
  std::cerr << line << "\n";
  bar_shown_ = false;
}

void Progress::finish() {
  if (tty_ && bar_shown_) std::cerr << "\n";
  bar_shown_ = false;
}

}  // namespace rlhf::train
