// rlhf: the command-line entry point. Subcommands live in cmd_*.cpp and register themselves (command.h).
// Errors thrown anywhere below are caught here once, printed, and turned into exit code 1.
#include <iostream>

#include "command.h"
#include "common/error.h"
#include "common/runtime.h"

int main(int argc, char** argv) {
  rlhf::ensure_passive_openmp(argc, argv);
  CLI::App app{"rlhf: reinforcement learning from human feedback, end to end, in one native program"};
  app.require_subcommand(1);
  app.set_version_flag("--version", [] { return rlhf::build_info(); });
  auto& rt = rlhf::cli::runtime_flags();
  std::vector<std::pair<CLI::App*, rlhf::cli::Action>> actions;
  for (const auto& cmd : rlhf::cli::registry()) {
    CLI::App* sub = app.add_subcommand(cmd.name, cmd.description);
    sub->add_option("--device", rt.device, "auto | cpu | cuda | cuda:N (auto: cuda when available)")
        ->capture_default_str();
    sub->add_option("--threads", rt.threads, "CPU threads for torch and BLAS (0: OMP_NUM_THREADS, else all cores)")->capture_default_str();
    actions.emplace_back(sub, cmd.setup(*sub));
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    rlhf::set_threads(rt.threads);
    for (auto& [sub, action] : actions)
      if (sub->parsed()) return action();
  } catch (const rlhf::Error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  } catch (const c10::Error& e) {
    std::cerr << "error: " << e.what_without_backtrace() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
