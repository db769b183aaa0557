#!/usr/bin/env bash
# The sanitizer and fuzz builds (issue 19; docs/RELIABILITY.md): the code without libtorch (tokenizer, Jinja, file
# formats and data readers, labelling server) built with clang, RLHF_TORCH_FREE=ON:
#   build-asan/  ASan + UBSan + libFuzzer coverage: the torch-free unit tests, then every fuzz target over its seeds
#                (tests/fuzz/make_seeds.py) for FUZZ_SECONDS each (default 20: the smoke pass CI runs)
#   build-tsan/  ThreadSanitizer: the WorkerPool and the labelling server's concurrent tests
# Any sanitizer report, crash or hang fails the script. Longer runs: FUZZ_SECONDS=600 bash scripts/sanitize.sh,
# or one target: FUZZ_ONLY=fuzz_jinja FUZZ_SECONDS=600 ... (findings are written to build-asan/fuzz-findings/).
#   SANITIZE_SKIP_TSAN=1 / SANITIZE_SKIP_ASAN=1 skip one build.
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZ_SECONDS="${FUZZ_SECONDS:-20}"
jobs="$(nproc)"
if [[ -z "${RLHF_SKIP_INSTALL:-}" ]]; then
  # Debian's clang 14 brings libFuzzer and the sanitizer runtimes (libclang-common-14-dev).
  SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends clang >/dev/null
fi
command -v clang++ >/dev/null || { echo "sanitize.sh: clang++ is needed (apt-get install clang)" >&2; exit 1; }
# UBSan and ASan stop at the first report; LeakSanitizer is on (ASan's default on Linux).
export ASAN_OPTIONS="abort_on_error=1:detect_stack_use_after_return=1:strict_string_checks=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1"

configure() {  # folder, sanitizers, fuzz
  mkdir -p "$1"
  cmake -S . -B "$1" -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" -DRLHF_TORCH_FREE=ON -DRLHF_SANITIZE="$2" -DRLHF_FUZZ="$3" \
    >"$1/cmake.log" 2>&1 || { cat "$1/cmake.log" >&2; exit 1; }
}

status=0
if [[ -z "${SANITIZE_SKIP_ASAN:-}" ]]; then
  start=$SECONDS
  configure build-asan address,undefined ON
  cmake --build build-asan -j "$jobs"
  echo "build-asan: built in $((SECONDS - start)) s"
  start=$SECONDS
  (cd build-asan && ctest --output-on-failure --timeout 900 -j 1) || status=1
  echo "build-asan: tests took $((SECONDS - start)) s"
  start=$SECONDS
  seeds=build-asan/fuzz-seeds
  rm -rf "$seeds" && python3 tests/fuzz/make_seeds.py "$seeds"
  mkdir -p build-asan/fuzz-findings build-asan/fuzz-corpus
  for fz in build-asan/fuzz_*; do
    name="$(basename "$fz")"
    [[ -x "$fz" && ( -z "${FUZZ_ONLY:-}" || "$name" == "$FUZZ_ONLY" ) ]] || continue
    corpus="build-asan/fuzz-corpus/$name"
    mkdir -p "$corpus"
    # New inputs go to the corpus folder (kept between runs); seeds are read only.
    if "$fz" "$corpus" "$seeds/$name" -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=4096 \
        -max_len=65536 -artifact_prefix="build-asan/fuzz-findings/$name-" -print_final_stats=1 \
        >"build-asan/$name.log" 2>&1; then
      echo "$name: $(grep -m1 -o 'stat::number_of_executed_units: *[0-9]*' "build-asan/$name.log" | grep -o '[0-9]*$') runs in ${FUZZ_SECONDS} s, no finding ($(ls "$corpus" | wc -l) corpus inputs)"
    else
      echo "$name: FINDING (build-asan/$name.log; input in build-asan/fuzz-findings/)" >&2
      tail -40 "build-asan/$name.log" >&2
      status=1
    fi
  done
  echo "fuzz: $((SECONDS - start)) s"
fi
if [[ -z "${SANITIZE_SKIP_TSAN:-}" ]]; then
  start=$SECONDS
  configure build-tsan thread OFF
  cmake --build build-tsan -j "$jobs" --target test_worker_pool test_label_api
  (cd build-tsan && ./test_worker_pool && ./test_label_api) || status=1
  echo "build-tsan: built and tested in $((SECONDS - start)) s"
fi
exit $status
