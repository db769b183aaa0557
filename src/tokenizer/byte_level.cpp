#include "tokenizer/byte_level.h"

#include "tokenizer/utf8.h"

namespace rlhf::tok {

const ByteLevelTable& byte_level_table() {
  static const ByteLevelTable table = [] {
    ByteLevelTable t;
    t.cp_to_byte.fill(-1);
    uint32_t n = 0;
    for (int b = 0; b < 256; ++b) {
      bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      t.byte_to_cp[b] = printable ? (uint32_t)b : 0x100 + n++;
      t.cp_to_byte[t.byte_to_cp[b]] = b;
      utf8_append(t.byte_to_utf8[b], t.byte_to_cp[b]);
    }
    return t;
  }();
  return table;
}

void byte_level_decode_token(std::string_view token, std::string& out) {
  const ByteLevelTable& t = byte_level_table();
  size_t start = out.size();
  size_t i = 0;
  while (i < token.size()) {
    uint32_t cp = utf8_next(token, i);
    if (cp >= t.cp_to_byte.size() || t.cp_to_byte[cp] < 0) {
      out.resize(start);
      out.append(token);
      return;
    }
    out += (char)t.cp_to_byte[cp];
  }
}

}  // namespace rlhf::tok
