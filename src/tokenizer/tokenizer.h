// Tokenizer: a Hugging Face tokenizer.json (+ tokenizer_config.json) that encodes and decodes exactly as the
// tokenizers library does. No torch.
//
// encode(text) runs the library's pipeline:
//   text --added tokens (normalized=false)--> pieces --normalizer--> --added tokens (normalized=true)-->
//   --pre-tokenizer--> words --BPE--> ids --post-processor (add_special_tokens)--> Encoding
// decode(ids) maps ids to token strings (dropping special ones when skip_special_tokens; dropping ids that are in
// neither the vocab nor the added tokens, as the library does) and runs the decoder.
//
// Invalid UTF-8 input never throws: each maximal ill-formed subsequence is read as U+FFFD (see utf8.h) and its
// offsets cover the replaced bytes. Copies are cheap (shared immutable state); all const methods may be called
// from many threads at once (the BPE word cache is per thread).
#pragma once
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/encoding.h"

namespace rlhf::tok {

class Tokenizer {
 public:
  // dir/tokenizer.json, plus dir/tokenizer_config.json when present.
  static Tokenizer from_dir(const std::string& dir);
  // tokenizer_config_json may be "" (no config).
  static Tokenizer from_files(const std::string& tokenizer_json, const std::string& tokenizer_config_json);

  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens = false) const;
  Encoding encode_with_offsets(std::string_view text, bool add_special_tokens = false) const;
  // One encode per text, on `threads` threads (0: all cores).
  std::vector<std::vector<int32_t>> encode_batch(const std::vector<std::string>& texts,
                                                 bool add_special_tokens = false, int threads = 0) const;
  std::string decode(const std::vector<int32_t>& ids, bool skip_special_tokens = false) const;

  // Token string of an id (added tokens first, then the model vocab). Throws for an unknown id.
  std::string id_to_token(int32_t id) const;
  std::optional<int32_t> token_to_id(const std::string& tok) const;
  // Max id + 1 over the vocab and the added tokens.
  int32_t vocab_size() const;

  // From tokenizer_config.json (bos_token etc.: a string or an {"content": ...} object); nullopt when absent.
  std::optional<int32_t> bos_id() const;
  std::optional<int32_t> eos_id() const;
  std::optional<int32_t> pad_id() const;
  std::optional<int32_t> unk_id() const;
  std::string bos_token() const;  // "" when absent
  std::string eos_token() const;
  std::string pad_token() const;
  // An added token marked "special".
  bool is_special(int32_t id) const;
  // tokenizer_config.json "chat_template": a string (name "default") or a list [{name, template}]; "" if none.
  std::string chat_template(const std::string& name = "default") const;
  // The raw tokenizer_config.json (an empty object when there is none).
  const nlohmann::json& config() const;

  struct State;

 private:
  explicit Tokenizer(std::shared_ptr<const State> s) : s_(std::move(s)) {}
  void encode_into(std::string_view text, bool add_special_tokens, Encoding& out) const;
  std::shared_ptr<const State> s_;
};

}  // namespace rlhf::tok
