// Where this process sits in a multi-process launch, read from the launcher's environment variables: torchrun
// (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT), Open MPI's mpirun
// (OMPI_COMM_WORLD_RANK / _SIZE / _LOCAL_RANK / _LOCAL_SIZE) and Slurm's srun (SLURM_PROCID, SLURM_NTASKS,
// SLURM_LOCALID, SLURM_NTASKS_PER_NODE...). torchrun's names win when both are set, as in torch.distributed.
// No launcher: one process, rank 0 of 1.
#pragma once
#include <functional>
#include <optional>
#include <string>

namespace rlhf::dist {

struct LaunchEnv {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;        // which GPU on this node (cuda:local_rank)
  int local_world_size = 1;  // processes on this node
  std::string master_addr = "127.0.0.1";  // where rank 0's TCPStore listens
  int master_port = 29500;                // torchrun's default
  std::string launcher = "none";          // "torchrun" | "mpirun" | "slurm" | "none"
  // torchrun's agent already serves the store at MASTER_ADDR:MASTER_PORT (TORCHELASTIC_USE_AGENT_STORE=True, as
  // torch.distributed's env:// rendezvous reads it): every rank, rank 0 included, connects to it as a client.
  bool agent_store = false;
  bool distributed() const { return world_size > 1; }
  std::string describe() const;           // "rank 1 of 2 (local 1 of 2, torchrun, store 127.0.0.1:29500)"
};

// getenv by default; tests pass their own map. Throws naming the variable on a malformed or inconsistent value
// (RANK >= WORLD_SIZE, a non-number, WORLD_SIZE without RANK, a multi-node launch without MASTER_ADDR).
using GetEnv = std::function<std::optional<std::string>(const std::string& name)>;
LaunchEnv read_launch_env(const GetEnv& get = nullptr);

}  // namespace rlhf::dist
