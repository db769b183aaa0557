#include "tokenizer/pre_tokenizer.h"

#include <algorithm>
#include <memory>
#include <nlohmann/json.hpp>
#include <vector>

#include "common/error.h"
#include "tokenizer/regex.h"
#include "tokenizer/utf8.h"

namespace rlhf::tok {

namespace {

// GPT-2's pattern (openai/gpt-2 encoder.py), used by ByteLevel with use_regex.
const char* kGpt2Pattern = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

enum class Behavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };

Behavior behavior_from_string(const std::string& s, const std::string& where) {
  if (s == "Removed") return Behavior::Removed;
  if (s == "Isolated") return Behavior::Isolated;
  if (s == "MergedWithPrevious") return Behavior::MergedWithPrevious;
  if (s == "MergedWithNext") return Behavior::MergedWithNext;
  if (s == "Contiguous") return Behavior::Contiguous;
  fail(where, ": unknown split behavior \"", s,
       "\" (expected Removed, Isolated, MergedWithPrevious, MergedWithNext or Contiguous)");
}

// tokenizers' NormalizedString::split(pattern, behavior): the pattern's matches and the gaps between them cover the
// piece; `invert` swaps which is which; the behavior decides what is kept and what is glued together.
void split_piece(NormalizedString&& piece, const Regex& re, Behavior behavior, bool invert, const PieceSink& sink) {
  const std::string& t = piece.text();
  if (t.empty()) return;
  auto emit = [&](size_t b, size_t e) {
    if (e > b) sink(piece.slice(b, e));
  };
  struct Part {
    size_t b, e;
    bool is_match;
  };
  std::vector<Part> parts;
  const bool streaming = behavior == Behavior::Isolated || behavior == Behavior::Removed;
  auto part = [&](size_t b, size_t e, bool m) {
    m = m != invert;
    if (!streaming) return parts.push_back({b, e, m});
    if (behavior == Behavior::Isolated || !m) emit(b, e);
  };
  size_t prev = 0, pos = 0, mb, me;
  while (pos <= t.size() && re.find(t, pos, &mb, &me)) {
    if (prev != mb) part(prev, mb, false);
    part(mb, me, true);
    prev = me;
    // An empty match must not stall: step over one character.
    pos = me > mb ? me : (me < t.size() ? me + utf8_len((unsigned char)t[me]) : t.size() + 1);
  }
  if (prev != t.size()) part(prev, t.size(), false);
  if (streaming) return;

  std::vector<Part> out;
  bool previous_match = false;
  switch (behavior) {
    case Behavior::MergedWithPrevious:
      for (const Part& p : parts) {
        if (p.is_match && !previous_match && !out.empty()) out.back().e = p.e;
        else out.push_back(p);
        previous_match = p.is_match;
      }
      break;
    case Behavior::MergedWithNext:
      for (size_t k = parts.size(); k-- > 0;) {
        const Part& p = parts[k];
        if (p.is_match && !previous_match && !out.empty()) out.back().b = p.b;
        else out.push_back(p);
        previous_match = p.is_match;
      }
      std::reverse(out.begin(), out.end());
      break;
    case Behavior::Contiguous:
      for (const Part& p : parts) {
        if (p.is_match == previous_match && !out.empty()) out.back().e = p.e;
        else out.push_back(p);
        previous_match = p.is_match;
      }
      break;
    default:
      break;
  }
  for (const Part& p : out) emit(p.b, p.e);
}

std::shared_ptr<Regex> pattern_regex(const nlohmann::json& pat, const std::string& where) {
  if (pat.contains("String")) return std::make_shared<Regex>(Regex::escape(pat["String"].get<std::string>()), where);
  RLHF_CHECK(pat.contains("Regex"), where, ": expected {\"String\": ...} or {\"Regex\": ...}");
  return std::make_shared<Regex>(pat["Regex"].get<std::string>(), where);
}

using RunFn = std::function<void(NormalizedString&&, const PieceSink&)>;

RunFn split_fn(std::shared_ptr<Regex> re, Behavior behavior, bool invert) {
  return [re, behavior, invert](NormalizedString&& piece, const PieceSink& sink) {
    split_piece(std::move(piece), *re, behavior, invert, sink);
  };
}

PreTokenizer metaspace(const nlohmann::json& j, const std::string& where) {
  std::string rep = j.value("replacement", std::string("\xE2\x96\x81"));
  std::string scheme = "always";
  if (j.contains("prepend_scheme")) scheme = j["prepend_scheme"].get<std::string>();
  else if (j.contains("add_prefix_space") && !j["add_prefix_space"].get<bool>()) scheme = "never";
  RLHF_CHECK(scheme == "always" || scheme == "first" || scheme == "never", where,
             ".prepend_scheme: expected always, first or never, got ", scheme);
  bool split = j.value("split", true);
  auto re = std::make_shared<Regex>(Regex::escape(rep), where);
  PreTokenizer p;
  p.run = [rep, scheme, split, re](NormalizedString&& piece, const PieceSink& sink) {
    piece.replace_all(" ", rep);
    bool starts = piece.text().compare(0, rep.size(), rep) == 0;
    // "first": only the piece that starts the input (tokenizers checks offsets_original().0 == 0).
    if (!starts && (scheme == "always" || (scheme == "first" && piece.original_begin() == 0))) piece.prepend(rep);
    if (split) split_piece(std::move(piece), *re, Behavior::MergedWithNext, false, sink);
    else if (!piece.empty()) sink(std::move(piece));
  };
  return p;
}

}  // namespace

PreTokenizer pre_tokenizer_from_json(const nlohmann::json& j, const std::string& where) {
  PreTokenizer p;
  if (j.is_null()) return p;
  RLHF_CHECK(j.is_object() && j.contains("type"), where, ": expected an object with a \"type\"");
  std::string type = j["type"].get<std::string>();
  if (type == "Split") {
    auto re = pattern_regex(j.at("pattern"), where + ".pattern");
    p.run = split_fn(re, behavior_from_string(j.at("behavior").get<std::string>(), where + ".behavior"),
                     j.value("invert", false));
    return p;
  }
  if (type == "ByteLevel") {
    bool add_prefix_space = j.value("add_prefix_space", true), use_regex = j.value("use_regex", true);
    RunFn words = use_regex ? split_fn(std::make_shared<Regex>(kGpt2Pattern, where), Behavior::Isolated, false)
                            : RunFn([](NormalizedString&& s, const PieceSink& sink) {
                                if (!s.empty()) sink(std::move(s));
                              });
    p.run = [add_prefix_space, words](NormalizedString&& piece, const PieceSink& sink) {
      if (add_prefix_space && piece.text().compare(0, 1, " ") != 0) piece.prepend(" ");
      words(std::move(piece), sink);
    };
    p.byte_level = true;
    return p;
  }
  if (type == "Metaspace") return metaspace(j, where);
  if (type == "Digits") {
    bool individual = j.value("individual_digits", false);
    // tokenizers' Digits uses char::is_numeric (Nd, Nl, No).
    p.run = split_fn(std::make_shared<Regex>(individual ? "\\p{N}" : "\\p{N}+", where),
                     individual ? Behavior::Isolated : Behavior::Contiguous, false);
    return p;
  }
  if (type == "Whitespace") {
    // Keep \w+ and [^\w\s]+ runs, drop the whitespace between them.
    p.run = split_fn(std::make_shared<Regex>(R"(\w+|[^\w\s]+)", where), Behavior::Removed, true);
    return p;
  }
  if (type == "WhitespaceSplit") {
    p.run = split_fn(std::make_shared<Regex>(R"(\s+)", where), Behavior::Removed, false);
    return p;
  }
  if (type == "Sequence") {
    const auto& list = j.at("pretokenizers");
    std::vector<RunFn> steps;
    for (size_t k = 0; k < list.size(); ++k) {
      std::string w = cat(where, ".pretokenizers[", k, "]");
      RLHF_CHECK(!p.byte_level, w, ": a pre-tokenizer after ByteLevel is not supported",
                 " (hint: ByteLevel must be the last step of the Sequence)");
      PreTokenizer step = pre_tokenizer_from_json(list[k], w);
      p.byte_level = step.byte_level;
      if (step.run) steps.push_back(std::move(step.run));
    }
    // Chain: step k feeds each of its words to step k+1; the last one feeds the sink.
    p.run = [steps](NormalizedString&& piece, const PieceSink& sink) {
      std::function<void(size_t, NormalizedString&&)> go = [&](size_t k, NormalizedString&& s) {
        if (k == steps.size()) return sink(std::move(s));
        steps[k](std::move(s), [&](NormalizedString&& w) { go(k + 1, std::move(w)); });
      };
      go(0, std::move(piece));
    };
    return p;
  }
  fail(where, ": unsupported pre_tokenizer type \"", type,
       "\" (supported: Split, ByteLevel, Metaspace, Digits, Whitespace, WhitespaceSplit, Sequence)");
}

}  // namespace rlhf::tok
