// rlhf chat-template --tokenizer DIR --messages FILE.json [--add-generation-prompt] [--vars FILE.json]
//                    [--template chatml|llama2]
//   prints the rendered prompt exactly (no newline added), as transformers' apply_chat_template(tokenize=False).
//   The template is DIR/tokenizer_config.json's "chat_template" (a string, or a list of {"name", "template"} from
//   which "default" is taken), else DIR/chat_template.jinja; --template names a built-in one instead. No template
//   at all is an error, never a silent default. bos_token/eos_token/unk_token/pad_token come from
//   tokenizer_config.json (a string or {"content": ...}); --vars adds variables (tools, enable_thinking, ...).
//   FILE.json holds a JSON array of messages, or an object with a "messages" array.
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
};

Json read_json_file(const std::string& path, const char* hint) {
  std::ifstream f(path);
  RLHF_CHECK(f.good(), path, ": cannot open (hint: ", hint, ")");
  try {
    return Json::parse(f);
  } catch (const Json::parse_error& e) {
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

int run_chat_template(const ChatTemplateOptions& o) {
  const std::string config_path = o.tokenizer + "/tokenizer_config.json";
  Json config = read_json_file(config_path, "--tokenizer takes a Hugging Face folder with tokenizer_config.json");
  RLHF_CHECK(config.is_object(), config_path, ": expected a JSON object");

  Json vars = Json::object();
  for (const char* key : {"bos_token", "eos_token", "unk_token", "pad_token"}) {
    if (!config.contains(key) || config[key].is_null()) continue;  // transformers leaves unset tokens out
    const Json& v = config[key];
    if (v.is_string()) {
      vars[key] = v;
    } else if (v.is_object() && v.contains("content") && v["content"].is_string()) {
      vars[key] = v["content"];
    } else {
      rlhf::fail(config_path, ": ", key, " must be a string or {\"content\": ...}, got ", v.dump());
    }
  }
  if (!o.vars.empty()) {
    Json extra = read_json_file(o.vars, "--vars takes a JSON object, e.g. {\"enable_thinking\": false}");
    RLHF_CHECK(extra.is_object(), o.vars, ": expected a JSON object of template variables, got ", extra.type_name());
    for (auto it = extra.begin(); it != extra.end(); ++it) vars[it.key()] = it.value();
  }

  Json messages = read_json_file(o.messages, "--messages takes [{\"role\": \"user\", \"content\": \"...\"}]");
  if (messages.is_object() && messages.contains("messages")) messages = messages["messages"];
  RLHF_CHECK(messages.is_array(), o.messages, ": expected a JSON array of messages (or {\"messages\": [...]}), got ",
             messages.type_name());

  std::string tmpl = o.builtin.empty() ? find_template(o.tokenizer, config) : rlhf::tok::builtin_chat_template(o.builtin);
  std::cout << rlhf::tok::render_chat(tmpl, messages, o.add_generation_prompt, vars);
  std::cout.flush();
  return 0;
}

rlhf::cli::Command reg{"chat-template", "Render chat messages with a tokenizer's chat template", [](CLI::App& app) {
  auto o = std::make_shared<ChatTemplateOptions>();
  app.add_option("--tokenizer", o->tokenizer, "Folder with tokenizer_config.json")->required();
  app.add_option("--messages", o->messages, "JSON file: [{\"role\", \"content\"}, ...]")->required();
  app.add_flag("--add-generation-prompt", o->add_generation_prompt, "End with the assistant turn's header");
  app.add_option("--vars", o->vars, "JSON file with extra template variables (tools, enable_thinking, ...)");
  app.add_option("--template", o->builtin, "Use a built-in template instead: chatml or llama2");
  return [o] { return run_chat_template(*o); };
}};

}  // namespace
