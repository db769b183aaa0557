// Regex: a PCRE2 pattern compiled with UTF + UCP (\p{L}, \s, \w are Unicode-aware, as Oniguruma and Rust's regex
// crate are in the tokenizers library) and JIT-compiled. Thread-safe: match data and the JIT stack are per thread.
#pragma once
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

namespace rlhf::tok {

class Regex {
 public:
  // `where` names the JSON field for error messages (e.g. "tokenizer.json: pre_tokenizer.pretokenizers[0].pattern").
  Regex(const std::string& pattern, const std::string& where);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // First match in text starting at byte `from` (a character boundary). Returns false when there is none;
  // otherwise [*begin, *end). Text must be valid UTF-8 (the pipeline sanitizes it first).
  bool find(std::string_view text, size_t from, size_t* begin, size_t* end) const;

  // Escapes a literal string for use as a pattern.
  static std::string escape(std::string_view literal);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string where_;
};

}  // namespace rlhf::tok
