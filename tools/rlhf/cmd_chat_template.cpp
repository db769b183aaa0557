// rlhf chat-template --tokenizer DIR --messages FILE.json [--add-generation-prompt] [--vars FILE.json]
//                    [--template chatml|llama2]
//   prints the rendered prompt exactly (no newline added), as transformers' apply_chat_template(tokenize=False).
//   The template is DIR/tokenizer_config.json's "chat_template" (a string, or a list of {"name", "template"} from
//   which "default" is taken), else DIR/chat_template.jinja; --template names a built-in one instead. No template
//   at all is an error, never a silent default. The special tokens (bos_token, eos_token, unk_token, sep_token,
//   pad_token, cls_token, mask_token) come from tokenizer_config.json as transformers' special_tokens_map; --vars
//   adds variables (tools, enable_thinking, ...). FILE.json holds a JSON array of messages, or an object with a
//   "messages" array.
// rlhf chat-template [--tokenizer DIR] --batch FILE.jsonl
//   renders many cases in one process (the live tests against transformers use it). Each line is an object:
//     {"messages": [...], "add_generation_prompt": false, "vars": {...}, "template": "..."}
//         a chat render as above; "template" overrides DIR's template (then --tokenizer may be left out, or name
//         a folder without a template: its special tokens are still passed);
//     {"template": "...", "context": {...}}
//         the Jinja engine alone: the template rendered with exactly that context.
//   Prints one JSON object per line, in order: {"text": "..."}, or {"error": "..."} when that case fails (an
//   error in one case does not stop the others; a malformed line is an error for the whole run).
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>

#include "command.h"
#include "common/error.h"
#include "tokenizer/chat_template.h"

namespace {

using rlhf::jinja::Json;

struct ChatTemplateOptions {
  std::string tokenizer;               // folder with tokenizer_config.json
  std::string messages;                // JSON file: [{"role", "content"}, ...] or {"messages": [...]}
  bool add_generation_prompt = false;  // end with the assistant header, ready for generation
  std::string vars;                    // optional JSON file with extra template variables
  std::string builtin;                 // optional built-in template name (chatml, llama2)
  std::string batch;                   // JSONL file of cases (see above); replaces --messages
};

Json read_json_file(const std::string& path, const char* hint) {
  std::ifstream f(path);
  RLHF_CHECK(f.good(), path, ": cannot open (hint: ", hint, ")");
  try {
    return Json::parse(f);
  } catch (const Json::exception& e) {
    rlhf::fail(path, ": not valid JSON: ", e.what(), " (hint: ", hint, ")");
  }
}

std::string find_template(const std::string& dir, const Json& config) {
  if (config.contains("chat_template")) {
    const Json& t = config["chat_template"];
    if (t.is_string()) return t.get<std::string>();
    if (t.is_array()) {
      for (const auto& entry : t)
        if (entry.is_object() && entry.value("name", "") == "default" && entry.contains("template"))
          return entry["template"].get<std::string>();
      rlhf::fail(dir, "/tokenizer_config.json: chat_template is a list without a \"default\" entry",
                 " (hint: pick one with --template or edit the file)");
    }
    if (!t.is_null())
      rlhf::fail(dir, "/tokenizer_config.json: chat_template must be a string or a list, got ", t.type_name());
  }
  std::ifstream jinja_file(dir + "/chat_template.jinja");
  if (jinja_file.good()) {
    std::stringstream ss;
    ss << jinja_file.rdbuf();
    return ss.str();
  }
  rlhf::fail(dir, ": no chat template (neither tokenizer_config.json's chat_template nor chat_template.jinja)",
             " (hint: --template chatml or --template llama2)");
}

// The tokenizer folder's special-token variables and its template (or the built-in one); with
// need_template=false a folder without a template gives an empty one.
struct TokenizerTemplate {
  std::string tmpl;
  Json vars = Json::object();
};

TokenizerTemplate load_tokenizer_template(const ChatTemplateOptions& o, bool need_template) {
  const std::string config_path = o.tokenizer + "/tokenizer_config.json";
  Json config = read_json_file(config_path, "--tokenizer takes a Hugging Face folder with tokenizer_config.json");
  RLHF_CHECK(config.is_object(), config_path, ": expected a JSON object");
  TokenizerTemplate t;
  t.vars = Json::parse(rlhf::tok::special_tokens_map(nlohmann::json::parse(config.dump()), config_path).dump());
  if (!o.builtin.empty()) {
    t.tmpl = rlhf::tok::builtin_chat_template(o.builtin);
  } else if (need_template || config.contains("chat_template") ||
             std::ifstream(o.tokenizer + "/chat_template.jinja").good()) {
    t.tmpl = find_template(o.tokenizer, config);
  }
  return t;
}

int run_batch(const ChatTemplateOptions& o) {
  std::unique_ptr<TokenizerTemplate> tok;
  if (!o.tokenizer.empty()) tok = std::make_unique<TokenizerTemplate>(load_tokenizer_template(o, false));
  std::ifstream f(o.batch);
  RLHF_CHECK(f.good(), o.batch, ": cannot open (hint: --batch takes a JSONL file of {\"messages\": ...} cases)");
  std::string line;
  for (size_t n = 1; std::getline(f, line); ++n) {
    if (line.empty()) continue;
    Json c;
    try {
      c = Json::parse(line);
    } catch (const Json::exception& e) {
      rlhf::fail(o.batch, ":", n, ": not valid JSON: ", e.what());
    }
    RLHF_CHECK(c.is_object(), o.batch, ":", n, ": expected a JSON object, got ", c.type_name());
    const bool raw = c.contains("context");
    RLHF_CHECK(c.contains("template") || (!raw && tok && !tok->tmpl.empty()), o.batch, ":", n,
               ": no \"template\", and no --tokenizer with a chat template to take one from");
    Json result = Json::object();
    try {
      const std::string tmpl = c.contains("template") ? c["template"].get<std::string>() : tok->tmpl;
      if (raw) {
        result["text"] = rlhf::jinja::render(tmpl, c["context"], "template");
      } else {
        Json vars = tok ? tok->vars : Json::object();  // a line's own "template" still gets DIR's special tokens
        if (c.contains("vars"))
          for (auto it = c["vars"].begin(); it != c["vars"].end(); ++it) vars[it.key()] = it.value();
        result["text"] = rlhf::tok::render_chat(tmpl, c.value("messages", Json::array()),
                                                c.value("add_generation_prompt", false), vars);
      }
    } catch (const rlhf::Error& e) {
      result["error"] = e.what();
    } catch (const Json::exception& e) {
      result["error"] = std::string("bad case: ") + e.what();
    }
    // invalid UTF-8 in a rendered text is replaced (U+FFFD) rather than aborting the whole batch
    std::cout << result.dump(-1, ' ', false, Json::error_handler_t::replace) << "\n";
  }
  std::cout.flush();
  return 0;
}

int run_chat_template(const ChatTemplateOptions& o) {
  if (!o.batch.empty()) return run_batch(o);
  RLHF_CHECK(!o.tokenizer.empty() && !o.messages.empty(),
             "chat-template: give --tokenizer DIR and --messages FILE.json (or --batch FILE.jsonl)");
  TokenizerTemplate t = load_tokenizer_template(o, true);
  Json vars = t.vars;
  if (!o.vars.empty()) {
    Json extra = read_json_file(o.vars, "--vars takes a JSON object, e.g. {\"enable_thinking\": false}");
    RLHF_CHECK(extra.is_object(), o.vars, ": expected a JSON object of template variables, got ", extra.type_name());
    for (auto it = extra.begin(); it != extra.end(); ++it) vars[it.key()] = it.value();
  }

  Json messages = read_json_file(o.messages, "--messages takes [{\"role\": \"user\", \"content\": \"...\"}]");
  if (messages.is_object() && messages.contains("messages")) messages = messages["messages"];
  RLHF_CHECK(messages.is_array(), o.messages, ": expected a JSON array of messages (or {\"messages\": [...]}), got ",
             messages.type_name());

  std::cout << rlhf::tok::render_chat(t.tmpl, messages, o.add_generation_prompt, vars);
  std::cout.flush();
  return 0;
}

rlhf::cli::Command reg{"chat-template", "Render chat messages with a tokenizer's chat template", [](CLI::App& app) {
  auto o = std::make_shared<ChatTemplateOptions>();
  app.add_option("--tokenizer", o->tokenizer, "Folder with tokenizer_config.json");
  app.add_option("--messages", o->messages, "JSON file: [{\"role\", \"content\"}, ...]");
  app.add_flag("--add-generation-prompt", o->add_generation_prompt, "End with the assistant turn's header");
  app.add_option("--vars", o->vars, "JSON file with extra template variables (tools, enable_thinking, ...)");
  app.add_option("--template", o->builtin, "Use a built-in template instead: chatml or llama2");
  app.add_option("--batch", o->batch, "JSONL file of cases, one JSON result per line (see the file's header)");
  return [o] { return run_chat_template(*o); };
}};

}  // namespace
