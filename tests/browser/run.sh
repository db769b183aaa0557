#!/usr/bin/env bash
# Browser test of the labelling page (issue 6): installs Debian's Chromium and playwright-core if missing, then runs
# label.test.mjs against the built binary. Screenshots land in $OUT_DIR (default: beside the binary, ignored by git).
#   RLHF_BIN=build/rlhf tests/browser/run.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
export RLHF_BIN="${RLHF_BIN:-$root/build/rlhf}"
if [ ! -x "$RLHF_BIN" ]; then
  echo "run.sh: no rlhf binary at $RLHF_BIN (hint: build it, or set RLHF_BIN=path/to/rlhf)" >&2
  exit 1
fi
RLHF_BIN="$(cd "$(dirname "$RLHF_BIN")" && pwd)/$(basename "$RLHF_BIN")"
export OUT_DIR="${OUT_DIR:-$(dirname "$RLHF_BIN")/browser-test}"

if [ ! -x /usr/bin/chromium ]; then
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get install -y chromium
fi
if ! command -v node >/dev/null; then
  echo "run.sh: node is not installed (hint: apt-get install -y nodejs npm)" >&2
  exit 1
fi
cd "$here"
if [ ! -d node_modules/playwright-core ]; then
  npm ci --no-audit --no-fund
fi
node label.test.mjs
