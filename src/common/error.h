// Errors: thrown inside the library, caught once in main (tools/rlhf/main.cpp), printed, exit 1.
// Every message about user input names the file (and line / tensor / field), what was expected, and a hint.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace rlhf {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

namespace detail {
inline void format_into(std::ostringstream&) {}
template <typename T, typename... Rest>
void format_into(std::ostringstream& os, const T& v, const Rest&... rest) {
  os << v;
  format_into(os, rest...);
}
}  // namespace detail

// cat("tensor ", name, " has shape ", shape) -> std::string
template <typename... Args>
std::string cat(const Args&... args) {
  std::ostringstream os;
  detail::format_into(os, args...);
  return os.str();
}

template <typename... Args>
[[noreturn]] void fail(const Args&... args) {
  throw Error(cat(args...));
}

}  // namespace rlhf

// RLHF_CHECK(cond, "file ", path, ": expected ...") throws rlhf::Error with the message when cond is false.
#define RLHF_CHECK(cond, ...)              \
  do {                                     \
    if (!(cond)) ::rlhf::fail(__VA_ARGS__); \
  } while (0)
