// Decoders (tokenizer.json "decoder"): token strings -> text. Each step maps the list of token strings to a new
// list (tokenizers' decode_chain); the result is the concatenation. Supported: ByteLevel, Replace, ByteFallback,
// Fuse, Strip, Metaspace, Sequence. With no decoder the tokens are joined with " " (as the library does).
#pragma once
#include <functional>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

namespace rlhf::tok {

using Decoder = std::function<void(std::vector<std::string>&)>;

Decoder decoder_from_json(const nlohmann::json& j, const std::string& where);

}  // namespace rlhf::tok
