#include "tokenizer/added_vocabulary.h"

#include <utf8proc.h>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "tokenizer/utf8.h"

namespace rlhf::tok {

void AddedVocabulary::Trie::insert(const std::string& s, int token) {
  if (s.empty()) return;
  first[(unsigned char)s[0]] = true;
  int at = 0;
  for (unsigned char c : s) {
    auto it = nodes[at].next.find(c);
    if (it == nodes[at].next.end()) {
      nodes.push_back(Node{});
      int n = (int)nodes.size() - 1;
      nodes[at].next[c] = n;
      at = n;
    } else {
      at = it->second;
    }
  }
  if (nodes[at].token < 0) nodes[at].token = token;  // first definition wins
  tokens.push_back(token);
}

int AddedVocabulary::Trie::longest(std::string_view text, size_t i, size_t* len) const {
  int at = 0, best = -1;
  for (size_t k = i; k < text.size(); ++k) {
    auto it = nodes[at].next.find((unsigned char)text[k]);
    if (it == nodes[at].next.end()) break;
    at = it->second;
    if (nodes[at].token >= 0) best = nodes[at].token, *len = k + 1 - i;
  }
  return best;
}

AddedVocabulary::AddedVocabulary(const nlohmann::json& added, const Normalizer& normalizer, const std::string& where) {
  if (added.is_null()) return;
  RLHF_CHECK(added.is_array(), where, ": expected an array");
  for (size_t k = 0; k < added.size(); ++k) {
    const auto& a = added[k];
    AddedToken t;
    t.id = a.at("id").get<int32_t>();
    t.content = a.at("content").get<std::string>();
    t.special = a.value("special", false);
    t.lstrip = a.value("lstrip", false);
    t.rstrip = a.value("rstrip", false);
    t.normalized = a.value("normalized", !t.special);
    t.single_word = a.value("single_word", false);
    RLHF_CHECK(!t.content.empty(), where, "[", k, "]: empty content");
    RLHF_CHECK(utf8_is_valid(t.content), where, "[", k, "]: content is not valid UTF-8");
    by_id_[t.id] = tokens_.size();
    by_content_[t.content] = tokens_.size();
    tokens_.push_back(t);
  }
  for (size_t k = 0; k < tokens_.size(); ++k) {
    const AddedToken& t = tokens_[k];
    if (!t.normalized) {
      raw_.insert(t.content, (int)k);
    } else {
      NormalizedString ns(t.content, 0, t.content.size());
      if (normalizer) normalizer(ns);
      norm_.insert(ns.text(), (int)k);
    }
  }
}

const AddedToken* AddedVocabulary::by_id(int32_t id) const {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &tokens_[it->second];
}

const AddedToken* AddedVocabulary::by_content(const std::string& content) const {
  auto it = by_content_.find(content);
  return it == by_content_.end() ? nullptr : &tokens_[it->second];
}

namespace {
// Code point of the char that ends right before byte i / starts at byte i.
uint32_t cp_before(std::string_view s, size_t i) {
  size_t b = i - 1;
  while (b > 0 && ((unsigned char)s[b] & 0xC0) == 0x80) --b;
  return utf8_next(s, b);
}
// "Word" chars for single_word: alphanumeric (Unicode letters and numbers) or '_'.
bool is_word_char(uint32_t cp) {
  if (cp == '_') return true;
  utf8proc_category_t c = utf8proc_category((utf8proc_int32_t)cp);
  return (c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_LO) || (c >= UTF8PROC_CATEGORY_ND && c <= UTF8PROC_CATEGORY_NO);
}
}  // namespace

void AddedVocabulary::split(std::string_view text, bool normalized, std::vector<AddedSplit>& out) const {
  const Trie& trie = normalized ? norm_ : raw_;
  size_t start = 0;  // end of the previous match
  size_t i = 0;
  while (i < text.size()) {
    if (!trie.first[(unsigned char)text[i]]) {
      ++i;
      continue;
    }
    size_t len = 0;
    int k = trie.longest(text, i, &len);
    if (k < 0) {
      ++i;
      continue;
    }
    const AddedToken& t = tokens_[k];
    size_t b = i, e = i + len;
    if (t.single_word) {
      bool left_ok = b == 0 || !is_word_char(cp_before(text, b));
      size_t j = e;
      bool right_ok = e == text.size() || !is_word_char(utf8_next(text, j));
      if (!left_ok || !right_ok) {  // dropped; scanning resumes after it (non-overlapping matches)
        i = e;
        continue;
      }
    }
    if (t.lstrip) {
      while (b > start && is_unicode_whitespace(cp_before(text, b))) {
        size_t p = b - 1;
        while (p > 0 && ((unsigned char)text[p] & 0xC0) == 0x80) --p;
        b = p;
      }
    }
    if (t.rstrip) {
      while (e < text.size()) {
        size_t j = e;
        if (!is_unicode_whitespace(utf8_next(text, j))) break;
        e = j;
      }
    }
    if (start < b) out.push_back({start, b, std::nullopt});
    out.push_back({b, e, t.id});
    start = i = e;
  }
  if (start < text.size() || text.empty()) out.push_back({start, text.size(), std::nullopt});
}

}  // namespace rlhf::tok
