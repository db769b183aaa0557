// The flags of a multi-process run (dist/world.h). Rank, world size and rendezvous come from the launcher's
// environment (dist/launch_env.h), never from flags, so that one command line serves every rank.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "common/error.h"

namespace rlhf::dist {

struct DistOptions {
  // A collective that waits longer than this for a rank fails on every other rank with an error naming the late
  // rank (a killed rank is named within a few seconds: its heartbeat stops). torch.distributed's default is 30
  // minutes; 5 minutes is long enough for a checkpoint write of a 8B model and short enough to notice a hang.
  int64_t timeout_s = 300;
  // "auto": NCCL when the model is on CUDA (and this libtorch has NCCL), else Gloo. "gloo" | "nccl".
  std::string backend = "auto";
  // Gradients are all-reduced in flat buckets of about this size (DDP's default bucket_cap_mb is 25).
  int64_t bucket_mb = 25;

  void validate() const {
    RLHF_CHECK(timeout_s >= 1, "--dist-timeout must be >= 1 second, got ", timeout_s);
    RLHF_CHECK(backend == "auto" || backend == "gloo" || backend == "nccl", "--dist-backend: \"", backend,
               "\" is not one of auto, gloo, nccl");
    RLHF_CHECK(bucket_mb >= 1, "--dist-bucket-mb must be >= 1, got ", bucket_mb);
  }
  // Not in the run's config hash: a resumed run may change these.
  nlohmann::json to_json() const { return {{"timeout_s", timeout_s}, {"backend", backend}, {"bucket_mb", bucket_mb}}; }
};

}  // namespace rlhf::dist
