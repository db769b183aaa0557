#!/usr/bin/env bash
# Browser check of the run report (issue 7): renders `rlhf report`'s page for a synthetic run folder (or RUN_DIR) in
# Debian's headless Chromium, fails on console errors, page errors or network requests, checks the charts and saves
# screenshots (report-laptop.png, report-phone.png) to $OUT_DIR (default: beside the binary, ignored by git).
#   RLHF_BIN=build/rlhf tests/browser/run_report_check.sh
#   RUN_DIR=runs/demo EXPECT_CHARTS=18 RLHF_BIN=build/rlhf tests/browser/run_report_check.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
name=run_report_check.sh
# shellcheck source=prepare.sh
source "$here/prepare.sh"
"$PY" report_check.py
