// Labelling progress and inter-annotator agreement; the definitions are in stats.h.
#include "label/stats.h"

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <limits>
#include <sstream>

namespace rlhf::label {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

int sign(int x) { return (x > 0) - (x < 0); }

// The candidates present in both, as parallel rank vectors.
void shared_ranks(const Ranks& a, const Ranks& b, std::vector<int>& ra, std::vector<int>& rb) {
  for (const auto& [id, rank] : a) {
    auto it = b.find(id);
    if (it == b.end()) continue;
    ra.push_back(rank);
    rb.push_back(it->second);
  }
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

}  // namespace

Ranks ranks_of(const Ordering& ordering) {
  Ranks r;
  for (size_t g = 0; g < ordering.size(); ++g)
    for (int64_t id : ordering[g]) r[id] = static_cast<int>(g) + 1;
  return r;
}

double pairwise_agreement(const Ranks& a, const Ranks& b) {
  std::vector<int> ra, rb;
  shared_ranks(a, b, ra, rb);
  size_t n = ra.size(), agree = 0, pairs = 0;
  if (n < 2) return kNaN;
  for (size_t i = 0; i < n; ++i)
    for (size_t j = i + 1; j < n; ++j, ++pairs) agree += sign(ra[i] - ra[j]) == sign(rb[i] - rb[j]);
  return static_cast<double>(agree) / static_cast<double>(pairs);
}

double kendall_tau_b(const Ranks& a, const Ranks& b) {
  std::vector<int> ra, rb;
  shared_ranks(a, b, ra, rb);
  size_t n = ra.size();
  if (n < 2) return kNaN;
  int64_t nc = 0, nd = 0, n0 = 0, n1 = 0, n2 = 0;
  for (size_t i = 0; i < n; ++i)
    for (size_t j = i + 1; j < n; ++j) {
      ++n0;
      int sa = sign(ra[i] - ra[j]), sb = sign(rb[i] - rb[j]);
      n1 += sa == 0;
      n2 += sb == 0;
      if (sa * sb > 0) ++nc;
      if (sa * sb < 0) ++nd;
    }
  double denom = std::sqrt(static_cast<double>(n0 - n1) * static_cast<double>(n0 - n2));
  return denom == 0 ? kNaN : static_cast<double>(nc - nd) / denom;
}

LabelStats compute_stats(Store& store) {
  LabelStats s;
  s.items = store.item_count();
  std::map<std::string, AnnotatorStats> per;
  std::map<std::string, std::vector<double>> seconds;
  for (const auto& a : store.annotators()) per[a.name].name = a.name;
  std::map<int64_t, std::vector<Ranks>> by_item;  // non-skip rankings of each item
  for (const auto& r : store.rankings()) {
    AnnotatorStats& a = per[r.annotator];
    if (!r.flags.empty()) ++a.flagged;
    if (r.skipped) {
      ++a.skipped;
      ++s.skips;
      continue;
    }
    ++a.ranked;
    ++s.rankings;
    if (r.time_spent_ms) seconds[r.annotator].push_back(static_cast<double>(*r.time_spent_ms) / 1000.0);
    by_item[r.item_id].push_back(ranks_of(r.ordering));
  }
  for (auto& [name, a] : per) {
    a.median_seconds = median(seconds[name]);
    s.annotators.push_back(a);
  }
  s.items_ranked = static_cast<int64_t>(by_item.size());
  double agree_sum = 0, tau_sum = 0;
  int64_t tau_n = 0;
  for (const auto& [item_id, rs] : by_item) {
    (void)item_id;
    if (rs.size() < 2) continue;
    ++s.items_ranked_twice;
    for (size_t i = 0; i < rs.size(); ++i)
      for (size_t j = i + 1; j < rs.size(); ++j) {
        double ag = pairwise_agreement(rs[i], rs[j]);
        if (std::isnan(ag)) continue;
        ++s.comparisons;
        agree_sum += ag;
        double tau = kendall_tau_b(rs[i], rs[j]);
        if (!std::isnan(tau)) {
          tau_sum += tau;
          ++tau_n;
        }
      }
  }
  s.pairwise_agreement = s.comparisons ? agree_sum / static_cast<double>(s.comparisons) : kNaN;
  s.kendall_tau = tau_n ? tau_sum / static_cast<double>(tau_n) : kNaN;
  return s;
}

nlohmann::json stats_to_json(const LabelStats& s) {
  auto num = [](double x) { return std::isnan(x) ? nlohmann::json(nullptr) : nlohmann::json(x); };
  nlohmann::json annotators = nlohmann::json::array();
  for (const auto& a : s.annotators)
    annotators.push_back({{"name", a.name}, {"ranked", a.ranked}, {"skipped", a.skipped}, {"flagged", a.flagged},
                          {"median_seconds", a.median_seconds}});
  return {{"items", s.items},
          {"items_ranked", s.items_ranked},
          {"rankings", s.rankings},
          {"skips", s.skips},
          {"annotators", annotators},
          {"agreement",
           {{"items_ranked_twice", s.items_ranked_twice},
            {"comparisons", s.comparisons},
            {"pairwise_agreement", num(s.pairwise_agreement)},
            {"kendall_tau_b", num(s.kendall_tau)}}}};
}

std::string stats_to_text(const LabelStats& s) {
  std::ostringstream os;
  os << "items: " << s.items << ", ranked by at least one annotator: " << s.items_ranked << " ("
     << s.rankings << " rankings, " << s.skips << " skips)\n";
  os << std::left << std::setw(24) << "annotator" << std::right << std::setw(8) << "ranked" << std::setw(9)
     << "skipped" << std::setw(9) << "flagged" << std::setw(12) << "median s" << "\n";
  for (const auto& a : s.annotators)
    os << std::left << std::setw(24) << a.name << std::right << std::setw(8) << a.ranked << std::setw(9) << a.skipped
       << std::setw(9) << a.flagged << std::setw(12) << std::fixed << std::setprecision(1) << a.median_seconds << "\n";
  os << "agreement: " << s.items_ranked_twice << " items ranked by 2+ annotators, " << s.comparisons
     << " comparisons";
  if (s.comparisons) {
    os << std::setprecision(3) << ", pairwise agreement " << s.pairwise_agreement << ", Kendall's tau-b ";
    if (std::isnan(s.kendall_tau)) os << "undefined (every ranking all ties)"; else os << s.kendall_tau;
  } else {
    os << " (none to compare: give the same items to two annotators)";
  }
  os << "\n";
  return os.str();
}

}  // namespace rlhf::label
