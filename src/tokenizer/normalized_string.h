// NormalizedString: a piece of text on its way through the pipeline, with the map back to the caller's bytes.
//
// Every byte k of `text` knows the original byte range [begin, end) of the character that produced it
// (as the tokenizers library's `alignments`, in bytes). Pieces that are still verbatim slices of the original keep
// no table: byte k then belongs to the original character that contains byte `base + k`.
// A token covering text bytes [i, j) maps to the original range (align[i].begin, align[j-1].end).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace rlhf::tok {

struct Span {
  size_t begin = 0, end = 0;
};

class NormalizedString {
 public:
  NormalizedString() = default;
  // The slice [begin, end) of `original` (which must outlive this object), verbatim.
  NormalizedString(std::string_view original, size_t begin, size_t end);

  const std::string& text() const { return text_; }
  bool empty() const { return text_.empty(); }
  size_t size() const { return text_.size(); }
  bool is_verbatim() const { return align_.empty(); }

  // Original byte range of text bytes [i, j), j > i. For i == j: the empty range at the start of byte i's char.
  Span original_span(size_t i, size_t j) const;
  // Original offset where this piece starts (tokenizers' offsets_original().0).
  size_t original_begin() const;

  // Sub-piece of text bytes [i, j); i and j on character boundaries.
  NormalizedString slice(size_t i, size_t j) const;

  // Builder for transforms: start empty, push bytes with their original span, then replace *this.
  struct Builder {
    std::string text;
    std::vector<Span> align;
    void push(std::string_view bytes, Span orig) {
      text.append(bytes);
      if (bytes.size() == 1) align.push_back(orig);
      else align.insert(align.end(), bytes.size(), orig);
    }
  };
  // Appends text bytes [i, j) of *this, unchanged, with their own spans.
  void copy_to(Builder& b, size_t i, size_t j) const;
  Builder builder() const;
  // Span of byte i as a Builder entry (the original character it came from).
  Span byte_span(size_t i) const;
  void assign(Builder&& b);

  // Common edits. prepend: the new bytes map to the first character (no-op on empty text).
  void prepend(std::string_view s);
  // Every occurrence of `from` (non-empty) becomes `to`; the new bytes map to the span of what they replaced.
  void replace_all(std::string_view from, std::string_view to);

 private:
  std::string text_;
  std::vector<Span> align_;   // empty: verbatim slice of original_ at base_
  std::string_view original_;
  size_t base_ = 0;
};

}  // namespace rlhf::tok
