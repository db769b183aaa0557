// Chat templates: turn `messages` into the prompt text exactly as transformers' apply_chat_template(tokenize=False)
// does, and find the byte ranges the model must learn to produce (the assistant turns).
//
// The template context is what transformers' apply_chat_template -> render_jinja_template passes:
//   special_tokens_map (see below) overwritten by `vars` (enable_thinking, ..., any caller's variable), then
//   messages             the messages with their null-valued keys dropped (_normalize_chat_messages) and the
//                        reasoning aliased (_alias_reasoning_fields: the first non-null of reasoning_content,
//                        thinking, reasoning is put under both "thinking" (first key) and "reasoning_content"),
//   tools, documents     from `vars` when given there, else None,
//   add_generation_prompt.
// Key order matters where a template prints JSON (`tool | tojson`): the ordered_json overloads keep the caller's
// key order as Python dicts do; the nlohmann::json overloads see keys sorted.
//
// Assistant spans (render_chat_with_spans), for each message i with role "assistant":
//   full  = render(messages, add_generation_prompt=false)
//   start = |render(messages[0..i), add_generation_prompt=true)|  -- must be a prefix of `full`, else an error
//           (the template is not prefix-stable: it renders earlier turns differently once later ones exist)
//   end   = just after the first end-of-turn marker at or after `start` in `full`: eos_token from vars, or one of
//           <|im_end|> <|eot_id|> <|eom_id|> <|end|> <end_of_turn> <|endoftext|> <|end_of_text|> </s>.
//           No marker found is an error (a span without its stop token would teach the model never to stop).
//   So a span covers everything the template emits for that turn after the generation prompt (Qwen3's
//   "<think>\n\n</think>\n\n" included) up to and including the stop token, and not the newline after it.
//   Qwen3 note: its template drops the <think> reasoning of assistant turns before the last user query, so in a
//   multi-turn conversation those earlier spans hold the answers only, exactly as the model sees them; to train
//   the reasoning of every turn, give each assistant turn its own sample (messages cut after that turn).
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "tokenizer/jinja.h"

namespace rlhf::tok {

struct ChatRender {
  std::string text;
  // Byte ranges [first, second) in `text` of each assistant message (in message order), see above.
  std::vector<std::pair<size_t, size_t>> assistant_spans;
};

std::string render_chat(const std::string& tmpl, const nlohmann::json& messages, bool add_generation_prompt,
                        const nlohmann::json& vars = nlohmann::json::object());
std::string render_chat(const std::string& tmpl, const jinja::Json& messages, bool add_generation_prompt,
                        const jinja::Json& vars = jinja::Json::object());

ChatRender render_chat_with_spans(const std::string& tmpl, const nlohmann::json& messages,
                                  const nlohmann::json& vars = nlohmann::json::object());
ChatRender render_chat_with_spans(const std::string& tmpl, const jinja::Json& messages,
                                  const jinja::Json& vars = jinja::Json::object());

// transformers' tokenizer.special_tokens_map, which apply_chat_template passes to every template: bos_token,
// eos_token, unk_token, sep_token, pad_token, cls_token, mask_token from tokenizer_config.json (a string or an
// AddedToken {"content": ...}), only those that are set. transformers 5 keeps additional_special_tokens out of it
// (they are extra_special_tokens now, not template variables), so they are not passed either. `where` names the
// config in errors.
nlohmann::json special_tokens_map(const nlohmann::json& tokenizer_config, const std::string& where);

// Templates for tokenizers that ship none: "chatml" (<|im_start|>role\n...<|im_end|>\n) and "llama2"
// ([INST] ... [/INST] with <<SYS>>, as Llama-2-chat's tokenizer_config.json). Unknown names are an error.
const std::string& builtin_chat_template(const std::string& name);

}  // namespace rlhf::tok
