#!/usr/bin/env bash
# Tokenizer benchmark: rlhf's GPT-2 tokenizer vs npm tiktoken's GPT-2 encoding on the same 10 MB text.
# Needs: the rlhf_tokenizer library built in BUILD (default build-tok), node + npm (installs tiktoken here).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${BUILD:-$root/build-tok}
text=${TEXT:-/tmp/rlhf_bench_10mb.txt}
cmake --build "$build" --target rlhf_tokenizer -j1 > /dev/null
[ -f "$text" ] || "$here/make_text.sh" "$text"
g++ -O2 -std=c++17 -I"$root/src" -DPCRE2_CODE_UNIT_WIDTH=8 "$here/bench_tokenizer.cpp" "$build/librlhf_tokenizer.a" \
  -lpcre2-8 -lutf8proc -lpthread -o "$build/bench_tokenizer"
[ -d "$here/node_modules/tiktoken" ] || (cd "$here" && npm install --no-audit --no-fund --prefix . tiktoken > /dev/null)
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
"$build/bench_tokenizer" "$root/tests/data/tokenizers/gpt2" "$text"
node "$here/bench_tiktoken.mjs" "$text"
