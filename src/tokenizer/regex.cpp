#include "tokenizer/regex.h"

#include <pcre2.h>

#include "common/error.h"

namespace rlhf::tok {

struct Regex::Impl {
  pcre2_code* code = nullptr;
  bool jit = false;
};

Regex::Regex(const std::string& pattern, const std::string& where) : impl_(std::make_unique<Impl>()), where_(where) {
  int err = 0;
  PCRE2_SIZE err_off = 0;
  impl_->code = pcre2_compile((PCRE2_SPTR)pattern.data(), pattern.size(), PCRE2_UTF | PCRE2_UCP, &err, &err_off,
                              nullptr);
  if (!impl_->code) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(err, msg, sizeof msg);
    fail(where, ": cannot compile regex ", pattern, " at offset ", err_off, ": ", (const char*)msg,
         " (hint: the pattern is compiled with PCRE2; Oniguruma-only syntax is not supported)");
  }
  impl_->jit = pcre2_jit_compile(impl_->code, PCRE2_JIT_COMPLETE) == 0;
}

Regex::~Regex() {
  if (impl_ && impl_->code) pcre2_code_free(impl_->code);
}

namespace {
// Per-thread match data and JIT stack, shared by all patterns (ovector of 1 pair is all we read).
struct ThreadMatch {
  pcre2_match_data* data = nullptr;
  pcre2_jit_stack* stack = nullptr;
  pcre2_match_context* ctx = nullptr;
  ThreadMatch() {
    data = pcre2_match_data_create(1, nullptr);
    // 32 KiB .. 64 MiB: long whitespace runs with lookahead recurse deeply on big inputs.
    stack = pcre2_jit_stack_create(32 * 1024, 64 * 1024 * 1024, nullptr);
    ctx = pcre2_match_context_create(nullptr);
    pcre2_jit_stack_assign(ctx, nullptr, stack);
  }
  ~ThreadMatch() {
    pcre2_match_context_free(ctx);
    pcre2_jit_stack_free(stack);
    pcre2_match_data_free(data);
  }
};
ThreadMatch& thread_match() {
  thread_local ThreadMatch tm;
  return tm;
}
}  // namespace

bool Regex::find(std::string_view text, size_t from, size_t* begin, size_t* end) const {
  ThreadMatch& tm = thread_match();
  int rc = impl_->jit ? pcre2_jit_match(impl_->code, (PCRE2_SPTR)text.data(), text.size(), from, 0, tm.data, tm.ctx)
                      : pcre2_match(impl_->code, (PCRE2_SPTR)text.data(), text.size(), from, PCRE2_NO_UTF_CHECK,
                                    tm.data, tm.ctx);
  if (rc == PCRE2_ERROR_NOMATCH) return false;
  if (rc < 0) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(rc, msg, sizeof msg);
    fail(where_, ": regex match failed at byte ", from, " of a ", text.size(), "-byte piece: ", (const char*)msg,
         " (hint: split very long inputs into smaller texts)");
  }
  PCRE2_SIZE* ov = pcre2_get_ovector_pointer(tm.data);
  *begin = ov[0];
  *end = ov[1];
  return true;
}

std::string Regex::escape(std::string_view literal) {
  std::string out;
  for (char c : literal) {
    if (std::string_view("\\^$.|?*+()[]{}-/#&~ ").find(c) != std::string_view::npos) out += '\\';
    out += c;
  }
  return out;
}

}  // namespace rlhf::tok
