#include "train/format.h"

#include <filesystem>
#include <fstream>

#include "common/error.h"
#include "tokenizer/chat_template.h"

using nlohmann::json;

namespace rlhf {

namespace {
std::vector<int64_t> widen(const std::vector<int32_t>& v) { return {v.begin(), v.end()}; }
}  // namespace

Formatter::Formatter(tok::Tokenizer tokenizer, FormatOptions options)
    : tok_(std::move(tokenizer)), opts_(std::move(options)) {
  template_ = opts_.chat_template.empty() ? tok_.chat_template() : opts_.chat_template;
  if (template_.empty()) template_ = tok::builtin_chat_template("chatml");
  if (auto e = tok_.eos_id()) stop_ids_.push_back(*e);
  for (const char* end_of_turn : {"<|im_end|>", "<|eot_id|>", "<|end|>"})
    if (auto id = tok_.token_to_id(end_of_turn))
      if (std::find(stop_ids_.begin(), stop_ids_.end(), *id) == stop_ids_.end()) stop_ids_.push_back(*id);
  pad_id_ = tok_.pad_id().value_or(tok_.eos_id().value_or(0));
}

Formatter Formatter::from_dir(const std::string& dir, int chat_override) {
  FormatOptions o;
  const auto path = std::filesystem::path(dir) / "rlhf_format.json";
  if (std::filesystem::exists(path)) {
    std::ifstream in(path);
    try {
      auto j = json::parse(in);
      o.chat = j.value("chat", false);
    } catch (const json::exception& e) {
      fail(path.string(), ": not valid JSON (", e.what(), ")");
    }
  }
  if (chat_override >= 0) o.chat = chat_override != 0;
  return Formatter(tok::Tokenizer::from_dir(dir), o);
}

json Formatter::template_vars() const {
  return tok::special_tokens_map(tok_.config(), "tokenizer_config.json");
}

json Formatter::as_messages(const json& prompt) const {
  if (prompt.is_array()) return prompt;
  RLHF_CHECK(prompt.is_string(), "a prompt must be a string or a list of messages, got ", prompt.dump());
  return json::array({{{"role", "user"}, {"content", prompt.get<std::string>()}}});
}

std::string Formatter::prompt_text(const json& prompt) const {
  if (prompt.is_string() && !opts_.chat) return prompt.get<std::string>();
  return tok::render_chat(template_, as_messages(prompt), /*add_generation_prompt=*/true, template_vars());
}

std::vector<int64_t> Formatter::encode_prompt(const json& prompt) const {
  if (prompt.is_string() && !opts_.chat) return widen(tok_.encode(prompt.get<std::string>(), true));
  return widen(tok_.encode(prompt_text(prompt), false));
}

TokenizedPair Formatter::encode(const json& prompt, const std::string& response) const {
  TokenizedPair out;
  out.prompt = encode_prompt(prompt);
  if (prompt.is_string() && !opts_.chat) {
    out.response = widen(tok_.encode(response, false));
    if (auto e = tok_.eos_id()) out.response.push_back(*e);
    return out;
  }
  json msgs = as_messages(prompt);
  const std::string p = tok::render_chat(template_, msgs, true, template_vars());
  msgs.push_back({{"role", "assistant"}, {"content", response}});
  const std::string full = tok::render_chat(template_, msgs, false, template_vars());
  RLHF_CHECK(full.compare(0, p.size(), p) == 0,
             "chat template: the rendered conversation does not start with the rendered prompt, so the response "
             "tokens cannot be separated (hint: use plain prompts or a prefix-stable template)");
  out.response = widen(tok_.encode(full.substr(p.size()), false));
  return out;
}

std::pair<std::vector<int64_t>, std::vector<uint8_t>> Formatter::encode_conversation(const json& messages) const {
  auto r = tok::render_chat_with_spans(template_, messages, template_vars());
  // Tokenize piecewise at the span boundaries so that every token is wholly inside or outside a span.
  std::vector<int64_t> ids;
  std::vector<uint8_t> mask;
  size_t pos = 0;
  auto add = [&](size_t from, size_t to, uint8_t m) {
    if (to <= from) return;
    auto t = tok_.encode(std::string_view(r.text).substr(from, to - from), false);
    ids.insert(ids.end(), t.begin(), t.end());
    mask.insert(mask.end(), t.size(), m);
  };
  for (const auto& [b, e] : r.assistant_spans) {
    add(pos, b, 0);
    add(b, e, 1);
    pos = e;
  }
  add(pos, r.text.size(), 0);
  return {ids, mask};
}

std::string Formatter::decode_response(const std::vector<int64_t>& ids) const {
  std::vector<int32_t> cut;
  for (int64_t t : ids) {
    if (std::find(stop_ids_.begin(), stop_ids_.end(), t) != stop_ids_.end()) break;
    cut.push_back(static_cast<int32_t>(t));
  }
  return tok_.decode(cut, /*skip_special_tokens=*/true);
}

void save_format(const std::string& dir, const FormatOptions& options) {
  const auto path = std::filesystem::path(dir) / "rlhf_format.json";
  std::ofstream out(path);
  out << options.to_json().dump(2) << "\n";
  RLHF_CHECK(out, path.string(), ": write failed");
}

}  // namespace rlhf
