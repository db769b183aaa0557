// The rule registry behind `--judge rule:NAME`; see rules.h.
#include "label/rules.h"

#include <map>
#include <mutex>

#include "common/error.h"

namespace rlhf::label {
namespace {

struct Registry {
  std::mutex mutex;
  std::map<std::string, Rule> rules{
      {"length", [](const std::string&, const std::string& r) { return static_cast<double>(r.size()); }},
      {"short", [](const std::string&, const std::string& r) { return -static_cast<double>(r.size()); }},
  };
};

Registry& registry() {
  static Registry r;
  return r;
}

}  // namespace

void register_rule(const std::string& name, Rule rule) {
  RLHF_CHECK(!name.empty() && name.find(':') == std::string::npos, "rule name \"", name,
             "\" must be non-empty and contain no ':'");
  RLHF_CHECK(rule != nullptr, "rule \"", name, "\" is empty");
  auto& reg = registry();
  std::lock_guard<std::mutex> lock(reg.mutex);
  reg.rules[name] = std::move(rule);
}

Rule find_rule(const std::string& name) {
  const std::string contains = "contains:";
  if (name.compare(0, contains.size(), contains) == 0) {
    std::string word = name.substr(contains.size());
    RLHF_CHECK(!word.empty(), "rule \"contains:\" needs a word, e.g. contains:please");
    return [word](const std::string&, const std::string& r) { return r.find(word) != std::string::npos ? 1.0 : 0.0; };
  }
  auto& reg = registry();
  std::lock_guard<std::mutex> lock(reg.mutex);
  auto it = reg.rules.find(name);
  if (it != reg.rules.end()) return it->second;
  std::string known;
  for (const auto& [n, r] : reg.rules) known += n + ", ";
  fail("unknown rule \"", name, "\": known rules are ", known, "contains:WORD");
}

std::vector<std::string> rule_names() {
  auto& reg = registry();
  std::lock_guard<std::mutex> lock(reg.mutex);
  std::vector<std::string> out;
  for (const auto& [n, r] : reg.rules) out.push_back(n);
  out.push_back("contains:WORD");
  return out;
}

}  // namespace rlhf::label
