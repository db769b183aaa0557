// BPE model (tokenizer.json "model" with "type": "BPE"), both shapes that ship today:
//  - byte-level (GPT-2, Llama 3, Qwen): words are bytes seen through the ByteLevel table (byte_level.h);
//  - SentencePiece-style (Llama 2, Mistral): words are UTF-8 chars; a char missing from the vocab becomes its
//    bytes as <0xAB> tokens when byte_fallback is set, else unk_token (consecutive ones fused with fuse_unk), else
//    it is dropped (as the tokenizers library does when there is no unk_token).
//
// Merging a word of n symbols: every adjacent pair (a, b) with a merge rule has rank r(a, b) (its line in
// "merges"). Repeatedly merge the pair of lowest rank, the leftmost one on ties, until no pair has a rule.
// tokenize() does this in O(n log n) with a min-heap of (rank, position) and lazy deletion; tokenize_reference()
// is the plain O(n^2) loop, kept for tests. Results are cached per thread (no locks) for words <= 256 bytes.
//
// SentencePiece-style models have no pre-tokenizer, so a "word" is a whole text. If no merge rule (a, b) has b
// starting with the metaspace '▁' while a does not end with it (checked at load), no token can ever span a
// boundary "x|▁" (x != ▁); such a word is cut before each run of '▁' and the parts are merged (and cached) on their
// own: the same tokens, in O(part) instead of O(text) per part. The tests pin this to tokenize_reference().
#pragma once
#include <cstdint>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace rlhf::tok {

// One token of a word: its id and the word bytes [begin, end) it covers.
struct BpeToken {
  int32_t id;
  uint32_t begin, end;
};

class Bpe {
 public:
  // model: the "model" object of tokenizer.json; where: "path/tokenizer.json: model" for errors.
  Bpe(const nlohmann::json& model, const std::string& where);

  // Appends the tokens of `word` to out. byte_level: map every byte through the ByteLevel table first.
  void tokenize(std::string_view word, bool byte_level, std::vector<BpeToken>& out) const;
  // The same result by the obvious quadratic loop (tests pin tokenize() to it).
  void tokenize_reference(std::string_view word, bool byte_level, std::vector<BpeToken>& out) const;

  std::optional<int32_t> token_to_id(const std::string& token) const;
  // nullptr when id is not in the vocab.
  const std::string* id_to_token(int32_t id) const;
  // Largest id in the vocab (-1 when empty).
  int32_t max_id() const { return (int32_t)vocab_r_.size() - 1; }

 private:
  struct Symbol {
    int32_t id;
    uint32_t begin, end;
  };
  // Initial symbols of a word: one per char (per byte when byte_level), with byte fallback / unk handled.
  void initial_symbols(std::string_view word, bool byte_level, std::vector<Symbol>& out) const;
  void merge(std::vector<Symbol>& symbols, std::vector<BpeToken>& out) const;
  // initial symbols + merge, through the per-thread cache; tokens offset by `shift`
  void tokenize_cached(std::string_view word, bool byte_level, uint32_t shift, std::vector<BpeToken>& out) const;
  // rank and merged id of the pair (a, b), or nullptr
  const std::pair<int32_t, int32_t>* find_merge(int32_t a, int32_t b) const {
    auto it = merges_.find(((uint64_t)(uint32_t)a << 32) | (uint32_t)b);
    return it == merges_.end() ? nullptr : &it->second;
  }

  std::unordered_map<std::string, int32_t> vocab_;
  std::vector<std::string> vocab_r_;                                 // id -> token ("" for holes)
  std::unordered_map<uint64_t, std::pair<int32_t, int32_t>> merges_;  // (a << 32 | b) -> (rank, new id)
  std::optional<int32_t> unk_id_;
  std::string prefix_, suffix_;  // continuing_subword_prefix, end_of_word_suffix ("" when null)
  bool byte_fallback_ = false, fuse_unk_ = false, ignore_merges_ = false;
  bool cut_before_metaspace_ = false;  // see the note at the top
  int32_t byte_char_id_[256];      // vocab id of the ByteLevel char of each byte, -1 if absent
  int32_t byte_fallback_id_[256];  // vocab id of "<0xAB>", -1 if absent
  uint64_t cache_key_;             // identifies this model's per-thread cache
};

}  // namespace rlhf::tok
