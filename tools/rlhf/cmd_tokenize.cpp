// rlhf tokenize --tokenizer DIR [--add-special-tokens] (--text TEXT | --input FILE)
//   prints the ids as a JSON array; with --input, FILE holds one JSON string per line and the output is one JSON
//   array per line.
// rlhf detokenize --tokenizer DIR [--skip-special-tokens] (--ids 1,2,3 | --input FILE)
//   prints the text; with --input, FILE holds one JSON array of ids per line and the output is one JSON string
//   per line.
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "common/error.h"
#include "tokenizer/tokenizer.h"
#include "command.h"

namespace {

struct TokenizeOptions {
  std::string tokenizer;          // folder with tokenizer.json (+ tokenizer_config.json)
  bool add_special_tokens = false;  // run the post-processor's template (e.g. Llama 2's <s>)
  std::string text;               // one text ...
  std::string input;              // ... or a file of JSON strings, one per line
};

std::string ids_json(const std::vector<int32_t>& ids) { return nlohmann::json(ids).dump(); }

// Calls fn(value, line_number) for each non-empty line of path, parsed as JSON; errors name the file and line.
// what: the expected content, for the hint ("one JSON string per line"); example: one such line.
void for_each_json_line(const std::string& path, const std::string& what, const std::string& example,
                        const std::function<void(const nlohmann::json&, size_t)>& fn) {
  std::ifstream f(path);
  RLHF_CHECK(f.good(), path, ": cannot open (hint: --input takes a file with ", what, ")");
  std::string line;
  for (size_t n = 1; std::getline(f, line); ++n) {
    if (line.empty()) continue;
    nlohmann::json v;
    try {
      v = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      rlhf::fail(path, ":", n, ": not valid JSON: ", e.what(), " (hint: ", what, ", e.g. ", example, ")");
    }
    fn(v, n);
  }
}

int run_tokenize(const TokenizeOptions& o, bool from_text) {
  auto tok = rlhf::tok::Tokenizer::from_dir(o.tokenizer);
  if (from_text) {
    std::cout << ids_json(tok.encode(o.text, o.add_special_tokens)) << "\n";
    return 0;
  }
  std::vector<std::string> texts;
  for_each_json_line(o.input, "one JSON string per line", "\"hi\"", [&](const nlohmann::json& v, size_t n) {
    RLHF_CHECK(v.is_string(), o.input, ":", n, ": expected a JSON string, got ", v.type_name());
    texts.push_back(v.get<std::string>());
  });
  for (const auto& ids : tok.encode_batch(texts, o.add_special_tokens)) std::cout << ids_json(ids) << "\n";
  return 0;
}

struct DetokenizeOptions {
  std::string tokenizer;             // folder with tokenizer.json
  bool skip_special_tokens = false;  // drop special added tokens from the text
  std::string ids;                   // comma-separated ids, e.g. 1,2,3 ...
  std::string input;                 // ... or a file of JSON arrays of ids, one per line
};

int run_detokenize_file(const DetokenizeOptions& o) {
  auto tok = rlhf::tok::Tokenizer::from_dir(o.tokenizer);
  for_each_json_line(o.input, "one JSON array of ids per line", "[1, 2]", [&](const nlohmann::json& v, size_t n) {
    std::vector<int32_t> ids;
    try {
      ids = v.get<std::vector<int32_t>>();
    } catch (const nlohmann::json::exception&) {
      rlhf::fail(o.input, ":", n, ": expected a JSON array of token ids, got ", v.dump());
    }
    std::cout << nlohmann::json(tok.decode(ids, o.skip_special_tokens)).dump() << "\n";
  });
  return 0;
}

int run_detokenize(const DetokenizeOptions& o) {
  if (!o.input.empty()) return run_detokenize_file(o);
  std::vector<int32_t> ids;
  std::stringstream ss(o.ids);
  std::string item;
  while (std::getline(ss, item, ',')) {
    size_t used = 0;
    long v = 0;
    try {
      v = std::stol(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    RLHF_CHECK(used == item.size() && !item.empty() && v >= 0 && v <= INT32_MAX, "detokenize: --ids: \"", item,
               "\" is not a non-negative integer (hint: --ids 1,2,3)");
    ids.push_back((int32_t)v);
  }
  auto tok = rlhf::tok::Tokenizer::from_dir(o.tokenizer);
  std::cout << tok.decode(ids, o.skip_special_tokens) << "\n";
  return 0;
}

rlhf::cli::Command tokenize_cmd{"tokenize", "Encode text to token ids with a tokenizer.json", [](CLI::App& app) {
  auto o = std::make_shared<TokenizeOptions>();
  app.add_option("--tokenizer", o->tokenizer, "Folder with tokenizer.json (+ tokenizer_config.json)")->required();
  app.add_flag("--add-special-tokens", o->add_special_tokens, "Add the post-processor's special tokens");
  auto* text = app.add_option("--text", o->text, "Text to encode");
  auto* input = app.add_option("--input", o->input, "File with one JSON string per line");
  text->excludes(input);
  input->excludes(text);
  return [o, text, input] {
    RLHF_CHECK(text->count() + input->count() == 1, "tokenize: give exactly one of --text TEXT and --input FILE");
    return run_tokenize(*o, text->count() > 0);
  };
}};

rlhf::cli::Command detokenize_cmd{"detokenize", "Decode token ids to text", [](CLI::App& app) {
  auto o = std::make_shared<DetokenizeOptions>();
  app.add_option("--tokenizer", o->tokenizer, "Folder with tokenizer.json")->required();
  app.add_flag("--skip-special-tokens", o->skip_special_tokens, "Drop special tokens");
  auto* ids = app.add_option("--ids", o->ids, "Comma-separated ids, e.g. 1,2,3");
  auto* input = app.add_option("--input", o->input, "File with one JSON array of ids per line");
  ids->excludes(input);
  input->excludes(ids);
  return [o, ids, input] {
    RLHF_CHECK(ids->count() + input->count() == 1, "detokenize: give exactly one of --ids 1,2,3 and --input FILE");
    return run_detokenize(*o);
  };
}};

}  // namespace
