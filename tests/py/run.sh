#!/usr/bin/env bash
# Runs one Python test file of tests/py against the built binary, with the project venv (scripts/venv.sh: the live
# reference libraries transformers, PEFT, tokenizers, TRL, TensorBoard from PyPI, pinned in scripts/requirements.txt).
#   RLHF_BIN=build/rlhf bash tests/py/run.sh tests/py/test_hf_load.py
# Each file is a unittest module; ctest registers one test per tests/py/test_*.py (CMakeLists.txt).
# Environment for the tests: RLHF_BIN (absolute), RLHF_ROOT (the checkout), OUT_DIR (scratch beside the binary),
# RLHF_LOSS_PROBE (the test-only loss probe, default: beside RLHF_BIN).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
file="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
export RLHF_BIN="${RLHF_BIN:-$root/build/rlhf}"
if [ ! -x "$RLHF_BIN" ]; then
  echo "tests/py/run.sh: no rlhf binary at $RLHF_BIN (hint: build it, or set RLHF_BIN=path/to/rlhf)" >&2
  exit 1
fi
RLHF_BIN="$(cd "$(dirname "$RLHF_BIN")" && pwd)/$(basename "$RLHF_BIN")"
export RLHF_ROOT="$root"
# The test-only loss probe (tests/tools/loss_probe.cpp) is built beside the binary.
export RLHF_LOSS_PROBE="${RLHF_LOSS_PROBE:-$(dirname "$RLHF_BIN")/rlhf_loss_probe}"
export OUT_DIR="${OUT_DIR:-$(dirname "$RLHF_BIN")/py-test/$(basename "$file" .py)}"
mkdir -p "$OUT_DIR"
PY="$(bash "$root/scripts/venv.sh")"
# One thread per library as in the C++ tests; transformers must not reach the network.
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 \
  TOKENIZERS_PARALLELISM=false PYTHONDONTWRITEBYTECODE=1
cd "$(dirname "$file")"
exec "$PY" -W ignore::DeprecationWarning "$file" -v
