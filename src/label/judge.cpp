// Automatic ranking with a scorer plus optional label noise; see judge.h.
#include "label/judge.h"

#include <algorithm>
#include <numeric>

namespace rlhf::label {
namespace {

// A uniform double in [0, 1) from the top 53 bits: unlike std::bernoulli_distribution, the same on every library.
double uniform01(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

}  // namespace

void AutoOptions::validate() const {
  RLHF_CHECK(!annotator.empty(), "label auto: the annotator name is empty");
  RLHF_CHECK(noise >= 0 && noise <= 1, "label auto: --noise must be in [0, 1], got ", noise);
  RLHF_CHECK(batch_items > 0, "label auto: batch_items must be positive");
  RLHF_CHECK(limit >= -1, "label auto: --limit must be -1 (all) or >= 0, got ", limit);
}

Scorer rule_scorer(const reward::Rule& rule) {
  return [rule](const std::vector<Item>& items) {
    std::vector<std::vector<double>> out;
    for (const auto& item : items) {
      std::vector<double> s;
      for (const auto& c : item.candidates) s.push_back(rule(item.prompt, c.text, std::nullopt));
      out.push_back(std::move(s));
    }
    return out;
  };
}

Scorer reward_set_scorer(std::shared_ptr<reward::RewardSet> rewards) {
  return [rewards](const std::vector<Item>& items) {
    reward::Batch batch;
    for (const auto& item : items)
      for (const auto& c : item.candidates) {
        batch.prompts.push_back(item.prompt);
        batch.responses.push_back(c.text);
        batch.queries.push_back(item.prompt + c.text);
        batch.labels.push_back(std::nullopt);
        batch.sources.push_back("item " + std::to_string(item.id) + " candidate " + std::to_string(c.id));
      }
    const auto flat = rewards->score(batch).total;
    std::vector<std::vector<double>> out;
    size_t k = 0;
    for (const auto& item : items) {
      out.emplace_back(flat.begin() + static_cast<std::ptrdiff_t>(k),
                       flat.begin() + static_cast<std::ptrdiff_t>(k + item.candidates.size()));
      k += item.candidates.size();
    }
    return out;
  };
}

Ordering ordering_from_scores(const std::vector<Candidate>& candidates, const std::vector<double>& scores) {
  RLHF_CHECK(candidates.size() == scores.size(), "judge returned ", scores.size(), " scores for ", candidates.size(),
             " candidates");
  std::vector<size_t> idx(candidates.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return scores[a] > scores[b]; });
  Ordering out;
  for (size_t k = 0; k < idx.size(); ++k) {
    if (k == 0 || scores[idx[k]] != scores[idx[k - 1]]) out.emplace_back();
    out.back().push_back(candidates[idx[k]].id);
  }
  return out;
}

Ordering add_noise(Ordering ordering, double p, std::mt19937_64& rng) {
  for (size_t i = 0; i + 1 < ordering.size(); ++i) {
    if (uniform01(rng) < p) {
      std::swap(ordering[i], ordering[i + 1]);
      ++i;  // the moved group is not swapped again in this pass
    }
  }
  return ordering;
}

int64_t auto_rank(Store& store, const Scorer& scorer, const AutoOptions& opts) {
  opts.validate();
  Annotator who = store.ensure_annotator(opts.annotator);
  std::vector<Item> pending = store.pending_items(who.id);
  if (opts.limit >= 0 && static_cast<int64_t>(pending.size()) > opts.limit) pending.resize(opts.limit);
  int64_t done = 0;
  for (size_t start = 0; start < pending.size(); start += opts.batch_items) {
    std::vector<Item> batch(pending.begin() + start,
                            pending.begin() + std::min(pending.size(), start + opts.batch_items));
    auto scores = scorer(batch);
    RLHF_CHECK(scores.size() == batch.size(), "judge returned scores for ", scores.size(), " items, expected ",
               batch.size());
    for (size_t i = 0; i < batch.size(); ++i) {
      std::seed_seq seq{static_cast<uint32_t>(opts.seed), static_cast<uint32_t>(opts.seed >> 32),
                        static_cast<uint32_t>(batch[i].id), static_cast<uint32_t>(batch[i].id >> 32)};
      std::mt19937_64 rng(seq);
      Submission s;
      s.item_id = batch[i].id;
      s.ordering = add_noise(ordering_from_scores(batch[i].candidates, scores[i]), opts.noise, rng);
      store.submit(who.id, s);
      ++done;
    }
  }
  return done;
}

}  // namespace rlhf::label
