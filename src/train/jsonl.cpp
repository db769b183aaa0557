#include "train/jsonl.h"

#include <fstream>

#include "common/error.h"

using nlohmann::json;

namespace rlhf::train {

JsonlReport read_jsonl(const std::string& path, const JsonlOptions& opts,
                       const std::function<void(const json&, int64_t)>& parse) {
  std::ifstream in(path);
  RLHF_CHECK(in, path, ": cannot open (expected a JSONL file, one JSON object per line)");
  JsonlReport rep;
  std::string line;
  int64_t lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (line.find_first_not_of(" \t\r") == std::string::npos) {
      ++rep.blank;
      continue;
    }
    std::string err;
    try {
      json j = json::parse(line);
      if (!j.is_object()) throw Error(cat("expected a JSON object, got ", j.type_name()));
      parse(j, lineno);
      ++rep.read;
    } catch (const json::parse_error& e) {
      err = cat(path, ":", lineno, ": malformed JSON (", e.what(), ")");
    } catch (const json::exception& e) {
      err = cat(path, ":", lineno, ": ", e.what());
    } catch (const Error& e) {
      err = cat(path, ":", lineno, ": ", e.what());
    }
    if (!err.empty()) {
      RLHF_CHECK(opts.skip_bad_lines, err, " (--skip-bad-lines skips such lines and counts them)");
      if (rep.skipped++ == 0) rep.first_error = err;
    }
    if (opts.max_lines > 0 && rep.read >= opts.max_lines) break;
  }
  RLHF_CHECK(rep.read > 0, path, ": empty dataset (", lineno, " lines, ", rep.skipped, " skipped as bad",
             rep.first_error.empty() ? "" : ", first: " + rep.first_error, ")");
  return rep;
}

const json& field(const json& j, const std::string& key, const std::string& expected) {
  auto it = j.find(key);
  RLHF_CHECK(it != j.end() && !it->is_null(), "field \"", key, "\": missing (expected ", expected, ")");
  return *it;
}

std::string string_field(const json& j, const std::string& key) {
  const auto& v = field(j, key, "a string");
  RLHF_CHECK(v.is_string(), "field \"", key, "\": expected a string, got ", v.type_name());
  return v.get<std::string>();
}

bool has_field(const json& j, const std::string& key) {
  auto it = j.find(key);
  return it != j.end() && !it->is_null();
}

}  // namespace rlhf::train
