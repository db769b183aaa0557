// Helpers shared by the tests: paths of the shipped fixtures, temporary folders, running the rlhf binary.
#pragma once
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>

#include "common/error.h"

namespace rlhf::test {

// The message of the rlhf::Error that f throws ("" when it throws none).
inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

inline std::string data(const std::string& rel) { return std::string(RLHF_TEST_DATA) + "/" + rel; }

// A fresh temporary folder, removed when the object goes away.
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    char tmpl[] = "/tmp/rlhf-test-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::string operator/(const std::string& rel) const { return (path / rel).string(); }
};

#ifdef RLHF_BIN
// Runs `rlhf ARGS`, returns the exit code; stdout+stderr go to *output when given.
inline int run_rlhf(const std::string& args, std::string* output = nullptr) {
  std::string cmd = std::string(RLHF_BIN) + " " + args + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return -1;
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int rc = ::pclose(p);
  if (output) *output = out;
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}
#endif

}  // namespace rlhf::test
