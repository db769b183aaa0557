// The processes of one data-parallel run and the collectives between them, on libtorch's c10d: a TCPStore that
// rank 0 serves at MASTER_ADDR:MASTER_PORT (rendezvous, heartbeats, small exchanges) and a process group,
// ProcessGroupGloo on CPU or ProcessGroupNCCL on CUDA (one GPU per local rank), for tensors.
//
// Faults: every rank writes a heartbeat (rlhf/alive/R, every second, from its own thread and store connection),
// the number of the collective it has entered (rlhf/seq/R) and, when it leaves, how (rlhf/exit/R). A collective
// that fails (a peer's socket closed) or outlasts --dist-timeout is turned into an error that names the rank that
// is to blame: "rank 1 stopped: no heartbeat for 6 s (killed or crashed)", "rank 1 is alive but still before
// collective 12 ... (hung?)", "rank 1 exited with an error", or "rank 0 is gone (its store is unreachable)".
//
// A World of one process (no launcher in the environment) makes every collective the identity.
#pragma once
#include <torch/types.h>

#include <memory>
#include <string>
#include <vector>

#include "dist/launch_env.h"
#include "dist/options.h"

namespace rlhf::dist {

class World {
 public:
  World();  // one process
  // Joins the launch described by env (blocks until all world_size ranks have joined, at most opts.timeout_s).
  // device: where the tensors of the collectives live (NCCL needs cuda:local_rank).
  World(const LaunchEnv& env, const DistOptions& opts, torch::Device device);
  ~World();
  World(const World&) = delete;
  World& operator=(const World&) = delete;

  int rank() const { return env_.rank; }
  int size() const { return env_.world_size; }
  bool is_main() const { return env_.rank == 0; }
  bool distributed() const { return env_.world_size > 1; }
  const LaunchEnv& env() const { return env_; }
  const DistOptions& options() const { return opts_; }
  std::string backend() const;  // "gloo" | "nccl" | "none"

  // Σ over ranks, in place, of each tensor (any device and layout: one off the collective's device, CPU for Gloo
  // or this rank's GPU for NCCL, or not contiguous, goes through a copy). All are issued at once and
  // then waited for, so several buckets are in flight together. `what` names the collective in errors.
  void all_reduce_sum(std::vector<torch::Tensor>& tensors, const std::string& what);
  // Rank root's values into every rank's tensors, in place.
  void broadcast(std::vector<torch::Tensor>& tensors, int root, const std::string& what);
  // The same with a root per tensor (ZeRO-1: each parameter from the rank that updated it), all in flight.
  void broadcast(std::vector<torch::Tensor>& tensors, const std::vector<int>& roots, const std::string& what);
  // Σ over ranks of tensors[i] into rank roots[i]'s tensors[i]; the other ranks' copies are left unspecified.
  void reduce_sum(std::vector<torch::Tensor>& tensors, const std::vector<int>& roots, const std::string& what);
  void barrier(const std::string& what);
  // Every rank's string, in rank order, through the store (for small things: hashes, names).
  std::vector<std::string> all_gather_strings(const std::string& key, const std::string& value);
  // Throws on every rank when some rank's value differs from rank 0's, naming the ranks and `what`.
  void check_same(const std::string& what, const std::string& value);
  // A clean end: barrier, heartbeats stopped on all ranks before rank 0 takes its store down.
  void finish();

  struct Impl;

 private:
  LaunchEnv env_;
  DistOptions opts_;
  std::unique_ptr<Impl> impl_;
};

// The device a rank trains on: "cuda" without an index becomes cuda:LOCAL_RANK; others unchanged.
torch::Device rank_device(torch::Device requested, const LaunchEnv& env);

}  // namespace rlhf::dist
