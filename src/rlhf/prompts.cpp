#include "rlhf/prompts.h"

#include "common/error.h"
#include "train/jsonl.h"

namespace rlhf {

std::vector<Prompt> read_prompts(const std::string& path, const Formatter& formatter, int64_t max_prompt_tokens) {
  std::vector<Prompt> out;
  train::read_jsonl(path, {}, [&](const nlohmann::json& j, int64_t line) {
    Prompt p;
    p.row = j;
    p.source = path + ":" + std::to_string(line);
    if (train::has_field(j, "messages")) {
      const auto& m = train::field(j, "messages", "a list of {\"role\", \"content\"} messages");
      RLHF_CHECK(m.is_array() && !m.empty(), "field \"messages\": expected a non-empty list of messages");
      p.prompt = m;
    } else {
      p.prompt = train::field(j, "prompt", "a string (or use \"messages\")");
      RLHF_CHECK(p.prompt.is_string() || p.prompt.is_array(),
                 "field \"prompt\": expected a string or a list of messages, got ", p.prompt.dump());
    }
    p.ids = formatter.encode_prompt(p.prompt);
    RLHF_CHECK(!p.ids.empty(), "the prompt encodes to no tokens");
    if (max_prompt_tokens > 0 && static_cast<int64_t>(p.ids.size()) > max_prompt_tokens)
      p.ids.erase(p.ids.begin(), p.ids.end() - max_prompt_tokens);
    out.push_back(std::move(p));
  });
  return out;
}

}  // namespace rlhf
