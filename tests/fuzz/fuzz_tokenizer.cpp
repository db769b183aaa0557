// libFuzzer target for encode / decode. Input: first byte picks the tokenizer, the rest is the text (any bytes).
// Checks: no crash or hang; offsets lie inside the input and the ids inside the vocab; decode never throws; and
// for the byte-level tokenizers without a normalizer (GPT-2, Llama 3) decode(encode(s)) == s on valid UTF-8.
// Build and run: scripts/sanitize.sh (ASan + UBSan, seeds from tests/fuzz/make_seeds.py).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "fuzz_util.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

namespace {

struct Case {
  rlhf::tok::Tokenizer tok;
  bool lossless;  // byte-level, no normalizer
};

std::vector<Case>& cases() {
  static std::vector<Case> all = [] {
    const std::string root = fuzz::test_data() + "/tokenizers";
    std::vector<Case> v;
    v.push_back({rlhf::tok::Tokenizer::from_dir(root + "/gpt2"), true});
    v.push_back({rlhf::tok::Tokenizer::from_dir(root + "/llama3"), true});
    v.push_back({rlhf::tok::Tokenizer::from_dir(root + "/qwen3"), false});
    v.push_back({rlhf::tok::Tokenizer::from_dir(root + "/llama2"), false});
    return v;
  }();
  return all;
}

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz_tokenizer: check failed: %s\n", what);
    std::abort();
  }
}

}  // namespace

// Loading four tokenizers takes seconds under ASan: done before the first input, outside its timeout.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  cases();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  Case& c = cases()[data[0] % cases().size()];
  std::string text((const char*)data + 1, size - 1);
  for (bool special : {false, true}) {
    auto enc = c.tok.encode_with_offsets(text, special);
    check(enc.ids.size() == enc.offsets.size(), "one offset per id");
    for (size_t k = 0; k < enc.ids.size(); ++k) {
      check(enc.ids[k] >= 0 && enc.ids[k] < c.tok.vocab_size(), "id inside the vocab");
      check(enc.offsets[k].first <= enc.offsets[k].second && enc.offsets[k].second <= text.size(),
            "offsets inside the input");
    }
    check(c.tok.encode(text, special) == enc.ids, "encode == encode_with_offsets");
    std::string back = c.tok.decode(enc.ids, false);
    c.tok.decode(enc.ids, true);
    if (c.lossless && !special && rlhf::tok::utf8_is_valid(text)) check(back == text, "decode(encode(s)) == s");
  }
  return 0;
}
