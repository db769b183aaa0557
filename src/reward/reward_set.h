// Several reward functions combined (--reward A --reward B --reward-weights 1,0.5):
//
//   s(x, y) = Σ_i w_i · s_i(x, y)        s_i: one spec each (options.h), w_i: --reward-weights (default 1)
//
// Each component's batch mean is logged as reward/<name> (its raw s_i, before the weight), and every
// extra_logs entry of a server as reward/<name>/<key>. Names: "model", "http", "exec", or the rule's name
// ("numeric", "regex", ...); a name used twice gets a suffix (_2, _3, ...).
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "reward/batch.h"
#include "reward/options.h"

namespace rlhf {
class TransformerLM;
}

namespace rlhf::reward {

struct Combined {
  std::vector<double> total;                             // (B,) s
  std::vector<std::vector<double>> components;           // [i] (B,) s_i
  std::vector<std::pair<std::string, double>> metrics;   // reward/<name>[/<key>] batch means
};

class RewardSet {
 public:
  // device: for reward-model folders. load_models: load them now (PPO), not on first use.
  RewardSet(const RewardOptions& options, const std::string& device, bool load_models = false);
  ~RewardSet();
  RewardSet(const RewardSet&) = delete;
  RewardSet& operator=(const RewardSet&) = delete;

  // Scores a batch with every component. Errors say "iteration N: --reward SPEC: ..." (no iteration outside
  // training) and name the first row when a rule needs a label the row lacks.
  Combined score(const Batch& batch);

  const std::vector<std::string>& names() const { return names_; }
  // The first reward-model folder among the specs, or "" (PPO initialises its critic from it).
  std::string first_model_dir() const;
  // That folder's loaded model (loading it), or null when there is none.
  std::shared_ptr<TransformerLM> first_model();
  // True when every component needs only text (no reward-model folder).
  bool text_only() const;

 private:
  struct Component;
  std::vector<std::unique_ptr<Component>> parts_;
  std::vector<std::string> names_;
  RewardOptions opts_;
};

}  // namespace rlhf::reward
