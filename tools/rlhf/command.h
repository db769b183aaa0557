// Subcommand registry: each cmd_*.cpp registers itself with a static Command object, so adding a
// subcommand touches one file. main.cpp builds the CLI11 app from the registry.
//
//   static rlhf::cli::Command reg{"forward", "Run a model on input ids", [](CLI::App& app) {
//     auto opts = std::make_shared<ForwardOptions>();
//     app.add_option("--model", opts->model, "...")->required();
//     return [opts] { return run_forward(*opts); };   // the action, run after parsing; returns exit code
//   }};
#pragma once
#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

namespace rlhf::cli {

using Action = std::function<int()>;
using Setup = std::function<Action(CLI::App&)>;

struct CommandInfo {
  std::string name, description;
  Setup setup;
};

// --device and --threads, added by main to every subcommand and applied before its action runs.
// Commands read them here at the CLI boundary and pass the device down explicitly.
struct RuntimeFlags {
  std::string device = "auto";  // auto | cpu | cuda | cuda:N
  int threads = 0;              // 0: all cores
};
inline RuntimeFlags& runtime_flags() {
  static RuntimeFlags flags;
  return flags;
}

inline std::vector<CommandInfo>& registry() {
  static std::vector<CommandInfo> commands;
  return commands;
}

struct Command {
  Command(std::string name, std::string description, Setup setup) {
    registry().push_back({std::move(name), std::move(description), std::move(setup)});
  }
};

}  // namespace rlhf::cli
