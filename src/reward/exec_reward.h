// `--reward exec:COMMAND`: a reward function in any language, as one long-lived subprocess (/bin/sh -c COMMAND)
// that reads one JSON request per line on stdin and writes one JSON answer per line on stdout, in order. The
// request and answer are those of the HTTP protocol (protocol.h): {"query", "prompts", "labels", "responses",
// "iteration"} → {"rewards": [...], "extra_logs": {...}}. stdout carries only answers (log to stderr, which is
// passed through). When the process dies (end of file on its stdout) it is started again once and the batch is
// sent again; a second death, a batch not answered within the timeout (the process is then killed) or a
// malformed answer is an error naming the command.
#pragma once
#include <string>

#include "reward/batch.h"

namespace rlhf::reward {

class ExecReward {
 public:
  ExecReward(std::string command, double timeout_s);
  ~ExecReward();  // closes its stdin, waits up to 2 s for it to exit, then kills it
  ExecReward(const ExecReward&) = delete;
  ExecReward& operator=(const ExecReward&) = delete;
  Scores score(const Batch& batch);
  int restarts() const { return restarts_; }

 private:
  void start();
  void stop();
  // Sends line, returns the answer line; false when the process died (EOF or a broken pipe).
  bool exchange(const std::string& line, std::string& answer);
  std::string command_;
  double timeout_s_;
  int pid_ = -1;
  int fd_ = -1;         // our end of the socket pair: the child's stdin and stdout
  std::string buffer_;  // bytes read past the last answer line
  int restarts_ = 0;
};

}  // namespace rlhf::reward
