// Turning variable-length examples into padded batches.
//
// Length bucketing: shuffle all indices (seeded by seed and epoch), cut them into chunks of
// batch_size·bucket_batches, sort each chunk by length, cut into batches, shuffle the batches. Padding then costs
// little while the order stays random. Deterministic in (seed, epoch), so a resumed run sees the same batches
// (the data position is the batch index within the epoch).
//
// Padding is on the right: ids (B,T) with pad_id after the end, attention_mask (B,T) 1 on real tokens.
// Packing (SFT): examples are concatenated greedily into rows of at most max_len tokens; position ids restart at
// 0 for each example. Attention is not blocked between examples of a row (as with transformers' simple packing);
// use it for plain LM / SFT data where that leak is acceptable.
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <vector>

#include "train/shuffle.h"
#include "train/token_seq.h"

namespace rlhf::train {

struct PaddedBatch {
  torch::Tensor input_ids;       // (B,T) int64, pad_id beyond each row's length
  torch::Tensor attention_mask;  // (B,T) int64, 1 on real tokens
  torch::Tensor loss_mask;       // (B,T) float32, loss_mask of the examples, 0 on padding
  torch::Tensor position_ids;    // (B,T) int64 (packing: restarts per example); undefined = default
  int64_t num_tokens = 0;        // real tokens
};

// Right-pads seqs to the longest (or to pad_to when larger).
PaddedBatch pad_right(const std::vector<TokenSeq>& seqs, int64_t pad_id, int64_t pad_to = 0);

// Greedy packing in order: rows of at most max_len tokens, each example whole (examples longer than max_len
// must be truncated before). Returns the rows as index lists into seqs.
std::vector<std::vector<int64_t>> pack_sequences(const std::vector<int64_t>& lengths, int64_t max_len);
// The packed rows as one padded batch with restarting position ids.
PaddedBatch pad_packed(const std::vector<TokenSeq>& seqs, const std::vector<std::vector<int64_t>>& rows,
                       int64_t pad_id);

}  // namespace rlhf::train
