// libFuzzer target: chat templates: qwen3's and llama3's (tools, system prompts, reasoning blocks) and the
// built-in chatml and llama2, on conversations from the input. Input: first byte picks the template and
// add_generation_prompt, the rest is a JSON list of messages (anything: wrong roles, missing content, nested
// values, tool calls). Checks: rlhf::Error or a rendering; with spans, each assistant span lies inside the text.
#include <cstdint>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "fuzz_util.h"
#include "tokenizer/chat_template.h"

namespace {

struct Chat {
  std::string tmpl;
  nlohmann::json vars;
};

const std::vector<Chat>& chats() {
  static std::vector<Chat> all = [] {
    std::vector<Chat> v;
    for (const char* name : {"qwen3", "llama3"}) {
      const std::string path = fuzz::test_data() + "/tokenizers/" + name + "/tokenizer_config.json";
      std::ifstream in(path);
      auto cfg = nlohmann::json::parse(in);
      v.push_back({cfg.at("chat_template").get<std::string>(), rlhf::tok::special_tokens_map(cfg, path)});
    }
    for (const char* name : {"chatml", "llama2"})
      v.push_back({rlhf::tok::builtin_chat_template(name), {{"bos_token", "<s>"}, {"eos_token", "</s>"}}});
    return v;
  }();
  return all;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const Chat& c = chats()[(data[0] >> 1) % chats().size()];
  auto messages = nlohmann::json::parse(data + 1, data + size, nullptr, false);
  if (messages.is_discarded()) return 0;
  fuzz::clear_error_or_abort("fuzz_chat_template", [&] {
    rlhf::tok::render_chat(c.tmpl, messages, data[0] & 1, c.vars);
  });
  fuzz::clear_error_or_abort("fuzz_chat_template", [&] {
    auto r = rlhf::tok::render_chat_with_spans(c.tmpl, messages, c.vars);
    for (auto [a, b] : r.assistant_spans)
      if (a > b || b > r.text.size()) std::abort();
  });
  return 0;
}
