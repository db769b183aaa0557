// Datasets of the trainers, tokenized through the Formatter (train/format.h) so that training, scoring and PPO
// see the same tokens. Every example is prompt ++ response with a loss mask that is 1 on the response.
//
// SFT lines (one of):
//   {"prompt": str | messages, "completion": str}   loss on the completion (+ EOS / end-of-turn)
//   {"messages": [{"role", "content"}, ...]}        chat template; loss on every assistant turn
//   {"text": str}                                   plain LM: loss on every token (+ EOS)
// Preference lines (one of):
//   {"prompt": str | messages, "chosen": str | messages, "rejected": str | messages, ["margin": float]}
//       message lists for chosen/rejected end with the assistant's answer; earlier messages extend the prompt
//   {"chosen": str | messages, "rejected": str | messages}   HH-RLHF: full dialogues, the shared prefix is the prompt
//       (strings: cut after the last "\n\nAssistant:" of the common prefix; messages: all but the last message)
//   {"prompt", "responses": [str, ...], "ranking": [i0, i1, ...]}   best first (a permutation of a subset)
//       ("messages" in place of "prompt": the conversation so far, ending with the user's turn)
//   {"prompt", "responses": [str, ...], "ranks": [1, 2, 2, 3]}      rank per response, lower is better, ties allowed
//
// Overlong examples (more than max_len tokens): "truncate-left" (the default) cuts the prompt from the left (keeping
// BOS and at least min(P, max_len/2) of its last tokens, the same cut for every response of a group, as TRL's
// truncation_mode="keep_end"), then responses still too long from the right; "truncate" keeps the first max_len
// tokens (the example is dropped when no response token is left); "drop" drops them; "error" stops with the file
// and line. A truncated or dropped group counts once. Counts are reported.
// Why left by default: a dialogue's end is what the response answers. HH-RLHF with stories260K's 512-token
// vocabulary and --max-len 256: truncate-left keeps all 2,312 pairs (1,539 cut), truncate keeps 1,287 (1,025
// dropped, no response token left), drop keeps 773.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "train/shuffle.h"
#include "train/token_seq.h"
#include "train/format.h"

namespace rlhf {

struct DataOptions {
  int64_t max_len = 512;               // tokens per sequence (prompt + response)
  std::string overlong = "truncate-left";  // truncate-left | truncate | drop | error
  bool skip_bad_lines = false;
  void validate() const;
};

struct DataReport {
  int64_t lines = 0, skipped = 0, truncated = 0, dropped = 0;
  int64_t all_tied = 0;        // rankings whose responses all tie: no pair, skipped
  bool no_pairs_flag = false;  // internal: the last example was skipped as all tied
  std::string summary() const;  // "120 examples, 2 truncated, 1 dropped (overlong), 0 bad lines skipped"
  nlohmann::json to_json() const;  // {"examples", "truncated", "dropped", "skipped", "all_tied"}
};

// One prompt with K >= 2 responses and the preference pairs among them (pairwise data: K = 2, one pair).
struct PreferenceGroup {
  std::vector<train::TokenSeq> responses;  // prompt ++ response, loss mask on the response
  std::vector<std::pair<int, int>> pairs;  // (winner, loser) indices into responses
  std::vector<double> margins;             // per pair (0 unless the line has "margin")
  int64_t line = 0;
};

// Parsers of one line (throw rlhf::Error naming the field; read_jsonl adds file:line).
train::TokenSeq encode_sft_line(const nlohmann::json& j, const Formatter& f);
PreferenceGroup encode_preference_line(const nlohmann::json& j, const Formatter& f);
// {"prompt", "response"} (score / normalisation reference): prompt ++ response.
train::TokenSeq encode_scored_line(const nlohmann::json& j, const Formatter& f);

// Whole files, with the overlong policy applied.
std::vector<train::TokenSeq> load_sft_data(const std::string& path, const Formatter& f, const DataOptions& o,
                                           DataReport* report = nullptr);
std::vector<PreferenceGroup> load_preference_data(const std::string& path, const Formatter& f,
                                                  const DataOptions& o, DataReport* report = nullptr);
std::vector<train::TokenSeq> load_scored_data(const std::string& path, const Formatter& f, const DataOptions& o,
                                              DataReport* report = nullptr);

// Splits off the last `eval_fraction` (after a seeded shuffle) as the eval split. Returns (train, eval) indices.
std::pair<std::vector<int64_t>, std::vector<int64_t>> split_indices(int64_t n, double eval_fraction, uint64_t seed);

}  // namespace rlhf
