// The run report: one self-contained HTML page (inline SVG charts, inline CSS, no scripts, fonts or links) that
// summarises a run folder written by `rlhf demo` / `rlhf pipeline`. Every input file is optional: a missing file
// turns its section into "not run"; a malformed one is an error naming the file and line.
//
//   RUN/eval.json            evaluation table (base, sft, best_of_n, dpo, ppo; best values highlighted)
//   RUN/ppo/metrics.jsonl    charts over PPO iterations (score + gold, KL, β, losses, clip fraction, entropy, length…)
//   RUN/reward/metrics.jsonl reward-model loss and accuracy; final held-out accuracy as a headline
//   RUN/sft/metrics.jsonl, RUN/dpo/metrics.jsonl   loss charts
//   RUN/samples.jsonl        prompts with SFT and PPO answers side by side
//   RUN/overoptimize.jsonl   proxy and gold reward against sqrt(KL) (Gao et al. 2022), the gold peak marked
//   RUN/stages.json          stage times and commands
#pragma once
#include <string>
#include <vector>

namespace rlhf {

// One line of a chart. Non-finite points (NaN, ±inf) are dropped and break the line into segments.
struct ChartSeries {
  std::string name;
  std::vector<double> xs, ys;  // same length
  std::string color;           // CSS colour; empty: series_color(name)
  bool dashed = false;
};

// A vertical marker line at x with a label, e.g. where the gold reward peaks.
struct ChartMarker {
  double x = 0;
  std::string label;
};

struct ChartOptions {
  std::string y_label;                // empty: none
  std::vector<ChartMarker> markers;
  int width = 400, height = 250;      // viewBox size; the page scales the chart to its grid cell
  bool show_points = false;           // dots on every point (also drawn automatically for short series)
};

// An inline-SVG line chart with axes, "nice" ticks (1, 2, 5 × 10^k), grid, axis labels, title and a legend when
// there is more than one series. Handles empty input ("no data"), a single point and constant series (the range is
// padded). The result has no xmlns attribute: it is meant to be inlined into HTML5, where none is needed.
std::string svg_line_chart(const std::string& title, const std::string& x_label,
                           const std::vector<ChartSeries>& series, const ChartOptions& options = {});

// Tick positions with about `target` steps of 1, 2 or 5 × 10^k, from the last multiple of the step at or below lo
// to the first at or above hi, so they cover [lo, hi]. nice_ticks(0, 1) == nice_ticks(0.05, 0.93) ==
// {0, 0.2, 0.4, 0.6, 0.8, 1}; empty when lo or hi is not finite or hi < lo.
std::vector<double> nice_ticks(double lo, double hi, int target = 5);

// The colour a series gets everywhere in the report (score is always blue, gold always amber, ...).
std::string series_color(const std::string& name);

// The report page for RUN_DIR as a string.
std::string render_report(const std::string& run_dir);

// Writes the report to out_html (default: RUN_DIR/report.html), atomically; returns the path written.
std::string write_report(const std::string& run_dir, const std::string& out_html = "");

}  // namespace rlhf
