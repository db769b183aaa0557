#!/usr/bin/env bash
# Browser test of the labelling page (issue 6): installs Debian's Chromium and the Python venv (Playwright) if
# missing, then runs label_test.py against the built binary. Screenshots land in $OUT_DIR (default: beside the
# binary, ignored by git).
#   RLHF_BIN=build/rlhf tests/browser/run.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
name=run.sh
# shellcheck source=prepare.sh
source "$here/prepare.sh"
"$PY" label_test.py
