// Data parallel for PPO / GRPO / RLOO (rl_train on dist::World): which rollout rows a rank owns, and the few
// global statistics the algorithms need, so that W processes compute what one process computes on the whole batch.
//
//   global batch   B = batch_size·G rows; prompt j of the iteration (iteration_prompts) has rows j·G … j·G + G − 1
//   rank r of W    owns prompts [⌊j_r⌋, ⌊j_{r+1}⌋), j_r = r·batch_size/W, i.e. rows [lo_r, hi_r) = G·[⌊j_r⌋, ⌊j_{r+1}⌋):
//                  contiguous, so a GRPO / RLOO group never straddles ranks and rank 0 holds the batch's first rows
//   rollout        each rank samples its rows; row g draws from its own generator seeded by (seed, it, g), so its
//                  tokens do not depend on the rows beside it (rollout_generate_rows)
//   scoring        each rank scores its rows (reward model, servers, rules) and runs π, π_ref, V on them
//   global         gather_rows: a (b, …) tensor of own rows → (B, …) on every rank, as Σ_r of zero-padded copies
//                  (adding zeros is exact). Used for the running score moments, advantage / reward whitening and
//                  the iteration's metrics (mean score, KL_seq for the β controller, lengths, entropy).
//   update         the update's permutation is over the B global rows; a micro-batch's loss on rank r is its own
//                  rows' token mean × n_r/n (tokens owned / tokens in the micro-batch), so Σ_r is the micro-batch's
//                  token mean; gradients are summed (dist/grad_sync.h) before each model's clip.
// One process (world null or of size 1): rows [0, B), gather_rows is the identity, the weights are 1.
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "dist/world.h"

namespace rlhf {

class RLShard {
 public:
  // batch_size prompts of G rows each over the ranks of `world` (null: one process). Throws when there are fewer
  // prompts than ranks.
  RLShard(dist::World* world, int64_t batch_size, int64_t G);

  bool distributed() const { return world_ && world_->distributed(); }
  bool is_main() const { return !world_ || world_->is_main(); }
  int ranks() const { return world_ ? world_->size() : 1; }
  dist::World* world() const { return world_; }
  int64_t global_rows() const { return rows_; }
  int64_t group() const { return G_; }
  // Own prompts [prompt_lo, prompt_hi) of the iteration's batch_size, rows [row_lo, row_hi) of the B.
  int64_t prompt_lo() const { return plo_; }
  int64_t prompt_hi() const { return phi_; }
  int64_t row_lo() const { return plo_ * G_; }
  int64_t row_hi() const { return phi_ * G_; }
  int64_t local_rows() const { return row_hi() - row_lo(); }
  bool owns(int64_t global_row) const { return global_row >= row_lo() && global_row < row_hi(); }

  // local (b = local_rows(), …) → (B, …), every rank the same. A 2-D local narrower than `width` columns is padded
  // with zeros on the right to `width` first (ranks' response lengths differ); width 0: as it is. Float32 out
  // (bool / integer inputs converted), on local's device.
  torch::Tensor gather_rows(const torch::Tensor& local, const std::string& what, int64_t width = 0) const;
  // The own rows of a global (B, …) tensor.
  torch::Tensor own_rows(const torch::Tensor& global) const { return global.narrow(0, row_lo(), local_rows()); }
  // Every rank's `values` (the same count on each), rank after rank: W·k numbers, the same on every rank.
  std::vector<double> gather_values(const std::vector<double>& values, const std::string& what) const;
  // Σ over ranks of each entry.
  std::vector<double> sum(std::vector<double> values, const std::string& what) const;

 private:
  dist::World* world_;
  int64_t rows_, G_, plo_ = 0, phi_ = 0;
};

}  // namespace rlhf
