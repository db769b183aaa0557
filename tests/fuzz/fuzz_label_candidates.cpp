// libFuzzer target: the input files of `rlhf label serve` (label/candidates.h): candidates to import
// ({"prompt", "responses"}) or prompts to generate for. Input: first byte picks the reader, the rest is the file.
// Checks: errors are rlhf::Error; every imported item has a prompt and >= 2 responses.
#include <cstdint>

#include "fuzz_util.h"
#include "label/candidates.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string& path = fuzz::write_scratch("fuzz_label_candidates", ".jsonl", data + 1, size - 1);
  fuzz::clear_error_or_abort("fuzz_label_candidates", [&] {
    if (data[0] & 1) {
      rlhf::label::read_prompts_jsonl(path);
      return;
    }
    for (const auto& item : rlhf::label::read_candidates_jsonl(path))
      if (item.responses.size() < 2) {
        std::fprintf(stderr, "fuzz_label_candidates: an item with %zu responses\n", item.responses.size());
        std::abort();
      }
  });
  return 0;
}
