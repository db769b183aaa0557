#!/usr/bin/env bash
# Tokenizer benchmark: rlhf's GPT-2 tokenizer (bench_tokenizer.cpp) vs PyPI's Hugging Face `tokenizers` and
# `tiktoken` (bench_peers.py) on the same 10 MB text, one thread each; fails unless all three give the same ids.
# Needs: the rlhf_tokenizer library built in BUILD (default build/; NO_BUILD=1 skips `cmake --build`), and the
# project venv (scripts/venv.sh, from PyPI). TEXT=path picks the text (default: make_text.sh's 10 MB, made once).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${BUILD:-$root/build}
text=${TEXT:-/tmp/rlhf_bench_10mb.txt}
[ "${NO_BUILD:-0}" = 1 ] || cmake --build "$build" --target rlhf_tokenizer -j1 > /dev/null
[ -f "$text" ] || "$here/make_text.sh" "$text"
g++ -O2 -std=c++17 -I"$root/src" -DPCRE2_CODE_UNIT_WIDTH=8 "$here/bench_tokenizer.cpp" "$build/librlhf_tokenizer.a" \
  -lpcre2-8 -lutf8proc -lpthread -o "$build/bench_tokenizer"
py=$(bash "$root/scripts/venv.sh")
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
out=$("$build/bench_tokenizer" "$root/tests/data/tokenizers/gpt2" "$text")
echo "$out"
# "single  whole text   : N bytes -> TOKENS tokens in ... (ids check CHECK)" -> TOKENS CHECK
read -r tokens check < <(echo "$out" | sed -n 's/^single .*-> \([0-9]*\) tokens .*ids check \([0-9]*\)).*/\1 \2/p') ||
  { echo "run.sh: no 'single' line with an ids check from bench_tokenizer" >&2; exit 1; }
"$py" "$here/bench_peers.py" "$root/tests/data/tokenizers/gpt2/tokenizer.json" "$text" --expect "$tokens" "$check"
