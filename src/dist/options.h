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
  // 0: plain data parallel (every rank holds all of AdamW's moments). 1: ZeRO stage 1 (dist/zero.h): each rank
  // holds the moments of its share of the tensors; gradients are reduced to, and parameters broadcast from, their
  // owners.
  int zero = 0;

  void validate() const {
    RLHF_CHECK(timeout_s >= 1, "--dist-timeout must be >= 1 second, got ", timeout_s);
    RLHF_CHECK(backend == "auto" || backend == "gloo" || backend == "nccl", "--dist-backend: \"", backend,
               "\" is not one of auto, gloo, nccl");
    RLHF_CHECK(bucket_mb >= 1, "--dist-bucket-mb must be >= 1, got ", bucket_mb);
    RLHF_CHECK(zero == 0 || zero == 1, "--zero: ", zero, " is not a ZeRO stage this build has (0 or 1)");
  }
  // Not in the run's config (a resumed run may change these), but the ranks of one launch must agree on them.
  nlohmann::json to_json() const {
    return {{"timeout_s", timeout_s}, {"backend", backend}, {"bucket_mb", bucket_mb}, {"zero", zero}};
  }
};

}  // namespace rlhf::dist
