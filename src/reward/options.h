// `--reward SPEC` (repeatable) and the options of the reward functions, for `rlhf ppo` and `rlhf label auto`.
//
//   SPEC = DIR                      a reward-model folder (*ForSequenceClassification, 1 label); reward:DIR also
//        | http://HOST:PORT/PATH    a reward server speaking OpenRLHF's remote reward-model protocol (https too)
//        | exec:COMMAND             a long-lived subprocess speaking JSONL on stdin/stdout (exec_reward.h)
//        | rule:NAME[:ARG]          a built-in rule (rules.h): exact-match, numeric, regex:PATTERN, length, ...
//
// Several specs are combined as s = Σ_i w_i · s_i (--reward-weights, default all 1); each s_i is logged.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace rlhf::reward {

enum class SpecKind { model, http, exec, rule };

struct Spec {
  SpecKind kind;
  std::string arg;   // the folder, the URL, the command or the rule name
  std::string text;  // the spec as given
};

// Parses one spec; throws naming it, with the allowed forms, when it is malformed.
Spec parse_spec(const std::string& text);

struct RewardOptions {
  std::vector<std::string> specs;  // one or more SPECs
  std::vector<double> weights;     // w_i, one per spec; empty: all 1
  double timeout_s = 60;           // per request (http) or per batch (exec); OpenRLHF waits 180 s
  int retries = 3;                 // http: further attempts after a failed one (connection error, 5xx, 429)
  double backoff_s = 1;            // http: wait backoff·2^k before retry k+1 (OpenRLHF: 1 s, 5 tries)
  std::string label_key = "answer";  // the prompt line's field sent as the label (OpenRLHF --label_key)

  void validate() const;  // throws with the allowed values
  nlohmann::json to_json() const;
};

}  // namespace rlhf::reward
