// Post-processors (tokenizer.json "post_processor"): the last step of encode.
//  - TemplateProcessing: with add_special_tokens, the "single" template, e.g. [<s>] $A, puts the special tokens'
//    ids around the sequence (offsets (0, 0)); without it, nothing.
//  - ByteLevel: with trim_offsets, each token's span loses its leading / trailing spaces (the 'Ġ' chars of the
//    token), keeping one leading space on the first token when add_prefix_space; ids never change.
//  - Sequence: each in turn.
#pragma once
#include <functional>
#include <nlohmann/json_fwd.hpp>
#include <string>

#include "tokenizer/encoding.h"

namespace rlhf::tok {

using PostProcessor = std::function<void(Encoding&, bool add_special_tokens)>;

// id_to_token: the vocab string of an id (for ByteLevel's offset trimming).
PostProcessor post_processor_from_json(const nlohmann::json& j, const std::string& where,
                                       std::function<std::string(int32_t)> id_to_token);

}  // namespace rlhf::tok
