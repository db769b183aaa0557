// OpenRLHF's remote reward protocol; see protocol.h.
#include "reward/protocol.h"

#include <cmath>

#include "common/error.h"

namespace rlhf::reward {

nlohmann::json make_request(const Batch& batch) {
  nlohmann::json labels = nlohmann::json::array();
  for (const auto& l : batch.labels) labels.push_back(l ? *l : std::string());
  return {{"query", batch.queries},
          {"prompts", batch.prompts},
          {"labels", labels},
          {"responses", batch.responses},
          {"iteration", batch.iteration}};
}

namespace {

std::string excerpt(const std::string& s) { return s.size() <= 200 ? s : s.substr(0, 200) + "..."; }

std::vector<double> numbers(const nlohmann::json& a, size_t B, const std::string& who, const std::string& key) {
  RLHF_CHECK(a.is_array(), who, ": \"", key, "\" must be a list of numbers, got ", excerpt(a.dump()));
  RLHF_CHECK(a.size() == B, who, ": answered ", a.size(), " \"", key, "\" for ", B,
             " queries (hint: return one number per entry of \"query\", in order)");
  std::vector<double> out;
  for (size_t i = 0; i < a.size(); ++i) {
    RLHF_CHECK(a[i].is_number(), who, ": \"", key, "\"[", i, "] is ", a[i].dump(), ", not a number");
    const double v = a[i].get<double>();
    RLHF_CHECK(std::isfinite(v), who, ": \"", key, "\"[", i, "] is not finite (", v, ")");
    out.push_back(v);
  }
  return out;
}

}  // namespace

Scores parse_answer(const std::string& body, size_t B, const std::string& who) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(body);
  } catch (const nlohmann::json::exception& e) {  // parse_error, or out_of_range for 1e999
    fail(who, ": the answer is not JSON (", e.what(), "): ", excerpt(body),
         " (hint: NaN and Infinity are not JSON; Python's json.dumps writes them unless allow_nan=False)");
  }
  RLHF_CHECK(j.is_object() && j.contains("rewards"), who, ": the answer needs a \"rewards\" list, got ",
             excerpt(j.dump()));
  Scores s;
  s.values = numbers(j["rewards"], B, who, "rewards");
  if (j.contains("extra_logs") && j["extra_logs"].is_object()) {
    for (const auto& [k, v] : j["extra_logs"].items()) {
      if (v.is_number()) s.extra[k] = std::vector<double>(B, v.get<double>());
      else s.extra[k] = numbers(v, B, who, "extra_logs." + k);
    }
  }
  return s;
}

}  // namespace rlhf::reward
