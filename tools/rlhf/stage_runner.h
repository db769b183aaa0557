// Runs pipeline stages as ordinary `rlhf` commands in child processes (the same binary), so that every stage of
// `rlhf demo` and `rlhf pipeline` is a command a user can copy and rerun. Keeps stages.json in the run folder.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace rlhf::cli {

struct Stage {
  std::string name;               // "sft", "reward", ...
  std::vector<std::string> args;  // arguments after `rlhf`
  std::string done_marker;        // a path that exists once the stage finished (skip it then); "" = always run
};

class StageRunner {
 public:
  StageRunner(std::string run_dir, bool rerun_done);
  // Runs the stage (or skips it when its marker exists); stdout goes to RUN/logs/NAME.log, stderr (progress)
  // to the terminal. Throws naming the stage, its exit status and its log on failure.
  void run(const Stage& stage, int index, int total);
  // Records an in-process stage (e.g. evaluation) in stages.json.
  void record(const std::string& name, double seconds, const std::string& what);

 private:
  void save();
  std::string run_dir_;
  bool rerun_done_;
  nlohmann::json stages_ = nlohmann::json::array();
};

// The labelling stages (`label import`, `label auto`, `label export`) are one unit: when `marker` (the exported
// pairs) exists they are all skipped, otherwise (or with rerun) all rerun from a fresh database `db`.
void label_stages_as_one(std::vector<Stage>& stages, const std::string& marker, const std::string& db, bool rerun);

std::string shell_quote(const std::string& s);

}  // namespace rlhf::cli
