// Input files of `rlhf label serve`: candidates to import, or prompts to generate candidates for. JSONL, one object a
// line, blank lines ignored; errors name the file, the line and the field.
#pragma once
#include <string>
#include <vector>

#include "label/store.h"

namespace rlhf::label {

// {"prompt": str, "responses": [str, ...]} per line; at least 2 responses (a ranking of one says nothing).
std::vector<NewItem> read_candidates_jsonl(const std::string& path);

// {"prompt": str} per line.
std::vector<std::string> read_prompts_jsonl(const std::string& path);

}  // namespace rlhf::label
