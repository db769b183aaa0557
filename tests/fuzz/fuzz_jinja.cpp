// libFuzzer target: the Jinja engine (tokenizer/jinja.h) that renders chat templates. Input: template source, then
// optionally a NUL byte and a JSON object used as the context (else a fixed chat context).
// Checks: parse and render either succeed or throw rlhf::Error; never a crash, a sanitizer report or a hang
// (loops over huge ranges must be bounded by the engine's own limits).
#include <cstdint>
#include <cstring>
#include <string>

#include "fuzz_util.h"
#include "tokenizer/jinja.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const char* begin = reinterpret_cast<const char*>(data);
  const char* nul = static_cast<const char*>(std::memchr(begin, 0, size));
  std::string source(begin, nul ? nul : begin + size);
  rlhf::jinja::Json context = rlhf::jinja::Json::object();
  if (nul) context = rlhf::jinja::Json::parse(nul + 1, begin + size, nullptr, false);
  if (!nul || context.is_discarded() || !context.is_object())
    context = {{"messages", {{{"role", "system"}, {"content", "Be brief."}},
                             {{"role", "user"}, {"content", "Hi <b>there</b>"}},
                             {{"role", "assistant"}, {"content", "Hello!"}}}},
               {"add_generation_prompt", true},
               {"bos_token", "<s>"},
               {"eos_token", "</s>"},
               {"tools", nullptr}};
  fuzz::clear_error_or_abort("fuzz_jinja", [&] { rlhf::jinja::render(source, context, "fuzz"); });
  return 0;
}
