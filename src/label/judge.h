// `rlhf label auto`: ranks the items an annotator has not ranked yet without a person, by sorting each item's
// candidates by a score (a reward model or a rule), best first; equal scores form a tie group. As a simulated human
// it can add label noise: each pair of adjacent groups is swapped with probability `noise`, left to right, a group
// moved by a swap not being swapped again in the same pass; the random stream of an item depends only on (seed,
// item id), so a run is reproducible whatever the order or the batching.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "label/store.h"
#include "reward/reward_set.h"
#include "reward/rules.h"

namespace rlhf::label {

// scores[i][j] for items[i].candidates[j]; higher is better.
using Scorer = std::function<std::vector<std::vector<double>>(const std::vector<Item>& items)>;

Scorer rule_scorer(const reward::Rule& rule);
// Any reward specification (reward/options.h: a folder, http://..., exec:..., rule:..., or several combined) as
// a judge: every candidate of every item is one row (prompt, response; no label: the store keeps none).
Scorer reward_set_scorer(std::shared_ptr<reward::RewardSet> rewards);

struct AutoOptions {
  std::string annotator;       // who the rankings are stored as, e.g. "auto:rule:length"
  double noise = 0;            // probability of swapping each adjacent pair of groups, in [0, 1]
  uint64_t seed = 0;           // for the noise
  size_t batch_items = 4096;   // items per Scorer call: large, since a reward-model call loads the model
  int64_t limit = -1;          // rank at most this many items; -1: all pending
  void validate() const;
};

// Groups of equal score, best (highest) first; within a group candidates keep their stored order.
Ordering ordering_from_scores(const std::vector<Candidate>& candidates, const std::vector<double>& scores);

// The noise described above, drawn from rng.
Ordering add_noise(Ordering ordering, double p, std::mt19937_64& rng);

// Ranks the pending items of opts.annotator (created if absent). Returns how many it ranked.
int64_t auto_rank(Store& store, const Scorer& scorer, const AutoOptions& opts);

}  // namespace rlhf::label
