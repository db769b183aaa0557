// libFuzzer target: loading tokenizer.json (tokenizer/tokenizer.h): models (BPE, WordPiece, Unigram, WordLevel),
// normalizers, pre-tokenizers, decoders, post-processors and added tokens as a user's file may hold them.
// Input: the file's bytes. A loaded tokenizer must then encode and decode a few texts without crashing, with
// ids inside its vocab. Seeds: tests/fuzz/make_seeds.py cuts the fixture tokenizers down to a few hundred tokens.
#include <cstdint>
#include <string>

#include "fuzz_util.h"
#include "tokenizer/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& path = fuzz::write_scratch("fuzz_tokenizer_json", ".json", data, size);
  fuzz::clear_error_or_abort("fuzz_tokenizer_json", [&] {
    auto tok = rlhf::tok::Tokenizer::from_files(path, "");
    for (const char* text : {"", "Hello, world! 123", "  a\tb\n\nc  ", "caf\xc3\xa9 \xe4\xbd\xa0\xe5\xa5\xbd \xf0\x9f\x98\x80",
                             "<|endoftext|><s></s>[UNK]"}) {
      for (bool special : {false, true}) {
        auto ids = tok.encode(text, special);
        for (int32_t id : ids)
          if (id < 0 || id >= tok.vocab_size()) {
            std::fprintf(stderr, "fuzz_tokenizer_json: id %d outside the vocab of %lld\n", id,
                         static_cast<long long>(tok.vocab_size()));
            std::abort();
          }
        tok.decode(ids, false);
        tok.decode(ids, true);
      }
    }
  });
  return 0;
}
