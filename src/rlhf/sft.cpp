#include "rlhf/sft.h"

#include <torch/torch.h>

#include "common/error.h"
#include "train/logprobs.h"

namespace rlhf::sft {

std::pair<torch::Tensor, int64_t> sft_loss(TransformerLM& model, const train::PaddedBatch& batch) {
  auto logits = model.forward_logits(batch.input_ids, batch.attention_mask, batch.position_ids);  // (B,T,V)
  auto logp = train::causal_logprobs(logits, batch.input_ids);                                    // (B,T-1)
  auto mask = batch.loss_mask.slice(/*dim=*/1, 1).to(logp.device());                             // (B,T-1)
  const int64_t n = static_cast<int64_t>(mask.sum().item<double>());
  return {-(logp * mask).sum() / std::max<int64_t>(1, n), n};
}

namespace {
train::PaddedBatch to_device(train::PaddedBatch b, torch::Device d) {
  b.input_ids = b.input_ids.to(d);
  b.attention_mask = b.attention_mask.to(d);
  b.loss_mask = b.loss_mask.to(d);
  if (b.position_ids.defined()) b.position_ids = b.position_ids.to(d);
  return b;
}

std::vector<int64_t> lengths_of(const std::vector<train::TokenSeq>& d) {
  std::vector<int64_t> out;
  for (const auto& s : d) out.push_back(static_cast<int64_t>(s.ids.size()));
  return out;
}
}  // namespace

train::LoopResult train_sft(TransformerLM& model, const std::vector<train::TokenSeq>& train_data,
                            const std::vector<train::TokenSeq>& eval_data, const SftConfig& cfg,
                            const train::LoopOptions& loop) {
  RLHF_CHECK(model.has_lm_head(), "sft: the model has no LM head (is it a reward model?)");
  // Units the batches index: examples, or packed rows of examples.
  std::vector<std::vector<int64_t>> rows;
  if (cfg.packing) rows = train::pack_sequences(lengths_of(train_data), cfg.max_len);
  std::vector<int64_t> unit_lengths;
  if (cfg.packing)
    for (const auto& r : rows) {
      int64_t n = 0;
      for (auto i : r) n += static_cast<int64_t>(train_data[i].ids.size());
      unit_lengths.push_back(n);
    }
  else unit_lengths = lengths_of(train_data);

  auto batches = [&](int64_t epoch) {
    return train::make_batches(unit_lengths, cfg.batch_size, loop.seed, epoch);
  };
  auto make = [&](const std::vector<int64_t>& idx) {
    if (cfg.packing) {
      std::vector<std::vector<int64_t>> sel;
      for (auto i : idx) sel.push_back(rows[i]);
      return to_device(train::pad_packed(train_data, sel, cfg.pad_id), cfg.device);
    }
    std::vector<train::TokenSeq> seqs;
    for (auto i : idx) seqs.push_back(train_data[i]);
    return to_device(train::pad_right(seqs, cfg.pad_id), cfg.device);
  };
  auto loss_fn = [&](const std::vector<int64_t>& idx) {
    auto b = make(idx);
    auto [loss, n] = sft_loss(model, b);
    // weight: the loss is a mean over the n response tokens (data parallel weighs ranks by it, train/loop.h).
    train::Metrics m{{"loss", loss.item<double>()}, {"tokens", static_cast<double>(b.num_tokens)},
                     {"weight", static_cast<double>(n)}};
    return std::make_pair(loss, m);
  };
  train::EvalFn eval_fn;
  if (!eval_data.empty())
    eval_fn = [&]() {
      double nll = 0;
      int64_t n = 0;
      auto eb = train::make_batches(lengths_of(eval_data), cfg.batch_size, 0, 0, /*shuffle=*/false);
      for (const auto& idx : eb) {
        std::vector<train::TokenSeq> seqs;
        for (auto i : idx) seqs.push_back(eval_data[i]);
        auto [loss, k] = sft_loss(model, to_device(train::pad_right(seqs, cfg.pad_id), cfg.device));
        nll += loss.item<double>() * k;
        n += k;
      }
      const double mean = nll / std::max<int64_t>(1, n);
      return train::Metrics{{"loss", mean}, {"perplexity", std::exp(mean)}};
    };
  return train::run_training(model, loop, batches, loss_fn, eval_fn);
}

}  // namespace rlhf::sft
