#include "lora/options.h"

#include <cmath>
#include <sstream>

#include "common/error.h"

namespace rlhf::lora {

namespace {
const char* kAllLinear = "all-linear";

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    const auto b = item.find_first_not_of(" \t"), e = item.find_last_not_of(" \t");
    if (b != std::string::npos) out.push_back(item.substr(b, e - b + 1));
  }
  return out;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}
}  // namespace

void LoraOptions::validate() const {
  RLHF_CHECK(r >= 0, "--lora-r must be >= 0 (0: no LoRA), got ", r);
  if (!enabled()) return;
  RLHF_CHECK(alpha > 0, "--lora-alpha must be > 0, got ", alpha);
  RLHF_CHECK(dropout >= 0 && dropout < 1, "--lora-dropout must be in [0, 1), got ", dropout);
  const auto names = split_commas(targets);
  RLHF_CHECK(targets.empty() || !names.empty(), "--lora-targets: \"", targets,
             "\" names no module (hint: q_proj,v_proj, or all-linear)");
  for (const auto& n : names) {
    RLHF_CHECK(n != kAllLinear || names.size() == 1, "--lora-targets: all-linear cannot be combined with other names");
    RLHF_CHECK(n.find_first_of(" /\\") == std::string::npos, "--lora-targets: \"", n,
               "\" is not a module name (hint: q_proj,k_proj,v_proj,o_proj or c_attn,c_proj,c_fc)");
  }
}

nlohmann::json LoraOptions::to_json() const {
  return {{"r", r}, {"alpha", alpha}, {"dropout", dropout}, {"targets", targets}, {"use_rslora", use_rslora}};
}

std::vector<std::string> LoraOptions::target_names(const std::string& family) const {
  if (!targets.empty()) return split_commas(targets);
  // PEFT's TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING for the four families.
  if (family == "gpt2") return {"c_attn"};
  if (family == "llama" || family == "qwen2" || family == "qwen3") return {"q_proj", "v_proj"};
  fail("--lora-targets: no default for model family \"", family, "\" (name the modules, or use all-linear)");
}

double LoraOptions::scaling() const {
  return use_rslora ? alpha / std::sqrt(static_cast<double>(r)) : alpha / static_cast<double>(r);
}

bool target_matches(const std::vector<std::string>& names, const std::string& module) {
  for (const auto& n : names)
    if (n == kAllLinear || n == module || ends_with(module, "." + n)) return true;
  return false;
}

}  // namespace rlhf::lora
