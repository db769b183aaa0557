// Normalizers (tokenizer.json "normalizer"): rewrite the text before pre-tokenization, keeping the map back to the
// original bytes. Supported types: NFC, NFD, NFKC, NFKD (utf8proc), Lowercase, Prepend, Replace (String or Regex
// pattern), Strip, Sequence. Any other type is an error at load time.
#pragma once
#include <functional>
#include <nlohmann/json_fwd.hpp>
#include <string>

#include "tokenizer/normalized_string.h"

namespace rlhf::tok {

using Normalizer = std::function<void(NormalizedString&)>;

// `where` is the JSON path used in error messages. A null JSON value gives an empty (no-op) Normalizer.
Normalizer normalizer_from_json(const nlohmann::json& j, const std::string& where);

}  // namespace rlhf::tok
