// Added tokens (tokenizer.json "added_tokens"): strings matched in the text before the model sees it, as the
// tokenizers library's AddedVocabulary does:
//  1. tokens with normalized=false are found in the raw text;
//  2. the pieces between them are normalized, then tokens with normalized=true are found in the normalized text
//     (their content normalized the same way).
// Matching scans left to right and takes, at the leftmost position where some token starts, the longest one
// (aho-corasick LeftmostLongest). A match is then adjusted: single_word drops it unless it stands between
// non-word chars (alphanumeric or _) or the ends; lstrip / rstrip extend it over the whitespace to its left / right
// (never into the previous match), so that whitespace belongs to the token.
#pragma once
#include <cstdint>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer/normalizer.h"

namespace rlhf::tok {

struct AddedToken {
  int32_t id = 0;
  std::string content;
  bool special = false, lstrip = false, rstrip = false, normalized = true, single_word = false;
};

// One cut of the text: [begin, end) bytes, with the added token's id when it is one.
struct AddedSplit {
  size_t begin, end;
  std::optional<int32_t> id;
};

class AddedVocabulary {
 public:
  AddedVocabulary() = default;
  // normalizer: the tokenizer's normalizer, applied to the content of normalized=true tokens.
  AddedVocabulary(const nlohmann::json& added_tokens, const Normalizer& normalizer, const std::string& where);

  // Cuts `text` by the tokens of one kind (normalized or not); the splits cover the text, in order.
  void split(std::string_view text, bool normalized, std::vector<AddedSplit>& out) const;
  bool has(bool normalized) const { return normalized ? !norm_.tokens.empty() : !raw_.tokens.empty(); }

  const std::vector<AddedToken>& tokens() const { return tokens_; }
  const AddedToken* by_id(int32_t id) const;
  const AddedToken* by_content(const std::string& content) const;

 private:
  // A byte trie over the token contents of one kind.
  struct Trie {
    struct Node {
      std::unordered_map<unsigned char, int> next;
      int token = -1;  // index into tokens_ ending here
    };
    std::vector<Node> nodes{Node{}};
    std::vector<int> tokens;
    bool first[256] = {};  // bytes that start some token: a fast reject for most positions
    void insert(const std::string& s, int token);
    // Longest token starting at text[i]: index into tokens_ and its length, or -1.
    int longest(std::string_view text, size_t i, size_t* len) const;
  };
  std::vector<AddedToken> tokens_;
  std::unordered_map<int32_t, size_t> by_id_;
  std::unordered_map<std::string, size_t> by_content_;
  Trie raw_, norm_;
};

}  // namespace rlhf::tok
