// Rules: reward functions r(prompt, response, label), higher is better, computed in the binary. `--reward
// rule:NAME` (ppo), `--judge rule:NAME` (label auto) and `--gold-judge rule:NAME` (ppo's logged gold) use them.
//
// Built in:
//   length           r = bytes of the response (longer is better)
//   short            r = −bytes of the response
//   contains:WORD    r = 1 if the response contains WORD, else 0
//   regex:PATTERN    r = 1 if the PCRE2 pattern (UTF, Unicode classes) matches somewhere in the response, else 0
//   exact-match      r = 1 if the response equals the label, both with surrounding whitespace trimmed, else 0
//   numeric          r = 1 if the last number in the response (−?digits[.digits], thousands commas allowed)
//                    equals the label read as a number (|a − b| ≤ 1e-6·max(1, |b|)), else 0; no number: 0
// exact-match and numeric are verifiable rewards: they need each prompt line's label (its "answer" field, or
// --label-key), and throw NeedsLabel when a row has none. Programs add their own rules with register_rule (the
// demo registers its gold rule).
#pragma once
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace rlhf::reward {

using Rule = std::function<double(const std::string& prompt, const std::string& response,
                                  const std::optional<std::string>& label)>;
// A rule that needs no label.
using TextRule = std::function<double(const std::string& prompt, const std::string& response)>;

// Thrown by a rule that needs a label when the row has none (the caller names the row and the hint).
struct NeedsLabel : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Adds or replaces a rule. Names must not contain ':' (reserved for parametrised rules such as contains:WORD).
void register_rule(const std::string& name, Rule rule);
void register_rule(const std::string& name, TextRule rule);
// The rule called name (or a parametrised one); throws, listing the known rules, when there is none.
Rule find_rule(const std::string& name);
std::vector<std::string> rule_names();

// The last number of text, as rule:numeric reads it; nullopt when there is none.
std::optional<double> last_number(const std::string& text);

}  // namespace rlhf::reward
