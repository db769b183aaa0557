// Supervised fine-tuning: next-token cross-entropy on the response (assistant) tokens only.
//
//   L = −(1/N) Σ_{b,t : mask[b,t] = 1} log p_θ(x[b,t] | x[b,<t]),   N = Σ mask   (mask: 1 on loss tokens)
//
// Examples come from rlhf/examples.h (prompt/completion, messages, text). Batches are length-bucketed and
// right-padded, or packed (several examples per row, positions restarting per example).
#pragma once
#include <torch/types.h>

#include <vector>

#include "model/model.h"
#include "train/batching.h"
#include "train/loop.h"

namespace rlhf::sft {

struct SftConfig {
  int64_t batch_size = 8;
  bool packing = false;     // pack examples into rows of max_len tokens
  int64_t max_len = 512;    // row length when packing
  int64_t pad_id = 0;
  torch::Device device = torch::kCPU;
};

// Mean NLL over the loss tokens of a batch (B,T) and their count.
std::pair<torch::Tensor, int64_t> sft_loss(TransformerLM& model, const train::PaddedBatch& batch);

// Trains model on train_data (eval_data may be empty) with the shared loop.
train::LoopResult train_sft(TransformerLM& model, const std::vector<train::TokenSeq>& train_data,
                            const std::vector<train::TokenSeq>& eval_data, const SftConfig& cfg,
                            const train::LoopOptions& loop);

}  // namespace rlhf::sft
