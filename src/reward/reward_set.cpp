// The combination of reward functions; see reward_set.h.
#include "reward/reward_set.h"

#include <cmath>
#include <map>

#include "common/error.h"
#include "reward/exec_reward.h"
#include "reward/http_reward.h"
#include "reward/model_reward.h"
#include "reward/rules.h"

namespace rlhf::reward {

namespace {
std::string source(const Batch& b, size_t i) { return i < b.sources.size() ? b.sources[i] : "row " + std::to_string(i); }
}  // namespace

struct RewardSet::Component {
  Spec spec;
  double weight = 1;
  std::unique_ptr<ModelReward> model;
  std::unique_ptr<HttpReward> http;
  std::unique_ptr<ExecReward> exec;
  Rule rule;

  Scores score(const Batch& b) {
    switch (spec.kind) {
      case SpecKind::model: return model->score(b);
      case SpecKind::http: return http->score(b);
      case SpecKind::exec: return exec->score(b);
      case SpecKind::rule: break;
    }
    Scores s;
    for (size_t i = 0; i < b.size(); ++i) {
      try {
        s.values.push_back(rule(b.prompts[i], b.responses[i], b.labels[i]));
      } catch (const NeedsLabel& e) {
        fail(e.what(), "; ", source(b, i),
             " has none (hint: give each prompt line an \"answer\" field, or name its field with --label-key)");
      } catch (const Error& e) {
        fail(source(b, i), ": ", e.what());
      }
    }
    return s;
  }
};

namespace {

std::string base_name(const Spec& s) {
  switch (s.kind) {
    case SpecKind::model: return "model";
    case SpecKind::http: return "http";
    case SpecKind::exec: return "exec";
    case SpecKind::rule: return s.arg.substr(0, s.arg.find(':'));
  }
  return "reward";
}

}  // namespace

RewardSet::RewardSet(const RewardOptions& options, const std::string& device, bool load_models) : opts_(options) {
  opts_.validate();
  std::map<std::string, int> seen;
  for (size_t i = 0; i < opts_.specs.size(); ++i) {
    auto c = std::make_unique<Component>();
    c->spec = parse_spec(opts_.specs[i]);
    c->weight = opts_.weights.empty() ? 1.0 : opts_.weights[i];
    switch (c->spec.kind) {
      case SpecKind::model:
        c->model = std::make_unique<ModelReward>(c->spec.arg, device);
        if (load_models) c->model->load();
        break;
      case SpecKind::http: c->http = std::make_unique<HttpReward>(c->spec.arg, HttpOptions{opts_.timeout_s, opts_.retries, opts_.backoff_s}); break;
      case SpecKind::exec: c->exec = std::make_unique<ExecReward>(c->spec.arg, opts_.timeout_s); break;
      case SpecKind::rule: c->rule = find_rule(c->spec.arg); break;
    }
    const std::string base = base_name(c->spec);
    const int n = ++seen[base];
    names_.push_back(n == 1 ? base : base + "_" + std::to_string(n));
    parts_.push_back(std::move(c));
  }
}

RewardSet::~RewardSet() = default;

std::string RewardSet::first_model_dir() const {
  for (const auto& c : parts_)
    if (c->spec.kind == SpecKind::model) return c->spec.arg;
  return "";
}

std::shared_ptr<TransformerLM> RewardSet::first_model() {
  for (auto& c : parts_)
    if (c->spec.kind == SpecKind::model) return c->model->model();
  return nullptr;
}

bool RewardSet::text_only() const { return first_model_dir().empty(); }

Combined RewardSet::score(const Batch& batch) {
  const size_t B = batch.size();
  Combined out;
  out.total.assign(B, 0.0);
  for (size_t i = 0; i < parts_.size(); ++i) {
    auto& c = *parts_[i];
    Scores s;
    try {
      s = c.score(batch);
    } catch (const std::exception& e) {
      if (batch.iteration > 0) fail("iteration ", batch.iteration, ": --reward ", c.spec.text, ": ", e.what());
      fail("--reward ", c.spec.text, ": ", e.what());
    }
    RLHF_CHECK(s.values.size() == B, "--reward ", c.spec.text, ": ", s.values.size(), " scores for ", B, " rows");
    double mean = 0;
    for (size_t b = 0; b < B; ++b) {
      RLHF_CHECK(std::isfinite(s.values[b]), "--reward ", c.spec.text, ": row ", b, " scored ", s.values[b]);
      out.total[b] += c.weight * s.values[b];
      mean += s.values[b];
    }
    out.metrics.push_back({"reward/" + names_[i], B ? mean / static_cast<double>(B) : 0.0});
    for (const auto& [k, v] : s.extra) {
      double m = 0;
      for (double x : v) m += x;
      out.metrics.push_back({"reward/" + names_[i] + "/" + k, v.empty() ? 0.0 : m / static_cast<double>(v.size())});
    }
    out.components.push_back(std::move(s.values));
  }
  return out;
}

}  // namespace rlhf::reward
