#include "tokenizer/normalizer.h"

#include <utf8proc.h>

#include <cstdlib>
#include <memory>
#include <nlohmann/json.hpp>
#include <vector>

#include "common/error.h"
#include "tokenizer/regex.h"
#include "tokenizer/utf8.h"

namespace rlhf::tok {

namespace {

// Code points the tokenizers library's normalizer leaves as they are although utf8proc (Unicode 15) gives them a
// combining class or a decomposition: the library's tables predate Unicode 10, so for it these are unassigned
// starters (e.g. U+09FE BENGALI SANDHI MARK, class 230, stays before a U+032A of class 220; utf8proc moves it
// after). Found by running tokenizers.normalizers.NFC/NFD/NFKC/NFKD against Python's unicodedata (Unicode 14) on
// every code point that has a class or a decomposition, plus those utf8proc has and Python 3.11 has not
// (tests/py/test_tokenizer_live.py found the first one). Also U+11A7, which utf8proc wrongly composes into a
// preceding Hangul LV syllable as a trailing consonant of index 0, dropping it (Unicode: T is U+11A8..U+11C2).
constexpr std::pair<uint32_t, uint32_t> kInert[] = {
    {0x07FD, 0x07FD}, {0x0898, 0x089F}, {0x08CA, 0x08D3}, {0x09FE, 0x09FE}, {0x0C3C, 0x0C3C}, {0x0D3B, 0x0D3C},
    {0x0EBA, 0x0EBA}, {0x1715, 0x1715}, {0x11A7, 0x11A7}, {0x1ABF, 0x1ACE}, {0x1DF6, 0x1DFA}, {0x32FF, 0x32FF},
    {0xA7F2, 0xA7F4}, {0xA82C, 0xA82C}, {0xAB69, 0xAB69}, {0x10781, 0x10785}, {0x10787, 0x107B0}, {0x107B2, 0x107BA},
    {0x10D24, 0x10D27}, {0x10EAB, 0x10EAC}, {0x10EFD, 0x10EFF}, {0x10F46, 0x10F50}, {0x10F82, 0x10F85},
    {0x11070, 0x11070}, {0x1133B, 0x1133B}, {0x1145E, 0x1145E}, {0x11839, 0x1183A}, {0x11938, 0x11938},
    {0x1193D, 0x1193E}, {0x11943, 0x11943}, {0x119E0, 0x119E0}, {0x11A34, 0x11A34}, {0x11A47, 0x11A47},
    {0x11A99, 0x11A99}, {0x11D42, 0x11D42}, {0x11D44, 0x11D45}, {0x11D97, 0x11D97}, {0x11F41, 0x11F42},
    {0x16FF0, 0x16FF1}, {0x1E030, 0x1E06D}, {0x1E08F, 0x1E08F}, {0x1E130, 0x1E136}, {0x1E2AE, 0x1E2AE},
    {0x1E2EC, 0x1E2EF}, {0x1E4EC, 0x1E4EF}, {0x1F16C, 0x1F16C}, {0x1FBF0, 0x1FBF9},
};

bool is_inert(uint32_t cp) {
  for (const auto& [lo, hi] : kInert)
    if (cp >= lo && cp <= hi) return true;
  return false;
}

std::string utf8proc_map_all(std::string_view s, utf8proc_option_t options) {
  if (s.empty()) return {};
  utf8proc_uint8_t* out = nullptr;
  utf8proc_ssize_t n = utf8proc_map((const utf8proc_uint8_t*)s.data(), (utf8proc_ssize_t)s.size(), &out, options);
  RLHF_CHECK(n >= 0, "normalizer: utf8proc failed: ", utf8proc_errmsg(n), " (hint: input must be valid UTF-8)");
  std::string r((const char*)out, (size_t)n);
  std::free(out);
  return r;
}

// utf8proc_map, but with the kInert code points kept as they are and the text between them normalized apart. Exact:
// such a code point is a starter that composes with nothing, so no reordering or composition crosses it.
std::string utf8proc_apply(std::string_view s, utf8proc_option_t options) {
  std::string r;
  size_t piece = 0, i = 0;
  while (i < s.size()) {
    size_t at = i;
    uint32_t cp = utf8_next(s, i);
    if (!is_inert(cp)) continue;
    r += utf8proc_map_all(s.substr(piece, at - piece), options);
    r += s.substr(at, i - at);
    piece = i;
  }
  return r + utf8proc_map_all(s.substr(piece), options);
}

// Unicode normalization (NFC/NFD/NFKC/NFKD). To keep offsets, the text is cut into segments that start at a
// starter (canonical combining class 0, not a conjoining jamo vowel/trailing consonant); each segment is normalized
// on its own. Like the tokenizers library (whose alignments follow the chars that survive), a segment whose char
// count is kept maps its output chars one to one onto its input chars, and otherwise every output char maps to the
// segment's first input char: NFD "e + U+0301" -> NFC "é" spans only the "e". Normalization forms are closed under
// concatenation at such boundaries; if a rare composition crosses one (checked), the whole piece's output maps to
// the whole piece's span: the ids are always those of the whole-text normalization.
void unicode_normalize(NormalizedString& ns, utf8proc_option_t options) {
  const std::string& t = ns.text();
  // Pure ASCII is invariant under every normalization form.
  bool ascii = true;
  for (unsigned char c : t) ascii &= c < 0x80;
  if (ascii) return;
  std::string whole = utf8proc_apply(t, options);
  if (whole == t) return;
  NormalizedString::Builder b = ns.builder();
  std::vector<size_t> starts;  // char starts of the current segment
  auto flush = [&](size_t end) {
    if (starts.empty()) return;
    std::string_view in = std::string_view(t).substr(starts[0], end - starts[0]);
    std::string out = utf8proc_apply(in, options);
    std::vector<size_t> out_starts;
    for (size_t i = 0; i < out.size(); i += utf8_len((unsigned char)out[i])) out_starts.push_back(i);
    out_starts.push_back(out.size());
    const size_t n_out = out_starts.size() - 1;
    for (size_t k = 0; k < n_out; ++k) {
      size_t in_k = n_out == starts.size() ? k : 0;
      size_t in_end = in_k + 1 < starts.size() ? starts[in_k + 1] : end;
      b.push(std::string_view(out).substr(out_starts[k], out_starts[k + 1] - out_starts[k]),
             ns.original_span(starts[in_k], in_end));
    }
    starts.clear();
  };
  size_t i = 0;
  while (i < t.size()) {
    size_t at = i;
    uint32_t cp = utf8_next(t, i);
    bool jamo_vt = (cp >= 0x1160 && cp <= 0x11FF) || (cp >= 0xD7B0 && cp <= 0xD7FF);
    if (!starts.empty() && utf8proc_get_property((utf8proc_int32_t)cp)->combining_class == 0 && !jamo_vt) flush(at);
    starts.push_back(at);
  }
  flush(t.size());
  if (b.text != whole) {
    b = ns.builder();
    b.push(whole, ns.original_span(0, t.size()));
  }
  ns.assign(std::move(b));
}

void lowercase(NormalizedString& ns) {
  const std::string& t = ns.text();
  NormalizedString::Builder b = ns.builder();
  std::string ch;
  size_t i = 0;
  while (i < t.size()) {
    size_t at = i;
    uint32_t cp = utf8_next(t, i);
    ch.clear();
    if (cp == 0x130) {
      utf8_append(ch, 'i');  // Rust's char::to_lowercase: İ -> i + U+0307 (SpecialCasing.txt)
      utf8_append(ch, 0x307);
    } else {
      utf8_append(ch, (uint32_t)utf8proc_tolower((utf8proc_int32_t)cp));
    }
    b.push(ch, ns.original_span(at, i));
  }
  ns.assign(std::move(b));
}

void strip(NormalizedString& ns, bool left, bool right) {
  const std::string& t = ns.text();
  size_t begin = 0, end = t.size();
  if (left) {
    while (begin < end) {
      size_t i = begin;
      if (!is_unicode_whitespace(utf8_next(t, i))) break;
      begin = i;
    }
  }
  if (right) {
    while (end > begin) {
      size_t s = end - 1;
      while (s > begin && ((unsigned char)t[s] & 0xC0) == 0x80) --s;
      size_t i = s;
      if (!is_unicode_whitespace(utf8_next(t, i))) break;
      end = s;
    }
  }
  if (begin == 0 && end == t.size()) return;
  ns = ns.slice(begin, end);
}

void regex_replace(NormalizedString& ns, const Regex& re, const std::string& content) {
  const std::string& t = ns.text();
  NormalizedString::Builder b = ns.builder();
  size_t pos = 0, mb, me;
  bool changed = false;
  while (pos <= t.size() && re.find(t, pos, &mb, &me)) {
    for (size_t k = pos; k < mb; ++k) b.push(std::string_view(&t[k], 1), ns.byte_span(k));
    if (me == mb) {  // empty match: keep one char and move on
      if (mb >= t.size()) break;
      size_t n = utf8_len((unsigned char)t[mb]);
      for (size_t k = mb; k < mb + n; ++k) b.push(std::string_view(&t[k], 1), ns.byte_span(k));
      pos = mb + n;
      continue;
    }
    b.push(content, ns.original_span(mb, me));
    changed = true;
    pos = me;
  }
  if (!changed) return;
  for (size_t k = pos; k < t.size(); ++k) b.push(std::string_view(&t[k], 1), ns.byte_span(k));
  ns.assign(std::move(b));
}

std::string str_field(const nlohmann::json& j, const char* key, const std::string& where) {
  RLHF_CHECK(j.contains(key) && j[key].is_string(), where, ": expected string field \"", key, "\"");
  return j[key].get<std::string>();
}

}  // namespace

Normalizer normalizer_from_json(const nlohmann::json& j, const std::string& where) {
  if (j.is_null()) return {};
  RLHF_CHECK(j.is_object() && j.contains("type"), where, ": expected an object with a \"type\"");
  std::string type = j["type"].get<std::string>();
  if (type == "NFC") return [](NormalizedString& s) { unicode_normalize(s, (utf8proc_option_t)(UTF8PROC_STABLE | UTF8PROC_COMPOSE)); };
  if (type == "NFD") return [](NormalizedString& s) { unicode_normalize(s, (utf8proc_option_t)(UTF8PROC_STABLE | UTF8PROC_DECOMPOSE)); };
  if (type == "NFKC")
    return [](NormalizedString& s) {
      unicode_normalize(s, (utf8proc_option_t)(UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT));
    };
  if (type == "NFKD")
    return [](NormalizedString& s) {
      unicode_normalize(s, (utf8proc_option_t)(UTF8PROC_STABLE | UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT));
    };
  if (type == "Lowercase") return lowercase;
  if (type == "Prepend") {
    std::string p = str_field(j, "prepend", where);
    return [p](NormalizedString& s) { s.prepend(p); };
  }
  if (type == "Strip") {
    bool left = j.value("strip_left", true), right = j.value("strip_right", true);
    return [left, right](NormalizedString& s) { strip(s, left, right); };
  }
  if (type == "Replace") {
    std::string content = str_field(j, "content", where);
    const auto& pat = j.at("pattern");
    if (pat.contains("String")) {
      std::string from = pat["String"].get<std::string>();
      return [from, content](NormalizedString& s) { s.replace_all(from, content); };
    }
    RLHF_CHECK(pat.contains("Regex"), where, ".pattern: expected {\"String\": ...} or {\"Regex\": ...}");
    auto re = std::make_shared<Regex>(pat["Regex"].get<std::string>(), where + ".pattern");
    return [re, content](NormalizedString& s) { regex_replace(s, *re, content); };
  }
  if (type == "Sequence") {
    std::vector<Normalizer> steps;
    const auto& list = j.at("normalizers");
    for (size_t k = 0; k < list.size(); ++k) {
      Normalizer n = normalizer_from_json(list[k], cat(where, ".normalizers[", k, "]"));
      if (n) steps.push_back(std::move(n));
    }
    return [steps](NormalizedString& s) {
      for (const auto& n : steps) n(s);
    };
  }
  fail(where, ": unsupported normalizer type \"", type,
       "\" (supported: NFC, NFD, NFKC, NFKD, Lowercase, Prepend, Replace, Strip, Sequence)");
}

}  // namespace rlhf::tok
