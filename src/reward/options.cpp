// Reward specs and options; see options.h.
#include "reward/options.h"

#include <cmath>

#include "common/error.h"

namespace rlhf::reward {

Spec parse_spec(const std::string& text) {
  const std::string hint =
      " (allowed: a reward-model folder, http://HOST:PORT/PATH, https://..., exec:COMMAND or rule:NAME)";
  RLHF_CHECK(!text.empty(), "--reward: empty reward specification", hint);
  auto starts = [&](const char* p) { return text.rfind(p, 0) == 0; };
  if (starts("http://") || starts("https://")) return {SpecKind::http, text, text};
  if (starts("exec:")) {
    RLHF_CHECK(text.size() > 5, "--reward exec: needs a command, e.g. exec:\"python3 my_reward.py\"");
    return {SpecKind::exec, text.substr(5), text};
  }
  if (starts("rule:")) {
    RLHF_CHECK(text.size() > 5, "--reward rule: needs a rule name, e.g. rule:numeric");
    return {SpecKind::rule, text.substr(5), text};
  }
  if (starts("reward:")) {
    RLHF_CHECK(text.size() > 7, "--reward reward: needs a folder");
    return {SpecKind::model, text.substr(7), text};
  }
  RLHF_CHECK(text.find("://") == std::string::npos, "--reward \"", text, "\": unsupported URL scheme", hint);
  return {SpecKind::model, text, text};
}

void RewardOptions::validate() const {
  RLHF_CHECK(!specs.empty(), "--reward is required: give at least one reward specification");
  for (const auto& s : specs) parse_spec(s);
  RLHF_CHECK(weights.empty() || weights.size() == specs.size(), "--reward-weights has ", weights.size(),
             " values for ", specs.size(), " --reward specifications (give one weight per --reward, in order)");
  for (double w : weights) RLHF_CHECK(std::isfinite(w), "--reward-weights must be finite numbers");
  RLHF_CHECK(timeout_s > 0, "--reward-timeout must be > 0 seconds");
  RLHF_CHECK(retries >= 0, "--reward-retries must be >= 0");
  RLHF_CHECK(backoff_s >= 0, "--reward-backoff must be >= 0 seconds");
  RLHF_CHECK(!label_key.empty(), "--label-key must not be empty");
}

nlohmann::json RewardOptions::to_json() const {
  return {{"specs", specs},         {"weights", weights},     {"timeout_s", timeout_s},
          {"retries", retries},     {"backoff_s", backoff_s}, {"label_key", label_key}};
}

}  // namespace rlhf::reward
