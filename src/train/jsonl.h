// Reading JSONL datasets with errors that say where: "data.jsonl:17: field \"chosen\": missing (expected a string
// or a list of messages)". A malformed line, a missing or mistyped field, or an empty dataset is an error;
// with skip_bad_lines the line is skipped and counted instead (and the count is reported by the caller).
#pragma once
#include <nlohmann/json.hpp>
#include <functional>
#include <string>

namespace rlhf::train {

struct JsonlOptions {
  bool skip_bad_lines = false;  // count and skip bad lines instead of stopping
  int64_t max_lines = 0;        // read at most this many examples (0: all)
};

struct JsonlReport {
  int64_t read = 0;     // examples accepted
  int64_t skipped = 0;  // bad lines skipped (skip_bad_lines)
  int64_t blank = 0;    // empty lines (ignored)
  std::string first_error;  // the first skipped line's message
};

// Calls parse(object, line_number) for each non-blank line. rlhf::Error thrown by parse (e.g. from field())
// becomes "path:line: <message>" (or a skip). Throws when no example was accepted.
JsonlReport read_jsonl(const std::string& path, const JsonlOptions& opts,
                       const std::function<void(const nlohmann::json&, int64_t)>& parse);

// The field `key` of a line's object. Throws "field \"key\": missing (expected <expected>)" when absent.
const nlohmann::json& field(const nlohmann::json& j, const std::string& key, const std::string& expected);
// The same, checking that it is a string.
std::string string_field(const nlohmann::json& j, const std::string& key);
// True when j has key and it is not null.
bool has_field(const nlohmann::json& j, const std::string& key);

}  // namespace rlhf::train
