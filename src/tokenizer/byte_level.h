// GPT-2's byte <-> unicode table (bytes_to_unicode in openai/gpt-2 encoder.py, BYTES_CHAR in tokenizers):
// the 188 printable bytes ! .. ~, ¡ .. ¬, ® .. ÿ map to themselves; the other 68 bytes b (in increasing order)
// map to U+0100 + n, n = 0, 1, ... So ' ' (0x20) -> 'Ġ' (U+0120), '\n' -> 'Ċ' (U+010A).
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace rlhf::tok {

struct ByteLevelTable {
  std::array<uint32_t, 256> byte_to_cp;
  std::array<std::string, 256> byte_to_utf8;  // UTF-8 of byte_to_cp[b]
  // cp -> byte for cp < 0x144 (all mapped code points are below U+0144); -1 when cp is not a mapped char
  std::array<int, 0x144> cp_to_byte;
};

const ByteLevelTable& byte_level_table();

// Inverse map of one token string: appends the bytes of `token` if every char is a byte-level char, otherwise
// the token's own UTF-8 bytes (tokenizers' ByteLevel decoder does the same per token).
void byte_level_decode_token(std::string_view token, std::string& out);

}  // namespace rlhf::tok
