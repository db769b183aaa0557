#include "tokenizer/utf8.h"

namespace rlhf::tok {

// Well-formed UTF-8 byte sequences (Unicode 15, Table 3-7):
//   00..7F | C2..DF 80..BF | E0 A0..BF 80..BF | E1..EC 80..BF 80..BF | ED 80..9F 80..BF
//   | EE..EF 80..BF 80..BF | F0 90..BF 80..BF 80..BF | F1..F3 80..BF 80..BF 80..BF | F4 80..8F 80..BF 80..BF
// Returns how many leading bytes at s[i] form a well-formed sequence (n), or 0 with `*prefix` set to the length of
// the maximal well-formed prefix (at least 1: the bytes one U+FFFD replaces).
static size_t check_at(std::string_view s, size_t i, size_t* prefix) {
  auto b = [&](size_t k) -> int { return i + k < s.size() ? (unsigned char)s[i + k] : -1; };
  int c0 = b(0);
  *prefix = 1;
  if (c0 < 0x80) return 1;
  size_t need;
  int lo = 0x80, hi = 0xBF;  // range of the second byte
  if (c0 >= 0xC2 && c0 <= 0xDF) need = 2;
  else if (c0 == 0xE0) need = 3, lo = 0xA0;
  else if (c0 >= 0xE1 && c0 <= 0xEC) need = 3;
  else if (c0 == 0xED) need = 3, hi = 0x9F;
  else if (c0 >= 0xEE && c0 <= 0xEF) need = 3;
  else if (c0 == 0xF0) need = 4, lo = 0x90;
  else if (c0 >= 0xF1 && c0 <= 0xF3) need = 4;
  else if (c0 == 0xF4) need = 4, hi = 0x8F;
  else return 0;
  for (size_t k = 1; k < need; ++k) {
    int c = b(k);
    int l = k == 1 ? lo : 0x80, h = k == 1 ? hi : 0xBF;
    if (c < l || c > h) return 0;
    *prefix = k + 1;
  }
  return need;
}

size_t utf8_valid_len(std::string_view s, size_t i) {
  size_t prefix;
  return check_at(s, i, &prefix);
}

uint32_t utf8_next(std::string_view s, size_t& i) {
  unsigned char c = s[i];
  if (c < 0x80) {
    ++i;
    return c;
  }
  size_t n = utf8_len(c);
  uint32_t cp = c & (n == 2 ? 0x1F : n == 3 ? 0x0F : 0x07);
  for (size_t k = 1; k < n && i + k < s.size(); ++k) cp = (cp << 6) | ((unsigned char)s[i + k] & 0x3F);
  i += n;
  return cp;
}

void utf8_append(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += (char)cp;
  } else if (cp < 0x800) {
    out += (char)(0xC0 | (cp >> 6));
    out += (char)(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += (char)(0xE0 | (cp >> 12));
    out += (char)(0x80 | ((cp >> 6) & 0x3F));
    out += (char)(0x80 | (cp & 0x3F));
  } else {
    out += (char)(0xF0 | (cp >> 18));
    out += (char)(0x80 | ((cp >> 12) & 0x3F));
    out += (char)(0x80 | ((cp >> 6) & 0x3F));
    out += (char)(0x80 | (cp & 0x3F));
  }
}

bool utf8_is_valid(std::string_view s) {
  size_t i = 0, prefix;
  while (i < s.size()) {
    if ((unsigned char)s[i] < 0x80) {
      ++i;
      continue;
    }
    size_t n = check_at(s, i, &prefix);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::string utf8_sanitize(std::string_view s, std::vector<size_t>& to_input) {
  std::string out;
  out.reserve(s.size() + 8);
  to_input.clear();
  to_input.reserve(s.size() + 9);
  size_t i = 0, prefix;
  while (i < s.size()) {
    size_t n = check_at(s, i, &prefix);
    if (n > 0) {
      for (size_t k = 0; k < n; ++k) out += s[i + k], to_input.push_back(i + k);
      i += n;
    } else {
      // U+FFFD = EF BF BD: its three bytes all point at the first replaced byte.
      out += "\xEF\xBF\xBD";
      to_input.insert(to_input.end(), 3, i);
      i += prefix;
    }
  }
  to_input.push_back(s.size());
  return out;
}

bool is_unicode_whitespace(uint32_t cp) {
  // PropList.txt White_Space.
  return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F ||
         cp == 0x3000;
}

}  // namespace rlhf::tok
