#include "tokenizer/normalized_string.h"

#include <algorithm>

#include "tokenizer/utf8.h"

namespace rlhf::tok {

NormalizedString::NormalizedString(std::string_view original, size_t begin, size_t end)
    : text_(original.substr(begin, end - begin)), original_(original), base_(begin) {}

static bool is_continuation(unsigned char c) { return (c & 0xC0) == 0x80; }

Span NormalizedString::byte_span(size_t i) const {
  if (!align_.empty()) return align_[i];
  size_t p = base_ + i, b = p, e = p + 1;
  while (b > 0 && is_continuation((unsigned char)original_[b])) --b;
  while (e < original_.size() && is_continuation((unsigned char)original_[e])) ++e;
  return {b, e};
}

Span NormalizedString::original_span(size_t i, size_t j) const {
  if (text_.empty()) return {base_, base_};
  if (i >= text_.size()) {
    Span last = byte_span(text_.size() - 1);
    return {last.end, last.end};
  }
  if (j <= i) {
    Span s = byte_span(i);
    return {s.begin, s.begin};
  }
  Span a = byte_span(i), b = byte_span(j - 1);
  return {a.begin, b.end};
}

size_t NormalizedString::original_begin() const {
  if (text_.empty()) return align_.empty() ? base_ : 0;
  return byte_span(0).begin;
}

NormalizedString NormalizedString::slice(size_t i, size_t j) const {
  NormalizedString out;
  out.text_ = text_.substr(i, j - i);
  out.original_ = original_;
  if (align_.empty()) {
    out.base_ = base_ + i;
  } else {
    out.align_.assign(align_.begin() + i, align_.begin() + j);
    if (out.align_.empty()) out.base_ = i < align_.size() ? align_[i].begin : (align_.empty() ? 0 : align_.back().end);
  }
  return out;
}

NormalizedString::Builder NormalizedString::builder() const {
  Builder b;
  b.text.reserve(text_.size() + 8);
  b.align.reserve(text_.size() + 8);
  return b;
}

void NormalizedString::assign(Builder&& b) {
  if (b.text.empty()) base_ = original_begin();
  text_ = std::move(b.text);
  align_ = std::move(b.align);
}

void NormalizedString::copy_to(Builder& b, size_t i, size_t j) const {
  b.text.append(text_, i, j - i);
  if (!align_.empty()) {
    b.align.insert(b.align.end(), align_.begin() + i, align_.begin() + j);
    return;
  }
  // Verbatim: every byte of a char maps to the whole char [start, start + len).
  size_t k = i;
  while (k < j) {
    Span s = byte_span(k);
    size_t stop = std::min(j, k + (s.end - (base_ + k)));
    b.align.insert(b.align.end(), stop - k, s);
    k = stop;
  }
}

void NormalizedString::prepend(std::string_view s) {
  if (text_.empty() || s.empty()) return;
  Builder b = builder();
  b.push(s, byte_span(0));
  copy_to(b, 0, text_.size());
  assign(std::move(b));
}

void NormalizedString::replace_all(std::string_view from, std::string_view to) {
  if (from.empty() || text_.find(from) == std::string::npos) return;
  Builder b = builder();
  size_t i = 0, k;
  while ((k = text_.find(from, i)) != std::string::npos) {
    copy_to(b, i, k);
    if (!to.empty()) b.push(to, original_span(k, k + from.size()));
    i = k + from.size();
  }
  copy_to(b, i, text_.size());
  assign(std::move(b));
}

}  // namespace rlhf::tok
