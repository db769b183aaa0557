// Pre-tokenizers (tokenizer.json "pre_tokenizer"): cut a normalized piece into the words the model sees.
// Supported: Split (String or Regex pattern; behaviors Removed, Isolated, MergedWithPrevious, MergedWithNext,
// Contiguous; invert), ByteLevel (add_prefix_space, use_regex), Metaspace (replacement, prepend_scheme, split),
// Digits, Whitespace, WhitespaceSplit, Sequence. Others are an error at load time.
//
// ByteLevel maps every byte of a word to a printable char (byte_level.h). Here the words stay raw bytes and the
// model applies the table itself (PreTokenizer::byte_level), which is equivalent because ByteLevel must be the last
// step: nothing after it reads the mapped text (checked at load).
#pragma once
#include <functional>
#include <nlohmann/json_fwd.hpp>
#include <string>

#include "tokenizer/normalized_string.h"

namespace rlhf::tok {

using PieceSink = std::function<void(NormalizedString&&)>;

struct PreTokenizer {
  // Cuts `piece` and hands every non-empty word to `sink`, in order. Empty when the tokenizer has none.
  std::function<void(NormalizedString&&, const PieceSink&)> run;
  bool byte_level = false;
};

PreTokenizer pre_tokenizer_from_json(const nlohmann::json& j, const std::string& where);

}  // namespace rlhf::tok
