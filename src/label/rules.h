// Rules: scoring functions r(prompt, response), higher is better, that `rlhf label auto --judge rule:NAME` ranks
// with. Built in: "length" (longer is better, in bytes), "short" (shorter is better), "contains:WORD" (1 if the
// response contains WORD, else 0). Programs add their own with register_rule (the demo registers its gold rule).
#pragma once
#include <functional>
#include <string>
#include <vector>

namespace rlhf::label {

using Rule = std::function<double(const std::string& prompt, const std::string& response)>;

// Adds or replaces a rule. Names must not contain ':' (reserved for parametrised rules such as contains:WORD).
void register_rule(const std::string& name, Rule rule);
// The rule called name; throws, listing the known rules, when there is none.
Rule find_rule(const std::string& name);
std::vector<std::string> rule_names();

}  // namespace rlhf::label
