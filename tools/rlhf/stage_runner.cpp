#include "stage_runner.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "common/error.h"

namespace fs = std::filesystem;

namespace rlhf::cli {

std::string shell_quote(const std::string& s) {
  if (!s.empty() && s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_=./:,") ==
                        std::string::npos)
    return s;
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

StageRunner::StageRunner(std::string run_dir, bool rerun_done) : run_dir_(std::move(run_dir)), rerun_done_(rerun_done) {
  fs::create_directories(fs::path(run_dir_) / "logs");
  const auto path = fs::path(run_dir_) / "stages.json";
  if (fs::exists(path) && !rerun_done_) {
    try {
      std::ifstream in(path);
      stages_ = nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception&) {
      stages_ = nlohmann::json::array();
    }
  }
}

void StageRunner::save() {
  const auto path = fs::path(run_dir_) / "stages.json";
  {
    std::ofstream out(path.string() + ".tmp");
    out << stages_.dump(2) << "\n";
  }
  fs::rename(path.string() + ".tmp", path);
}

void StageRunner::record(const std::string& name, double seconds, const std::string& what) {
  for (auto it = stages_.begin(); it != stages_.end();)
    it = (*it)["stage"] == name ? stages_.erase(it) : it + 1;
  stages_.push_back({{"stage", name}, {"seconds", seconds}, {"command", what}});
  save();
}

void StageRunner::run(const Stage& stage, int index, int total) {
  std::string cmdline = "rlhf";
  for (const auto& a : stage.args) cmdline += " " + shell_quote(a);
  if (!stage.done_marker.empty() && fs::exists(stage.done_marker) && !rerun_done_) {
    std::cerr << "[" << index << "/" << total << "] " << stage.name << ": already done (" << stage.done_marker
              << "), skipped\n";
    return;
  }
  std::cerr << "[" << index << "/" << total << "] " << stage.name << ": " << cmdline << "\n";
  const std::string log = (fs::path(run_dir_) / "logs" / (stage.name + ".log")).string();
  const auto t0 = std::chrono::steady_clock::now();
  pid_t pid = ::fork();
  RLHF_CHECK(pid >= 0, "stage ", stage.name, ": fork failed");
  if (pid == 0) {
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      ::dup2(fd, STDOUT_FILENO);
      ::close(fd);
    }
    std::vector<std::string> args = {"rlhf"};
    args.insert(args.end(), stage.args.begin(), stage.args.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv("/proc/self/exe", argv.data());
    std::perror("execv /proc/self/exe");
    ::_exit(127);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::string tail;
    std::ifstream in(log);
    std::string line;
    std::vector<std::string> lines;
    while (std::getline(in, line)) lines.push_back(line);
    for (size_t i = lines.size() > 10 ? lines.size() - 10 : 0; i < lines.size(); ++i) tail += "\n  " + lines[i];
    fail("stage ", stage.name, " failed (exit ", WIFEXITED(status) ? WEXITSTATUS(status) : -1, ") after ", secs,
         " s; command: ", cmdline, "; log: ", log, tail);
  }
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.1f s", secs);
  std::cerr << "    done in " << buf << " (log: " << log << ")\n";
  record(stage.name, secs, cmdline);
}

void label_stages_as_one(std::vector<Stage>& stages, const std::string& marker, const std::string& db, bool rerun) {
  if (std::filesystem::exists(marker) && !rerun)
    for (auto& s : stages)
      if (s.args[0] == "label") s.done_marker = marker;
  if (rerun || !std::filesystem::exists(marker)) std::filesystem::remove(db);
}

}  // namespace rlhf::cli
