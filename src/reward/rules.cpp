// The rule registry and the built-in rules; see rules.h.
#include "reward/rules.h"

#include <cmath>
#include <map>
#include <memory>
#include <mutex>

#include "common/error.h"
#include "tokenizer/regex.h"

namespace rlhf::reward {
namespace {

std::string trim(const std::string& s) {
  const char* ws = " \t\n\r\f\v";
  const auto b = s.find_first_not_of(ws);
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

const std::string& need_label(const std::optional<std::string>& label, const char* rule) {
  if (!label) throw NeedsLabel(std::string("rule:") + rule + " needs a label (the prompt line's answer) for each row");
  return *label;
}

double exact_match(const std::string&, const std::string& response, const std::optional<std::string>& label) {
  return trim(response) == trim(need_label(label, "exact-match")) ? 1.0 : 0.0;
}

double numeric(const std::string&, const std::string& response, const std::optional<std::string>& label) {
  const std::string& want_text = need_label(label, "numeric");
  const auto want = last_number(want_text);
  RLHF_CHECK(want.has_value(), "rule:numeric: the label \"", want_text, "\" is not a number");
  const auto got = last_number(response);
  if (!got) return 0.0;
  return std::fabs(*got - *want) <= 1e-6 * std::max(1.0, std::fabs(*want)) ? 1.0 : 0.0;
}

struct Registry {
  std::mutex mutex;
  std::map<std::string, Rule> rules{
      {"length", [](const std::string&, const std::string& r, const auto&) { return static_cast<double>(r.size()); }},
      {"short", [](const std::string&, const std::string& r, const auto&) { return -static_cast<double>(r.size()); }},
      {"exact-match", exact_match},
      {"numeric", numeric},
  };
};

Registry& registry() {
  static Registry r;
  return r;
}

}  // namespace

std::optional<double> last_number(const std::string& text) {
  // −?d+ with optional thousands commas (1,234) and a fraction; the last match wins (GSM8K's convention).
  static const tok::Regex number(R"(-?\d+(?:,\d{3})*(?:\.\d+)?)", "rule:numeric");
  std::optional<double> out;
  size_t from = 0, b = 0, e = 0;
  while (from <= text.size() && number.find(text, from, &b, &e)) {
    std::string digits;
    for (size_t i = b; i < e; ++i)
      if (text[i] != ',') digits += text[i];
    out = std::strtod(digits.c_str(), nullptr);
    from = e > b ? e : b + 1;
  }
  return out;
}

void register_rule(const std::string& name, Rule rule) {
  RLHF_CHECK(!name.empty() && name.find(':') == std::string::npos, "rule name \"", name,
             "\" must be non-empty and contain no ':'");
  RLHF_CHECK(rule != nullptr, "rule \"", name, "\" is empty");
  auto& reg = registry();
  std::lock_guard<std::mutex> lock(reg.mutex);
  reg.rules[name] = std::move(rule);
}

void register_rule(const std::string& name, TextRule rule) {
  RLHF_CHECK(rule != nullptr, "rule \"", name, "\" is empty");
  register_rule(name, Rule([rule](const std::string& p, const std::string& r, const std::optional<std::string>&) {
                  return rule(p, r);
                }));
}

Rule find_rule(const std::string& name) {
  const std::string contains = "contains:", regex = "regex:";
  if (name.compare(0, contains.size(), contains) == 0) {
    std::string word = name.substr(contains.size());
    RLHF_CHECK(!word.empty(), "rule \"contains:\" needs a word, e.g. contains:please");
    return [word](const std::string&, const std::string& r, const auto&) {
      return r.find(word) != std::string::npos ? 1.0 : 0.0;
    };
  }
  if (name.compare(0, regex.size(), regex) == 0) {
    const std::string pattern = name.substr(regex.size());
    RLHF_CHECK(!pattern.empty(), "rule \"regex:\" needs a pattern, e.g. regex:^\\d+$");
    auto re = std::make_shared<tok::Regex>(pattern, "rule:regex");  // throws naming the pattern when invalid
    return [re](const std::string&, const std::string& r, const auto&) {
      size_t b = 0, e = 0;
      return re->find(r, 0, &b, &e) ? 1.0 : 0.0;
    };
  }
  auto& reg = registry();
  std::lock_guard<std::mutex> lock(reg.mutex);
  auto it = reg.rules.find(name);
  if (it != reg.rules.end()) return it->second;
  std::string known;
  for (const auto& [n, r] : reg.rules) known += n + ", ";
  fail("unknown rule \"", name, "\": known rules are ", known, "contains:WORD, regex:PATTERN");
}

std::vector<std::string> rule_names() {
  auto& reg = registry();
  std::lock_guard<std::mutex> lock(reg.mutex);
  std::vector<std::string> out;
  for (const auto& [n, r] : reg.rules) out.push_back(n);
  out.push_back("contains:WORD");
  out.push_back("regex:PATTERN");
  return out;
}

}  // namespace rlhf::reward
