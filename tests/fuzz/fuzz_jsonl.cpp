// libFuzzer target: every JSONL dataset reader of the trainers. Input: first byte = which reader and options,
// the rest = the file.
//   byte & 3:  0 sft (load_sft_data), 1 preference pairs / rankings (load_preference_data),
//              2 scored {"prompt","response"} (load_scored_data), 3 ppo prompts (read_prompts)
//   byte & 4:  chat formatting (ChatML) instead of plain text
//   byte & 24: overlong policy truncate / drop / error / truncate-left; byte & 32: skip bad lines
// Checks: errors are rlhf::Error; every example fits max_len, has a loss mask of its length (or none) with at
// least one 1 where the loss needs one, and ids inside the vocab; preference pairs index existing responses.
#include <cstdint>
#include <string>

#include "fuzz_util.h"
#include "rlhf/examples.h"
#include "rlhf/prompts.h"

namespace {

// One tokenizer (GPT-2's, loaded once: the larger fixtures take seconds to load under ASan), plain or with the
// chat formatting (ChatML, the Formatter's template for tokenizers without one).
const rlhf::Formatter& formatter(bool chat) {
  static const rlhf::tok::Tokenizer tok = rlhf::tok::Tokenizer::from_dir(fuzz::test_data() + "/tokenizers/gpt2");
  static const rlhf::Formatter plain(tok, {});
  static const rlhf::Formatter chatty(tok, rlhf::FormatOptions{true, ""});
  return chat ? chatty : plain;
}

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz_jsonl: check failed: %s\n", what);
    std::abort();
  }
}

void check_seq(const rlhf::train::TokenSeq& s, const rlhf::Formatter& f, int64_t max_len) {
  check(!s.ids.empty() && static_cast<int64_t>(s.ids.size()) <= max_len, "1 <= length <= max_len");
  check(s.loss_mask.empty() || s.loss_mask.size() == s.ids.size(), "one mask entry per token");
  for (int64_t id : s.ids) check(id >= 0 && id < f.tokenizer().vocab_size(), "ids inside the vocab");
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  formatter(false);
  formatter(true);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t mode = data[0];
  const rlhf::Formatter& f = formatter(mode & 4);
  rlhf::DataOptions o;
  o.max_len = 64;
  static const char* kPolicies[] = {"truncate", "drop", "error", "truncate-left"};
  o.overlong = kPolicies[mode >> 3 & 3];
  o.skip_bad_lines = mode & 32;
  const std::string& path = fuzz::write_scratch("fuzz_jsonl", ".jsonl", data + 1, size - 1);
  fuzz::clear_error_or_abort("fuzz_jsonl", [&] {
    switch (mode & 3) {
      case 0:
        for (const auto& s : rlhf::load_sft_data(path, f, o)) check_seq(s, f, o.max_len);
        break;
      case 1:
        for (const auto& g : rlhf::load_preference_data(path, f, o)) {
          check(g.responses.size() >= 2 && !g.pairs.empty(), "a group has >= 2 responses and a pair");
          check(g.margins.size() == g.pairs.size(), "one margin per pair");
          for (const auto& s : g.responses) check_seq(s, f, o.max_len);
          for (auto [w, l] : g.pairs)
            check(w != l && w >= 0 && l >= 0 && w < (int)g.responses.size() && l < (int)g.responses.size(),
                  "pairs index two different responses");
        }
        break;
      case 2:
        for (const auto& s : rlhf::load_scored_data(path, f, o)) check_seq(s, f, o.max_len);
        break;
      default:
        for (const auto& p : rlhf::read_prompts(path, f, 32))
          check(!p.ids.empty() && p.ids.size() <= 32, "prompts keep 1..32 tokens");
    }
  });
  return 0;
}
