// Chat templates against transformers: the `chat` entries of tests/data/tokenizers/{qwen3,llama3}/reference.json
// (rendered by transformers' apply_chat_template from the chat_template in the same folder's
// tokenizer_config.json), plus tool-call / reasoning conversations and the built-in templates rendered by jinja2
// 3.1.6 in transformers' environment (trim_blocks, lstrip_blocks, loopcontrols, tojson = json.dumps(ensure_ascii=
// False)): `env.from_string(tmpl).render(messages=..., tools=..., add_generation_prompt=...)`.
#include <gtest/gtest.h>

#include <fstream>

#include "common/error.h"
#include "tokenizer/chat_template.h"

using rlhf::jinja::Json;
using rlhf::tok::render_chat;
using rlhf::tok::render_chat_with_spans;

namespace {

Json read_json(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw std::runtime_error("cannot open " + path);
  return Json::parse(f);
}

std::string dir_of(const std::string& name) { return std::string(RLHF_TEST_DATA) + "/tokenizers/" + name; }

// bos_token / eos_token from tokenizer_config.json (a string or {"content": ...}; null ones are left out, as
// transformers' special_tokens_map leaves them out).
Json special_tokens(const Json& config) {
  Json vars = Json::object();
  for (const char* key : {"bos_token", "eos_token", "unk_token", "pad_token"}) {
    if (!config.contains(key)) continue;
    const Json& v = config[key];
    if (v.is_string()) vars[key] = v;
    if (v.is_object() && v.contains("content")) vars[key] = v["content"];
  }
  return vars;
}

void check_reference(const std::string& name) {
  Json config = read_json(dir_of(name) + "/tokenizer_config.json");
  Json ref = read_json(dir_of(name) + "/reference.json");
  ASSERT_TRUE(config["chat_template"].is_string());
  ASSERT_FALSE(ref["chat"].empty());
  std::string tmpl = config["chat_template"];
  for (const auto& c : ref["chat"]) {
    SCOPED_TRACE(c.dump());
    EXPECT_EQ(render_chat(tmpl, c["messages"], c["add_generation_prompt"].get<bool>(), special_tokens(config)),
              c["rendered"].get<std::string>());
  }
}

TEST(ChatTemplate, Qwen3MatchesTransformers) { check_reference("qwen3"); }
TEST(ChatTemplate, Llama3MatchesTransformers) { check_reference("llama3"); }

std::string qwen3_template() { return read_json(dir_of("qwen3") + "/tokenizer_config.json")["chat_template"]; }

const char* kToolMessages = R"J([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Weather in Paris?"}, {"role": "assistant", "content": "<think>\nNeed the tool.\n</think>\n\n", "tool_calls": [{"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris", "unit": "C"}}}]}, {"role": "tool", "content": "18°C, sunny"}, {"role": "assistant", "content": "<think>\nEasy.\n</think>\n\nIt is 18°C and sunny."}])J";
const char* kTools = R"J([{"type": "function", "function": {"name": "get_weather", "description": "Weather in a city", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}])J";

TEST(ChatTemplate, Qwen3ToolsAndToolCalls) {
  Json vars = {{"tools", Json::parse(kTools)}, {"eos_token", "<|im_end|>"}};
  EXPECT_EQ(render_chat(qwen3_template(), Json::parse(kToolMessages), false, vars),
            R"J(<|im_start|>system
Be brief.

# Tools

You may call one or more functions to assist with the user query.

You are provided with function signatures within <tools></tools> XML tags:
<tools>
{"type": "function", "function": {"name": "get_weather", "description": "Weather in a city", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
</tools>

For each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:
<tool_call>
{"name": <function-name>, "arguments": <args-json-object>}
</tool_call><|im_end|>
<|im_start|>user
Weather in Paris?<|im_end|>
<|im_start|>assistant
<think>
Need the tool.
</think>

<tool_call>
{"name": "get_weather", "arguments": {"city": "Paris", "unit": "C"}}
</tool_call><|im_end|>
<|im_start|>user
<tool_response>
18°C, sunny
</tool_response><|im_end|>
<|im_start|>assistant
<think>
Easy.
</think>

It is 18°C and sunny.<|im_end|>
)J");
}

TEST(ChatTemplate, Qwen3EnableThinkingFalse) {
  Json msgs = Json::parse(kToolMessages);
  Json first_two = Json::array({msgs[0], msgs[1]});
  EXPECT_EQ(render_chat(qwen3_template(), first_two, true, Json{{"enable_thinking", false}}),
            R"J(<|im_start|>system
Be brief.<|im_end|>
<|im_start|>user
Weather in Paris?<|im_end|>
<|im_start|>assistant
<think>

</think>

)J");
}

const char* kReasoning = R"J([{"role": "user", "content": "a"}, {"role": "assistant", "content": "<think>r1</think>A1"},
  {"role": "user", "content": "b"}, {"role": "assistant", "content": "B1", "reasoning_content": "r2"}])J";

TEST(ChatTemplate, Qwen3ReasoningOfEarlierTurnsIsDropped) {
  EXPECT_EQ(render_chat(qwen3_template(), Json::parse(kReasoning), false), R"J(<|im_start|>user
a<|im_end|>
<|im_start|>assistant
A1<|im_end|>
<|im_start|>user
b<|im_end|>
<|im_start|>assistant
<think>
r2
</think>

B1<|im_end|>
)J");
}

std::vector<std::string> span_texts(const rlhf::tok::ChatRender& r) {
  std::vector<std::string> out;
  for (auto [b, e] : r.assistant_spans) out.push_back(r.text.substr(b, e - b));
  return out;
}

TEST(ChatSpans, Qwen3) {
  auto r = render_chat_with_spans(qwen3_template(), Json::parse(kReasoning));
  EXPECT_EQ(r.text, render_chat(qwen3_template(), Json::parse(kReasoning), false));
  // The earlier turn as the model sees it (reasoning dropped), the last one with its think block.
  EXPECT_EQ(span_texts(r), (std::vector<std::string>{"A1<|im_end|>", "<think>\nr2\n</think>\n\nB1<|im_end|>"}));

  Json vars = {{"tools", Json::parse(kTools)}};
  auto t = render_chat_with_spans(qwen3_template(), Json::parse(kToolMessages), vars);
  EXPECT_EQ(span_texts(t),
            (std::vector<std::string>{
                "<think>\nNeed the tool.\n</think>\n\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": "
                "{\"city\": \"Paris\", \"unit\": \"C\"}}\n</tool_call><|im_end|>",
                "<think>\nEasy.\n</think>\n\nIt is 18°C and sunny.<|im_end|>"}));
}

TEST(ChatSpans, Llama3) {
  Json config = read_json(dir_of("llama3") + "/tokenizer_config.json");
  Json msgs = Json::parse(R"([{"role": "system", "content": "S"}, {"role": "user", "content": "Hi"},
    {"role": "assistant", "content": "Hello"}, {"role": "user", "content": "Again"},
    {"role": "assistant", "content": " Bye \n"}])");
  auto r = render_chat_with_spans(config["chat_template"], msgs, special_tokens(config));
  // Llama 3's template trims the content and always appends the assistant header: not part of any span.
  EXPECT_EQ(span_texts(r), (std::vector<std::string>{"Hello<|eot_id|>", "Bye<|eot_id|>"}));
}

const char* kConv = R"J([{"role": "system", "content": "S"}, {"role": "user", "content": "Hi"},
  {"role": "assistant", "content": "Hello"}, {"role": "user", "content": "Bye"}])J";

TEST(ChatTemplate, BuiltinChatml) {
  EXPECT_EQ(render_chat(rlhf::tok::builtin_chat_template("chatml"), Json::parse(kConv), true),
            R"J(<|im_start|>system
S<|im_end|>
<|im_start|>user
Hi<|im_end|>
<|im_start|>assistant
Hello<|im_end|>
<|im_start|>user
Bye<|im_end|>
<|im_start|>assistant
)J");
  auto r = render_chat_with_spans(rlhf::tok::builtin_chat_template("chatml"), Json::parse(kConv));
  EXPECT_EQ(span_texts(r), std::vector<std::string>{"Hello<|im_end|>"});
}

TEST(ChatTemplate, BuiltinLlama2) {
  Json vars = {{"bos_token", "<s>"}, {"eos_token", "</s>"}};
  EXPECT_EQ(render_chat(rlhf::tok::builtin_chat_template("llama2"), Json::parse(kConv), true, vars),
            R"J(<s>[INST] <<SYS>>
S
<</SYS>>

Hi [/INST] Hello </s><s>[INST] Bye [/INST])J");
  auto r = render_chat_with_spans(rlhf::tok::builtin_chat_template("llama2"), Json::parse(kConv), vars);
  EXPECT_EQ(span_texts(r), std::vector<std::string>{" Hello </s>"});
  EXPECT_THROW(rlhf::tok::builtin_chat_template("vicuna"), rlhf::Error);
}

TEST(ChatTemplate, Llama2RolesMustAlternate) {
  Json msgs = Json::parse(R"([{"role": "user", "content": "a"}, {"role": "user", "content": "b"}])");
  try {
    render_chat(rlhf::tok::builtin_chat_template("llama2"), msgs, true, Json{{"bos_token", "<s>"}, {"eos_token", "</s>"}});
    FAIL() << "expected an error";
  } catch (const rlhf::Error& e) {
    EXPECT_NE(std::string(e.what()).find("Conversation roles must alternate"), std::string::npos) << e.what();
  }
}

TEST(ChatSpans, NotPrefixStableIsAnError) {
  // Renders the last message differently from earlier ones: no prefix of the conversation is stable.
  std::string tmpl = "{% for m in messages %}{% if loop.last %}[{{ m.content }}]{% else %}{{ m.content }}{% endif %}"
                     "{% endfor %}<|im_end|>";
  Json msgs = Json::parse(R"([{"role": "user", "content": "u"}, {"role": "assistant", "content": "a"}])");
  try {
    render_chat_with_spans(tmpl, msgs);
    FAIL() << "expected an error";
  } catch (const rlhf::Error& e) {
    EXPECT_NE(std::string(e.what()).find("not prefix-stable at assistant message 1"), std::string::npos) << e.what();
  }
}

TEST(ChatSpans, MissingEndOfTurnIsAnError) {
  std::string tmpl = "{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}";
  Json msgs = Json::parse(R"([{"role": "user", "content": "u"}, {"role": "assistant", "content": "a"}])");
  EXPECT_THROW(render_chat_with_spans(tmpl, msgs), rlhf::Error);
}

TEST(ChatTemplate, UnsortedJsonOverloadWorks) {
  nlohmann::json msgs = nlohmann::json::array({{{"role", "user"}, {"content", "x"}}});
  EXPECT_EQ(render_chat(rlhf::tok::builtin_chat_template("chatml"), msgs, false), "<|im_start|>user\nx<|im_end|>\n");
}

// What transformers 5.24 passes besides the messages: tools=None, documents=None, special_tokens_map (bos, eos, unk,
// sep, pad, cls, mask: those set; not additional_special_tokens); messages with null keys dropped and reasoning
// aliased. Expected string from tokenizer.apply_chat_template(m, chat_template=t, tokenize=False) on the qwen3
// folder (tests/py/test_chat_template_live.py checks whole conversations the same way).
TEST(ChatTemplate, ContextIsTransformers) {
  const std::string t =
      "{{ tools }}|{{ documents }}|{{ tools is none }}|{{ bos_token is defined }}|{{ pad_token }}|{{ messages|tojson }}";
  Json m = Json::parse(R"([{"role": "user", "content": "hi", "name": null},
                           {"role": "assistant", "content": "a", "reasoning": "r"},
                           {"role": "assistant", "content": "b", "thinking": "t", "reasoning_content": "rc"}])");
  nlohmann::json config = nlohmann::json::parse(std::ifstream(dir_of("qwen3") + "/tokenizer_config.json"));
  nlohmann::json vars = rlhf::tok::special_tokens_map(config, "qwen3");
  EXPECT_EQ(vars, nlohmann::json::parse(R"({"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"})"));
  EXPECT_EQ(render_chat(t, m, false, Json::parse(vars.dump())),
            R"(None|None|True|False|<|endoftext|>|[{"role": "user", "content": "hi"}, )"
            R"({"thinking": "r", "role": "assistant", "content": "a", "reasoning": "r", "reasoning_content": "r"}, )"
            R"({"thinking": "t", "role": "assistant", "content": "b", "reasoning_content": "rc"}])");
}

}  // namespace
