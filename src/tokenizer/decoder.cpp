#include "tokenizer/decoder.h"

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/utf8.h"

namespace rlhf::tok {

namespace {

std::string lossy(std::string_view bytes) {
  if (utf8_is_valid(bytes)) return std::string(bytes);
  std::vector<size_t> unused;
  return utf8_sanitize(bytes, unused);
}

// All tokens -> bytes through the inverse ByteLevel table -> one string, invalid UTF-8 replaced by U+FFFD.
void byte_level(std::vector<std::string>& tokens) {
  std::string bytes;
  for (const auto& t : tokens) byte_level_decode_token(t, bytes);
  tokens.assign(1, lossy(bytes));
}

// Runs of "<0xAB>" tokens become their bytes: the run's UTF-8 text if valid, else one U+FFFD per byte token.
void byte_fallback(std::vector<std::string>& tokens) {
  std::vector<std::string> out;
  std::string run;
  size_t run_len = 0;
  auto flush = [&] {
    if (!run_len) return;
    if (utf8_is_valid(run)) out.push_back(run);
    else for (size_t k = 0; k < run_len; ++k) out.push_back("\xEF\xBF\xBD");
    run.clear(), run_len = 0;
  };
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  for (auto& t : tokens) {
    if (t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t[5] == '>' && hex(t[3]) >= 0 && hex(t[4]) >= 0) {
      run += (char)(hex(t[3]) * 16 + hex(t[4]));
      ++run_len;
    } else {
      flush();
      out.push_back(std::move(t));
    }
  }
  flush();
  tokens = std::move(out);
}

void replace_in(std::string& s, const std::string& from, const std::string& to) {
  if (from.empty()) return;
  std::string out;
  size_t i = 0, k;
  while ((k = s.find(from, i)) != std::string::npos) out.append(s, i, k - i), out += to, i = k + from.size();
  if (i == 0) return;
  out.append(s, i, std::string::npos);
  s = std::move(out);
}

// Strip up to `start` leading and `stop` trailing copies of the char `content` from every token.
void strip(std::vector<std::string>& tokens, const std::string& content, size_t start, size_t stop) {
  for (auto& t : tokens) {
    size_t b = 0, e = t.size();
    for (size_t k = 0; k < start && t.compare(b, content.size(), content) == 0 && b < e; ++k) b += content.size();
    for (size_t k = 0; k < stop && e >= b + content.size() && t.compare(e - content.size(), content.size(), content) == 0; ++k)
      e -= content.size();
    t = t.substr(b, e - b);
  }
}

}  // namespace

Decoder decoder_from_json(const nlohmann::json& j, const std::string& where) {
  if (j.is_null()) return {};
  RLHF_CHECK(j.is_object() && j.contains("type"), where, ": expected an object with a \"type\"");
  std::string type = j["type"].get<std::string>();
  if (type == "ByteLevel") return byte_level;
  if (type == "ByteFallback") return byte_fallback;
  if (type == "Fuse") {
    return [](std::vector<std::string>& tokens) {
      std::string all;
      for (const auto& t : tokens) all += t;
      tokens.assign(1, all);
    };
  }
  if (type == "Replace") {
    const auto& pat = j.at("pattern");
    RLHF_CHECK(pat.contains("String"), where, ".pattern: only {\"String\": ...} is supported in a Replace decoder");
    std::string from = pat["String"].get<std::string>(), to = j.at("content").get<std::string>();
    return [from, to](std::vector<std::string>& tokens) {
      for (auto& t : tokens) replace_in(t, from, to);
    };
  }
  if (type == "Strip") {
    std::string content = j.at("content").get<std::string>();
    size_t start = j.value("start", 0), stop = j.value("stop", 0);
    return [content, start, stop](std::vector<std::string>& tokens) { strip(tokens, content, start, stop); };
  }
  if (type == "Metaspace") {
    std::string rep = j.value("replacement", std::string("\xE2\x96\x81"));
    std::string scheme = "always";
    if (j.contains("prepend_scheme")) scheme = j["prepend_scheme"].get<std::string>();
    else if (j.contains("add_prefix_space") && !j["add_prefix_space"].get<bool>()) scheme = "never";
    // Every replacement char becomes ' ', except in the first token, where (unless the scheme is "never") every
    // one is dropped: tokenizers' Metaspace::decode_chain.
    return [rep, scheme](std::vector<std::string>& tokens) {
      for (size_t k = 0; k < tokens.size(); ++k) replace_in(tokens[k], rep, k == 0 && scheme != "never" ? "" : " ");
    };
  }
  if (type == "Sequence") {
    std::vector<Decoder> steps;
    const auto& list = j.at("decoders");
    for (size_t k = 0; k < list.size(); ++k) {
      Decoder d = decoder_from_json(list[k], cat(where, ".decoders[", k, "]"));
      if (d) steps.push_back(std::move(d));
    }
    return [steps](std::vector<std::string>& tokens) {
      for (const auto& d : steps) d(tokens);
    };
  }
  fail(where, ": unsupported decoder type \"", type,
       "\" (supported: ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace, Sequence)");
}

}  // namespace rlhf::tok
