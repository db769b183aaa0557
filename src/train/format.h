// How prompts and responses become tokens: one place, shared by sft, reward, dpo, ppo, score, the labelling
// server and the demo, so that a reward model scores exactly what it was trained on.
//
// Plain text (strings, no chat):
//   prompt   -> encode(prompt, add_special_tokens=true)        (BOS where the tokenizer adds one)
//   response -> encode(response) + [EOS]                        (the model learns to stop)
// Chat (a list of {"role","content"} messages, or a string with chat = true, wrapped as one user message):
//   prompt   -> render(messages, add_generation_prompt=true)    with the tokenizer's chat template
//   response -> render(messages + assistant turn)[len(prompt):] (ends with the template's end-of-turn token)
// Prompt and response are tokenized separately, so the boundary is exact and the response tokens are the
// ones the policy generates.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace rlhf {

struct FormatOptions {
  bool chat = false;           // wrap string prompts as a user message and use the chat template
  std::string chat_template;   // "" = the tokenizer's (or ChatML when it has none)
  // Saved beside every trained model as rlhf_format.json so that later stages format the same way.
  nlohmann::json to_json() const { return {{"chat", chat}}; }
};

struct TokenizedPair {
  std::vector<int64_t> prompt, response;
};

class Formatter {
 public:
  Formatter(tok::Tokenizer tokenizer, FormatOptions options);
  // From a model folder: its tokenizer and its rlhf_format.json (when present; `chat` overrides when set).
  static Formatter from_dir(const std::string& dir, int chat_override = -1);

  // prompt: string or messages; response: string (the assistant's answer).
  TokenizedPair encode(const nlohmann::json& prompt, const std::string& response) const;
  std::vector<int64_t> encode_prompt(const nlohmann::json& prompt) const;
  // The prompt as text (rendered chat or the string itself), for logs and the labelling page.
  std::string prompt_text(const nlohmann::json& prompt) const;
  // A whole conversation for SFT: ids and a 0/1 mask that is 1 on the assistant's tokens (loss tokens).
  std::pair<std::vector<int64_t>, std::vector<uint8_t>> encode_conversation(const nlohmann::json& messages) const;
  // Response ids -> text, cut at the first stop token, special tokens skipped.
  std::string decode_response(const std::vector<int64_t>& ids) const;

  // Tokens that end a response: EOS, plus the chat template's end-of-turn token (<|im_end|>, <|eot_id|>).
  const std::vector<int64_t>& stop_ids() const { return stop_ids_; }
  int64_t pad_id() const { return pad_id_; }
  const tok::Tokenizer& tokenizer() const { return tok_; }
  const FormatOptions& options() const { return opts_; }

 private:
  nlohmann::json as_messages(const nlohmann::json& prompt) const;
  nlohmann::json template_vars() const;
  tok::Tokenizer tok_;
  FormatOptions opts_;
  std::string template_;
  std::vector<int64_t> stop_ids_;
  int64_t pad_id_ = 0;
};

// Writes dir/rlhf_format.json.
void save_format(const std::string& dir, const FormatOptions& options);

}  // namespace rlhf
