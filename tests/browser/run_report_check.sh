#!/usr/bin/env bash
# Browser check of the run report (issue 7): renders `rlhf report`'s page for a synthetic run folder (or RUN_DIR) in
# Debian's headless Chromium, fails on console errors, page errors or network requests, checks the charts and saves
# screenshots (report-laptop.png, report-phone.png) to $OUT_DIR (default: beside the binary, ignored by git).
#   RLHF_BIN=build/rlhf tests/browser/run_report_check.sh
#   RUN_DIR=runs/demo EXPECT_CHARTS=18 RLHF_BIN=build/rlhf tests/browser/run_report_check.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
export RLHF_BIN="${RLHF_BIN:-$root/build/rlhf}"
if [ ! -x "$RLHF_BIN" ]; then
  echo "run_report_check.sh: no rlhf binary at $RLHF_BIN (hint: build it, or set RLHF_BIN=path/to/rlhf)" >&2
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
  echo "run_report_check.sh: node is not installed (hint: apt-get install -y nodejs npm)" >&2
  exit 1
fi
cd "$here"
if [ ! -d node_modules/playwright-core ]; then
  npm i --no-audit --no-fund playwright-core
fi
node report_check.js
