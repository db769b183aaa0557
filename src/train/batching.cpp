#include "train/batching.h"

#include <torch/torch.h>

#include <algorithm>

#include "common/error.h"

namespace rlhf::train {

PaddedBatch pad_right(const std::vector<TokenSeq>& seqs, int64_t pad_id, int64_t pad_to) {
  RLHF_CHECK(!seqs.empty(), "pad_right: empty batch");
  int64_t T = pad_to;
  for (const auto& s : seqs) T = std::max<int64_t>(T, static_cast<int64_t>(s.ids.size()));
  const int64_t B = static_cast<int64_t>(seqs.size());
  auto ids = torch::full({B, T}, pad_id, torch::kInt64);
  auto att = torch::zeros({B, T}, torch::kInt64);
  auto lm = torch::zeros({B, T}, torch::kFloat32);
  auto ids_a = ids.accessor<int64_t, 2>();
  auto att_a = att.accessor<int64_t, 2>();
  auto lm_a = lm.accessor<float, 2>();
  PaddedBatch out;
  for (int64_t b = 0; b < B; ++b) {
    const auto& s = seqs[b];
    RLHF_CHECK(s.loss_mask.empty() || s.loss_mask.size() == s.ids.size(), "pad_right: loss mask length ",
               s.loss_mask.size(), " != ids length ", s.ids.size());
    for (size_t t = 0; t < s.ids.size(); ++t) {
      ids_a[b][t] = s.ids[t];
      att_a[b][t] = 1;
      lm_a[b][t] = s.loss_mask.empty() ? 1.f : static_cast<float>(s.loss_mask[t]);
    }
    out.num_tokens += static_cast<int64_t>(s.ids.size());
  }
  out.input_ids = ids;
  out.attention_mask = att;
  out.loss_mask = lm;
  return out;
}

std::vector<std::vector<int64_t>> pack_sequences(const std::vector<int64_t>& lengths, int64_t max_len) {
  std::vector<std::vector<int64_t>> rows;
  int64_t used = 0;
  for (int64_t i = 0; i < static_cast<int64_t>(lengths.size()); ++i) {
    RLHF_CHECK(lengths[i] <= max_len, "pack_sequences: example ", i, " has ", lengths[i],
               " tokens > max length ", max_len, " (truncate or drop it first)");
    if (rows.empty() || used + lengths[i] > max_len) {
      rows.emplace_back();
      used = 0;
    }
    rows.back().push_back(i);
    used += lengths[i];
  }
  return rows;
}

PaddedBatch pad_packed(const std::vector<TokenSeq>& seqs, const std::vector<std::vector<int64_t>>& rows,
                       int64_t pad_id) {
  std::vector<TokenSeq> joined;
  std::vector<std::vector<int64_t>> positions;
  for (const auto& row : rows) {
    TokenSeq j;
    std::vector<int64_t> pos;
    for (int64_t i : row) {
      const auto& s = seqs[i];
      j.ids.insert(j.ids.end(), s.ids.begin(), s.ids.end());
      if (s.loss_mask.empty()) j.loss_mask.insert(j.loss_mask.end(), s.ids.size(), 1);
      else j.loss_mask.insert(j.loss_mask.end(), s.loss_mask.begin(), s.loss_mask.end());
      for (size_t t = 0; t < s.ids.size(); ++t) pos.push_back(static_cast<int64_t>(t));
      // The first token of the next example must not be predicted from this one: its mask is cleared.
      if (j.loss_mask.size() > s.ids.size()) j.loss_mask[j.loss_mask.size() - s.ids.size()] = 0;
    }
    joined.push_back(std::move(j));
    positions.push_back(std::move(pos));
  }
  auto out = pad_right(joined, pad_id);
  out.position_ids = torch::zeros_like(out.input_ids);
  auto pa = out.position_ids.accessor<int64_t, 2>();
  for (size_t b = 0; b < positions.size(); ++b)
    for (size_t t = 0; t < positions[b].size(); ++t) pa[b][t] = positions[b][t];
  return out;
}

}  // namespace rlhf::train
