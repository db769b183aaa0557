// JSONL readers for `rlhf label serve --candidates FILE` and `--prompts FILE`.
#include "label/candidates.h"

#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>

namespace rlhf::label {
namespace {

using nlohmann::json;

// Calls fn(object, line_number) for each non-blank line of path, which must be a JSON object.
void for_each_jsonl_object(const std::string& path, const std::function<void(const json&, int)>& fn) {
  std::ifstream in(path);
  RLHF_CHECK(in, "cannot open ", path, " (hint: check the path)");
  std::string line;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    json obj;
    try {
      obj = json::parse(line);
    } catch (const json::exception& e) {
      fail(path, ":", lineno, ": not valid JSON: ", e.what());
    }
    RLHF_CHECK(obj.is_object(), path, ":", lineno, ": expected a JSON object, got ", obj.type_name());
    fn(obj, lineno);
  }
}

std::string string_field(const json& obj, const char* key, const std::string& path, int lineno) {
  auto it = obj.find(key);
  RLHF_CHECK(it != obj.end(), path, ":", lineno, ": missing field \"", key, "\"");
  RLHF_CHECK(it->is_string(), path, ":", lineno, ": field \"", key, "\" must be a string, got ", it->type_name());
  return it->get<std::string>();
}

}  // namespace

std::vector<NewItem> read_candidates_jsonl(const std::string& path) {
  std::vector<NewItem> out;
  for_each_jsonl_object(path, [&](const json& obj, int lineno) {
    NewItem item;
    item.prompt = string_field(obj, "prompt", path, lineno);
    auto it = obj.find("responses");
    RLHF_CHECK(it != obj.end() && it->is_array(), path, ":", lineno,
               ": field \"responses\" must be an array of strings (hint: {\"prompt\": \"...\", \"responses\": "
               "[\"a\", \"b\"]})");
    for (const auto& r : *it) {
      RLHF_CHECK(r.is_string(), path, ":", lineno, ": \"responses\" must hold strings, got ", r.type_name());
      item.responses.push_back(r.get<std::string>());
    }
    RLHF_CHECK(item.responses.size() >= 2, path, ":", lineno, ": \"responses\" needs at least 2 entries to rank, got ",
               item.responses.size());
    out.push_back(std::move(item));
  });
  RLHF_CHECK(!out.empty(), path, ": no candidates found (hint: one {\"prompt\", \"responses\"} object per line)");
  return out;
}

std::vector<std::string> read_prompts_jsonl(const std::string& path) {
  std::vector<std::string> out;
  for_each_jsonl_object(path, [&](const json& obj, int lineno) { out.push_back(string_field(obj, "prompt", path, lineno)); });
  RLHF_CHECK(!out.empty(), path, ": no prompts found (hint: one {\"prompt\": \"...\"} object per line)");
  return out;
}

}  // namespace rlhf::label
