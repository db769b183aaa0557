#include "dist/launch_env.h"

#include <cstdlib>
#include <sstream>

#include "common/error.h"

namespace rlhf::dist {

std::string LaunchEnv::describe() const {
  std::ostringstream o;
  o << "rank " << rank << " of " << world_size << " (local " << local_rank << " of " << local_world_size << ", "
    << launcher << ", store " << master_addr << ":" << master_port << (agent_store ? ", the agent's" : "") << ")";
  return o.str();
}

namespace {

int parse_int(const std::string& name, const std::string& v, int lo) {
  size_t used = 0;
  long x = 0;
  try {
    x = std::stol(v, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  RLHF_CHECK(used == v.size() && !v.empty() && x >= lo && x < (1 << 30), "environment variable ", name, "=\"", v,
             "\" is not an integer >= ", lo);
  return static_cast<int>(x);
}

// Slurm's SLURM_TASKS_PER_NODE is "2(x3),1": the first node's count is enough for a local size when uniform.
int slurm_first_count(const std::string& v) {
  size_t end = 0;
  while (end < v.size() && v[end] >= '0' && v[end] <= '9') ++end;
  return end == 0 ? 1 : parse_int("SLURM_TASKS_PER_NODE", v.substr(0, end), 1);
}

}  // namespace

LaunchEnv read_launch_env(const GetEnv& get_in) {
  GetEnv get = get_in ? get_in : [](const std::string& n) -> std::optional<std::string> {
    const char* v = std::getenv(n.c_str());
    if (!v) return std::nullopt;
    return std::string(v);
  };
  LaunchEnv e;
  auto need = [&](const std::string& name, const std::string& because) {
    auto v = get(name);
    RLHF_CHECK(v.has_value(), "environment variable ", name, " is not set but ", because,
               " is: set both (torchrun, mpirun and srun set them for you)");
    return *v;
  };
  if (get("WORLD_SIZE") || get("RANK")) {
    e.launcher = get("TORCHELASTIC_RUN_ID") ? "torchrun" : "env";
    e.agent_store = get("TORCHELASTIC_USE_AGENT_STORE").value_or("") == "True";
    e.world_size = parse_int("WORLD_SIZE", need("WORLD_SIZE", "RANK"), 1);
    e.rank = parse_int("RANK", need("RANK", "WORLD_SIZE"), 0);
    e.local_rank = get("LOCAL_RANK") ? parse_int("LOCAL_RANK", *get("LOCAL_RANK"), 0) : e.rank;
    e.local_world_size =
        get("LOCAL_WORLD_SIZE") ? parse_int("LOCAL_WORLD_SIZE", *get("LOCAL_WORLD_SIZE"), 1) : e.world_size;
  } else if (get("OMPI_COMM_WORLD_SIZE")) {
    e.launcher = "mpirun";
    e.world_size = parse_int("OMPI_COMM_WORLD_SIZE", *get("OMPI_COMM_WORLD_SIZE"), 1);
    e.rank = parse_int("OMPI_COMM_WORLD_RANK", need("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"), 0);
    e.local_rank = get("OMPI_COMM_WORLD_LOCAL_RANK")
                       ? parse_int("OMPI_COMM_WORLD_LOCAL_RANK", *get("OMPI_COMM_WORLD_LOCAL_RANK"), 0)
                       : e.rank;
    e.local_world_size = get("OMPI_COMM_WORLD_LOCAL_SIZE")
                             ? parse_int("OMPI_COMM_WORLD_LOCAL_SIZE", *get("OMPI_COMM_WORLD_LOCAL_SIZE"), 1)
                             : e.world_size;
  } else if (get("SLURM_PROCID") && get("SLURM_NTASKS")) {
    e.launcher = "slurm";
    e.world_size = parse_int("SLURM_NTASKS", *get("SLURM_NTASKS"), 1);
    e.rank = parse_int("SLURM_PROCID", *get("SLURM_PROCID"), 0);
    e.local_rank = get("SLURM_LOCALID") ? parse_int("SLURM_LOCALID", *get("SLURM_LOCALID"), 0) : 0;
    e.local_world_size = get("SLURM_NTASKS_PER_NODE")
                             ? parse_int("SLURM_NTASKS_PER_NODE", *get("SLURM_NTASKS_PER_NODE"), 1)
                             : (get("SLURM_TASKS_PER_NODE") ? slurm_first_count(*get("SLURM_TASKS_PER_NODE"))
                                                            : e.world_size);
  }
  RLHF_CHECK(e.rank < e.world_size, "rank ", e.rank, " is not below the world size ", e.world_size, " (",
             e.launcher, " environment)");
  RLHF_CHECK(e.local_rank < e.local_world_size, "local rank ", e.local_rank, " is not below the local world size ",
             e.local_world_size, " (", e.launcher, " environment)");
  if (auto p = get("MASTER_PORT")) e.master_port = parse_int("MASTER_PORT", *p, 1);
  RLHF_CHECK(e.master_port < 65536, "environment variable MASTER_PORT=", e.master_port, " is not a TCP port");
  if (auto a = get("MASTER_ADDR")) e.master_addr = *a;
  else if (e.launcher == "slurm" && get("SLURM_LAUNCH_NODE_IPADDR")) e.master_addr = *get("SLURM_LAUNCH_NODE_IPADDR");
  else
    RLHF_CHECK(!e.distributed() || e.local_world_size == e.world_size, "a ", e.world_size, "-process launch over ",
               "several nodes needs MASTER_ADDR (the address of rank 0's node); only single-node launches default "
               "to 127.0.0.1");
  return e;
}

}  // namespace rlhf::dist
