// rlhf report RUN_DIR [--out FILE]
// Writes one self-contained HTML page (inline SVG charts, no scripts or external files) summarising a run folder
// (eval.json, ppo/ reward/ sft/ dpo/ metrics.jsonl, samples.jsonl, overoptimize.jsonl, stages.json; all optional)
// and prints its path. Default FILE: RUN_DIR/report.html.
#include <iostream>

#include "command.h"
#include "rlhf/report.h"

namespace {

struct ReportOptions {
  std::string run_dir;  // the run folder written by `rlhf demo --out DIR` or `rlhf pipeline`
  std::string out;      // empty: RUN_DIR/report.html
};

int run_report(const ReportOptions& o) {
  std::cout << rlhf::write_report(o.run_dir, o.out) << "\n";
  return 0;
}

rlhf::cli::Command reg{"report", "Write RUN_DIR/report.html: charts, evaluation table and samples of a run",
                       [](CLI::App& app) {
                         auto o = std::make_shared<ReportOptions>();
                         app.add_option("run_dir", o->run_dir, "run folder (from rlhf demo --out DIR)")->required();
                         app.add_option("--out", o->out, "HTML file to write (default: RUN_DIR/report.html)");
                         return [o] { return run_report(*o); };
                       }};

}  // namespace
