// Chat template rendering and assistant spans (see chat_template.h for the span rule).
#include "tokenizer/chat_template.h"

#include <algorithm>

#include "common/error.h"

namespace rlhf::tok {
namespace {

const char* kTemplateName = "chat template";

// One message as transformers hands it to the template (see chat_template.h).
jinja::Json normalize_message(const jinja::Json& m, size_t i) {
  RLHF_CHECK(m.is_object(), "chat message ", i, " must be a JSON object {\"role\", \"content\"}, got ", m.dump());
  jinja::Json out = jinja::Json::object();
  for (auto it = m.begin(); it != m.end(); ++it)
    if (!it.value().is_null()) out[it.key()] = it.value();
  const jinja::Json* reasoning = nullptr;
  for (const char* key : {"reasoning_content", "thinking", "reasoning"})
    if (out.contains(key)) {
      reasoning = &out[key];
      break;
    }
  if (!reasoning) return out;
  // {"thinking": r, **message, "reasoning_content": r}
  jinja::Json r = *reasoning;
  jinja::Json aliased = jinja::Json::object();
  aliased["thinking"] = r;
  for (auto it = out.begin(); it != out.end(); ++it) aliased[it.key()] = it.value();
  aliased["reasoning_content"] = r;
  return aliased;
}

jinja::Json make_context(const jinja::Json& messages, bool add_generation_prompt, const jinja::Json& vars) {
  RLHF_CHECK(messages.is_array(), "chat messages must be a JSON array of {\"role\", \"content\"} objects, got ",
             messages.type_name());
  RLHF_CHECK(vars.is_object(), "chat template variables must be a JSON object, got ", vars.type_name());
  jinja::Json ctx = vars;
  jinja::Json msgs = jinja::Json::array();
  for (size_t i = 0; i < messages.size(); ++i) msgs.push_back(normalize_message(messages[i], i));
  ctx["messages"] = std::move(msgs);
  if (!ctx.contains("tools")) ctx["tools"] = nullptr;
  if (!ctx.contains("documents")) ctx["documents"] = nullptr;
  ctx["add_generation_prompt"] = add_generation_prompt;
  return ctx;
}

jinja::Json to_ordered(const nlohmann::json& j) { return jinja::Json::parse(j.dump()); }

std::string snippet(const std::string& s, size_t at) {
  size_t b = at > 30 ? at - 30 : 0;
  return jinja::Json(s.substr(b, 60)).dump();
}

}  // namespace

std::string render_chat(const std::string& tmpl, const jinja::Json& messages, bool add_generation_prompt,
                        const jinja::Json& vars) {
  return jinja::Template(tmpl, kTemplateName).render(make_context(messages, add_generation_prompt, vars));
}

std::string render_chat(const std::string& tmpl, const nlohmann::json& messages, bool add_generation_prompt,
                        const nlohmann::json& vars) {
  return render_chat(tmpl, to_ordered(messages), add_generation_prompt, to_ordered(vars));
}

ChatRender render_chat_with_spans(const std::string& tmpl, const jinja::Json& messages, const jinja::Json& vars) {
  jinja::Template t(tmpl, kTemplateName);
  ChatRender r;
  r.text = t.render(make_context(messages, false, vars));

  std::vector<std::string> markers = {"<|im_end|>",    "<|eot_id|>",      "<|eom_id|>", "<|end|>",
                                      "<end_of_turn>", "<|endoftext|>",   "<|end_of_text|>", "</s>"};
  if (vars.contains("eos_token") && vars["eos_token"].is_string() && !vars["eos_token"].get<std::string>().empty())
    markers.insert(markers.begin(), vars["eos_token"].get<std::string>());

  for (size_t i = 0; i < messages.size(); ++i) {
    const auto& m = messages[i];
    RLHF_CHECK(m.is_object() && m.contains("role") && m["role"].is_string(), "chat message ", i,
               " has no string \"role\": ", m.dump());
    if (m["role"] != "assistant") continue;
    jinja::Json prefix_msgs = jinja::Json::array();
    for (size_t k = 0; k < i; ++k) prefix_msgs.push_back(messages[k]);
    std::string prefix = t.render(make_context(prefix_msgs, true, vars));
    if (r.text.compare(0, prefix.size(), prefix) != 0) {
      size_t d = 0;
      while (d < prefix.size() && d < r.text.size() && prefix[d] == r.text[d]) ++d;
      fail("chat template is not prefix-stable at assistant message ", i,
           ": messages[0..", i, ") rendered with the generation prompt is not a prefix of the whole conversation"
           " (first difference at byte ", d, ": prefix has ", snippet(prefix, d), ", conversation has ",
           snippet(r.text, d), "). Hint: train on one sample per assistant turn (messages cut after that turn).");
    }
    size_t start = prefix.size();
    size_t end = std::string::npos;
    for (const auto& mk : markers) {
      size_t p = r.text.find(mk, start);
      if (p != std::string::npos && (end == std::string::npos || p + mk.size() < end)) end = p + mk.size();
    }
    if (end == std::string::npos)
      fail("chat template: no end-of-turn marker after assistant message ", i, " (looked for eos_token and ",
           "<|im_end|>, <|eot_id|>, <|end|>, <end_of_turn>, </s>, ...; text after the turn start: ",
           snippet(r.text, start + 30), "). Hint: pass the template's end-of-turn token as eos_token.");
    r.assistant_spans.emplace_back(start, end);
  }
  return r;
}

ChatRender render_chat_with_spans(const std::string& tmpl, const nlohmann::json& messages,
                                  const nlohmann::json& vars) {
  return render_chat_with_spans(tmpl, to_ordered(messages), to_ordered(vars));
}

nlohmann::json special_tokens_map(const nlohmann::json& config, const std::string& where) {
  nlohmann::json vars = nlohmann::json::object();
  if (!config.is_object()) return vars;
  for (const char* key : {"bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"}) {
    if (!config.contains(key) || config[key].is_null()) continue;  // transformers leaves unset tokens out
    const nlohmann::json& v = config[key];
    if (v.is_string()) {
      vars[key] = v.get<std::string>();
    } else if (v.is_object() && v.contains("content") && v["content"].is_string()) {
      vars[key] = v["content"].get<std::string>();
    } else {
      fail(where, ": ", key, " must be a string or {\"content\": ...}, got ", v.dump());
    }
  }
  return vars;
}

const std::string& builtin_chat_template(const std::string& name) {
  // transformers' former default ChatML template
  static const std::string chatml =
      "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>'"
      " + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
  // meta-llama/Llama-2-7b-chat-hf tokenizer_config.json
  static const std::string llama2 =
      "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = "
      "messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}"
      "{% endif %}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
      "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
      "{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + "
      "'\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}"
      "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}"
      "{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}"
      "{% endfor %}";
  if (name == "chatml") return chatml;
  if (name == "llama2") return llama2;
  fail("unknown built-in chat template '", name, "' (known: chatml, llama2)");
}

}  // namespace rlhf::tok
