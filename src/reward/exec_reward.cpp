// The subprocess reward function; see exec_reward.h. The child's stdin and stdout are one end of a Unix socket
// pair, so that writing to a dead child fails with EPIPE (MSG_NOSIGNAL) instead of raising SIGPIPE in this
// process; posix_spawn, not fork, since libtorch's thread pools are running.
#include "reward/exec_reward.h"

#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <iostream>
#include <thread>

#include "common/error.h"
#include "reward/protocol.h"

extern char** environ;

namespace rlhf::reward {
namespace {

std::string exit_text(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string("was killed by signal ") + strsignal(WTERMSIG(status));
  return "stopped";
}

}  // namespace

ExecReward::ExecReward(std::string command, double timeout_s) : command_(std::move(command)), timeout_s_(timeout_s) {
  start();
}

ExecReward::~ExecReward() { stop(); }

void ExecReward::start() {
  int sv[2];
  RLHF_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "--reward exec:", command_,
             ": socketpair failed: ", std::strerror(errno));
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, sv[1], 0);
  posix_spawn_file_actions_adddup2(&fa, sv[1], 1);
  const char* argv[] = {"sh", "-c", command_.c_str(), nullptr};
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, "/bin/sh", &fa, nullptr, const_cast<char* const*>(argv), environ);
  posix_spawn_file_actions_destroy(&fa);
  close(sv[1]);
  if (rc != 0) {
    close(sv[0]);
    fail("--reward exec:", command_, ": could not start /bin/sh: ", std::strerror(rc));
  }
  pid_ = pid;
  fd_ = sv[0];
  buffer_.clear();
}

void ExecReward::stop() {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
  if (pid_ <= 0) return;
  int status = 0;
  for (int i = 0; i < 200; ++i) {  // 2 s for a clean exit on end of input
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  kill(pid_, SIGKILL);
  waitpid(pid_, &status, 0);
  pid_ = -1;
}

bool ExecReward::exchange(const std::string& line, std::string& answer) {
  size_t sent = 0;
  while (sent < line.size()) {
    const ssize_t n = send(fd_, line.data() + sent, line.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;  // EPIPE / ECONNRESET: the process is gone
    sent += static_cast<size_t>(n);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s_);
  while (true) {
    const auto nl = buffer_.find('\n');
    if (nl != std::string::npos) {
      answer = buffer_.substr(0, nl);
      buffer_.erase(0, nl + 1);
      if (answer.find_first_not_of(" \t\r") == std::string::npos) continue;  // blank lines are ignored
      return true;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      kill(pid_, SIGKILL);
      fail("--reward exec:", command_, ": no answer within ", timeout_s_,
           " s; the process was killed (hint: --reward-timeout; it must write one JSON line per request and flush)");
    }
    pollfd p{fd_, POLLIN, 0};
    const int r = poll(&p, 1, static_cast<int>(left.count()));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) continue;
    char buf[65536];
    const ssize_t n = recv(fd_, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;  // end of file: the process closed its stdout or died
    buffer_.append(buf, static_cast<size_t>(n));
  }
}

Scores ExecReward::score(const Batch& batch) {
  const std::string who = "reward command \"" + command_ + "\"";
  const std::string line = make_request(batch).dump() + "\n";
  std::string answer;
  while (!exchange(line, answer)) {
    int status = 0;
    const bool reaped = pid_ > 0 && waitpid(pid_, &status, 0) == pid_;
    const std::string how = reaped ? exit_text(status) : "closed its stdout";
    pid_ = -1;
    RLHF_CHECK(restarts_ == 0, who, " ", how, " again after its restart; giving up (hint: run it by hand with a ",
               "request line on stdin to see its error)");
    ++restarts_;
    std::cerr << "warning: " << who << " " << how << "; starting it again (once) and resending the batch\n";
    stop();
    start();
  }
  return parse_answer(answer, batch.size(), who);
}

}  // namespace rlhf::reward
