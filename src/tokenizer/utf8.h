// UTF-8 helpers shared by the tokenizer pipeline.
//
// Invalid input policy (the tokenizers library never sees invalid UTF-8: Python strings cannot hold it):
// every maximal ill-formed subsequence (Unicode 15, §3.9 "U+FFFD substitution of maximal subparts", the same
// rule as Python's bytes.decode("utf-8", "replace") and Rust's String::from_utf8_lossy) becomes one U+FFFD
// before tokenization. Offsets still point into the caller's bytes: the U+FFFD covers the bytes it replaced.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace rlhf::tok {

// Length in bytes of the well-formed UTF-8 sequence starting at s[i], or 0 if s[i..] is ill-formed there.
size_t utf8_valid_len(std::string_view s, size_t i);

// Length of the UTF-8 sequence whose lead byte is c (1 for ASCII and for stray bytes). Assumes valid input.
inline size_t utf8_len(unsigned char c) {
  return c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
}

// Decodes the code point at s[i] (s valid UTF-8) and advances i past it.
uint32_t utf8_next(std::string_view s, size_t& i);

// Appends the UTF-8 encoding of cp.
void utf8_append(std::string& out, uint32_t cp);

bool utf8_is_valid(std::string_view s);

// Replaces each maximal ill-formed subsequence with U+FFFD. to_input[k] is the input byte offset of output byte k
// (size out.size() + 1, last entry = s.size()), so output offsets map back to the caller's bytes.
std::string utf8_sanitize(std::string_view s, std::vector<size_t>& to_input);

// Unicode White_Space (Rust's char::is_whitespace).
bool is_unicode_whitespace(uint32_t cp);

}  // namespace rlhf::tok
