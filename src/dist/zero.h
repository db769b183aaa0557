// ZeRO stage 1 (Rajbhandari et al. 2020, "ZeRO: Memory Optimizations Toward Training Trillion Parameter Models"):
// the optimizer's state sharded over the ranks, at the granularity of whole parameter tensors (`--zero 1`).
//
//   owner(p)  every trainable tensor belongs to one rank: largest first, each to the rank holding the fewest
//             elements so far (ties: the lower rank), the same on every rank
//   step      g_p ← Σ_r g_p,r on owner(p) only          (c10d reduce per tensor, all in flight: reduce-scatter's
//                                                         bytes, one parameter's worth per step)
//             ‖g‖ = sqrt(Σ_r Σ_{p: owner(p) = r} ‖g_p‖²)  (one scalar all-reduce); owned grads clipped as
//                                                         clip_grad_norm would clip the whole gradient
//             AdamW on the owned tensors only: m and v exist for them alone (8 bytes/param/N instead of 8)
//             p ← p of owner(p)                          (c10d broadcast from each owner: all-gather's bytes)
//   checkpoint the moments gathered to rank 0 for the write (gather_state; rank 0 then briefly holds them all) and
//             dropped again (drop_foreign_state): the file is plain data parallel's, so it resumes with any world
//             size, with or without --zero; on resume each rank keeps its own tensors' moments
// The update is the same arithmetic as data parallel's (same sums, same AdamW per tensor), so --zero 1 trains the
// same weights as 1 process to float tolerance (tests/test_dist.cpp).
#pragma once
#include <cstdint>
#include <vector>

#include "dist/world.h"
#include "train/optim.h"

namespace rlhf::dist {

// owner(p) for tensors of these element counts over `ranks` ranks (see the top).
std::vector<int> zero_owners(const std::vector<int64_t>& numels, int ranks);

class Zero1 {
 public:
  Zero1(World& world, train::AdamW& opt);
  // After the last micro-batch's backward: reduce, clip to max_grad_norm (<= 0: no clipping), AdamW at lr on the
  // owned tensors, broadcast. Every grad is left undefined. Returns ‖g‖ before clipping, as clip_grad_norm does.
  double step(double lr, double max_grad_norm);
  // Every rank calls it; afterwards rank 0's optimizer has the moments of every tensor (for save_checkpoint).
  void gather_state();
  // Each rank keeps only its own tensors' moments (after a checkpoint write, and after loading one).
  void drop_foreign_state();
  const std::vector<int>& owners() const { return owner_; }  // by opt.params() index

 private:
  World& world_;
  train::AdamW& opt_;
  std::vector<torch::Tensor> params_;  // opt.params()
  std::vector<std::string> names_;     // their names, same order
  std::vector<int> owner_;
};

}  // namespace rlhf::dist
