// Shared by the libFuzzer targets (tests/fuzz/fuzz_*.cpp; scripts/sanitize.sh builds them with ASan + UBSan).
//
// The property every target checks besides "no crash, no sanitizer report, no hang": bad input ends in
// rlhf::Error, the error the program prints with the file / line / field. Any other exception escaping a reader
// (a raw nlohmann type_error, std::out_of_range, bad_alloc from a size read out of the input) is a finding:
// clear_error_or_abort prints it and aborts, which libFuzzer records as a crash with the input.
#pragma once
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <string>

#include "common/error.h"

namespace fuzz {

template <typename Fn>
void clear_error_or_abort(const char* target, Fn&& fn) {
  try {
    fn();
  } catch (const rlhf::Error&) {
    // The intended outcome for bad input.
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: an exception other than rlhf::Error escaped: %s\n", target, e.what());
    std::abort();
  }
}

// A file in $TMPDIR (or /tmp) named after the target and the process, rewritten for every input: the readers
// under test take paths.
inline const std::string& scratch_path(const char* target, const char* ext) {
  static const std::string path = [&] {
    const char* dir = std::getenv("TMPDIR");
    return std::string(dir && *dir ? dir : "/tmp") + "/" + target + "-" + std::to_string(::getpid()) + ext;
  }();
  return path;
}

inline const std::string& write_scratch(const char* target, const char* ext, const uint8_t* data, size_t size) {
  const std::string& path = scratch_path(target, ext);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  return path;
}

// The fixtures folder (tests/data); RLHF_TEST_DATA is set by CMake, the environment variable overrides it.
inline std::string test_data() {
  const char* env = std::getenv("RLHF_TEST_DATA");
  return env && *env ? env : RLHF_TEST_DATA;
}

}  // namespace fuzz
