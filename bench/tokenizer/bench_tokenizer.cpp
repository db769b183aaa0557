// Encode throughput of rlhf::tok::Tokenizer on one text file: the whole file as one string (one thread), and the
// file cut into ~4 KB chunks at line ends, encoded with encode_batch on 1 thread and on all cores.
// Usage: bench_tokenizer TOKENIZER_DIR TEXT_FILE
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>

#include "tokenizer/tokenizer.h"

static double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s TOKENIZER_DIR TEXT_FILE\n", argv[0]);
    return 2;
  }
  auto tok = rlhf::tok::Tokenizer::from_dir(argv[1]);
  std::ifstream f(argv[2], std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  const std::string text = ss.str();
  const double mb = text.size() / 1e6;

  double t0 = now();
  auto ids = tok.encode(text);
  double t1 = now();
  // Sum of (k + 1) * id[k] mod 2^32: the same number as bench_peers.py prints when the ids agree.
  uint32_t check = 0;
  for (size_t k = 0; k < ids.size(); ++k) check += (uint32_t)(k + 1) * (uint32_t)ids[k];
  std::printf("single  whole text   : %zu bytes -> %zu tokens in %.3f s = %.2f MB/s, %.2f M tokens/s (ids check %u)\n",
              text.size(), ids.size(), t1 - t0, mb / (t1 - t0), ids.size() / 1e6 / (t1 - t0), check);

  std::vector<std::string> chunks;
  for (size_t i = 0; i < text.size();) {
    size_t j = text.find('\n', std::min(text.size(), i + 4096));
    j = j == std::string::npos ? text.size() : j + 1;
    chunks.push_back(text.substr(i, j - i));
    i = j;
  }
  for (int threads : {1, 0}) {
    // A fresh tokenizer each time, so that no thread starts with a warm word cache.
    auto fresh = rlhf::tok::Tokenizer::from_dir(argv[1]);
    double b0 = now();
    auto out = fresh.encode_batch(chunks, false, threads);
    double b1 = now();
    size_t n = 0;
    for (const auto& v : out) n += v.size();
    unsigned used = threads ? threads : std::thread::hardware_concurrency();
    std::printf("batch   %2u thread(s): %zu chunks -> %zu tokens in %.3f s = %.2f MB/s, %.2f M tokens/s\n", used,
                chunks.size(), n, b1 - b0, mb / (b1 - b0), n / 1e6 / (b1 - b0));
  }
  return 0;
}
