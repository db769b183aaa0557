#!/usr/bin/env bash
# Installs, builds and runs every test (what CI runs through .ci/run), against both libtorch builds:
# Debian's libtorch-dev 1.13 in build/ and PyPI's torch 2.x (CUDA compiled in, run on the CPU) in build-torch2/.
#   RLHF_TEST_BUILDS="build"   # only one of them (names of the folders below)
set -euo pipefail
cd "$(dirname "$0")/.."
# The PyPI build needs the CUDA toolkit to configure (scripts/setup.sh); this project's machines and CI have it. On a
# machine without it the PyPI build is skipped, and said so, unless RLHF_REQUIRE_BOTH=1 (.ci/run) makes that an error.
if [[ -z "${RLHF_TEST_BUILDS:-}" ]] && ! command -v nvcc >/dev/null && [[ ! -x /usr/local/cuda/bin/nvcc ]]; then
  if [[ -n "${RLHF_REQUIRE_BOTH:-}" ]]; then
    echo "test.sh: no CUDA toolkit (nvcc), so the PyPI torch build cannot be configured; RLHF_REQUIRE_BOTH is set" >&2
    exit 1
  fi
  echo "test.sh: SKIPPED the PyPI torch 2.x build (build-torch2): it needs the CUDA toolkit (nvcc), which this machine lacks"
  RLHF_TEST_BUILDS=build
fi
builds="${RLHF_TEST_BUILDS:-build build-torch2}"
if [[ -z "${RLHF_SKIP_INSTALL:-}" ]]; then
  # The browser tests: Debian's Chromium, driven by Playwright from PyPI (the venv below; no browser download).
  SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium python3-venv >/dev/null
fi
start=$SECONDS
bash scripts/venv.sh >/dev/null
echo "venv: $((SECONDS - start)) s"
for b in $builds; do
  start=$SECONDS
  case "$b" in
    build) RLHF_TORCH=debian bash scripts/setup.sh ;;
    build-torch2) RLHF_TORCH=pypi bash scripts/setup.sh ;;
    *) echo "test.sh: unknown build folder $b (build or build-torch2)" >&2; exit 1 ;;
  esac
  echo "$b: installed and built in $((SECONDS - start)) s"
done
status=0
for b in $builds; do
  start=$SECONDS
  echo "=== ctest in $b ($(grep -m1 '^-- libtorch ' "$b/cmake.log" | sed 's/^-- //'))"
  (cd "$b" && ctest --output-on-failure --timeout 1200 -j 1) || status=1
  echo "$b: tests took $((SECONDS - start)) s"
done
# The sanitizer and fuzz builds (clang; the code without libtorch): unit tests under ASan + UBSan and TSan, and
# a short pass of every fuzz target over its seeds (scripts/sanitize.sh, docs/RELIABILITY.md).
start=$SECONDS
echo "=== sanitizers and fuzz smoke (scripts/sanitize.sh)"
FUZZ_SECONDS="${FUZZ_SECONDS:-5}" bash scripts/sanitize.sh || status=1
echo "sanitize: took $((SECONDS - start)) s"
exit $status
