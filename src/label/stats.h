// `rlhf label stats`: how far labelling got and how much annotators agree on items ranked more than once.
//
// For two rankings a, b of the same candidates, over the n0 = C(n,2) pairs (i, j):
//   concordant   sign(a_i - a_j) == sign(b_i - b_j) != 0      discordant: the signs are opposite and non-zero
//   pairwise agreement = (#pairs where sign(a_i - a_j) == sign(b_i - b_j), ties included) / n0
//   Kendall's tau-b    = (n_c - n_d) / sqrt((n0 - n1)(n0 - n2)),  n1 / n2 = pairs tied in a / in b
// (ranks: 1 = best, tied candidates share a rank). tau-b is NaN when either ranking ties every pair.
// Averages are over every (item, pair of annotators) that ranked the item.
#pragma once
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "label/store.h"

namespace rlhf::label {

using Ranks = std::map<int64_t, int>;  // candidate id -> rank

Ranks ranks_of(const Ordering& ordering);
// Both over the candidates the two rankings share; NaN when they share fewer than 2.
double pairwise_agreement(const Ranks& a, const Ranks& b);
double kendall_tau_b(const Ranks& a, const Ranks& b);

struct AnnotatorStats {
  std::string name;
  int64_t ranked = 0, skipped = 0, flagged = 0;
  double median_seconds = 0;  // time spent per ranked item, over those with a measured time; 0 when none
};

struct LabelStats {
  int64_t items = 0;          // in the store
  int64_t items_ranked = 0;   // ranked (not skipped) by at least one annotator
  int64_t rankings = 0;       // non-skip rankings
  int64_t skips = 0;
  std::vector<AnnotatorStats> annotators;
  int64_t items_ranked_twice = 0;  // by two or more annotators
  int64_t comparisons = 0;         // (item, annotator pair) comparisons behind the two means
  double pairwise_agreement = 0;   // mean; NaN when comparisons == 0
  double kendall_tau = 0;          // mean over the comparisons where tau-b is defined; NaN when none
};

LabelStats compute_stats(Store& store);
nlohmann::json stats_to_json(const LabelStats& s);
std::string stats_to_text(const LabelStats& s);

}  // namespace rlhf::label
