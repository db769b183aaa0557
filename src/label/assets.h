// The page's files (src/label/assets/*), embedded at build time by cmake/embed_assets.cmake: file name -> bytes.
#pragma once
#include <map>
#include <string>

namespace rlhf::label {
const std::map<std::string, std::string>& embedded_assets();
}  // namespace rlhf::label
