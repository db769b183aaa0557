#!/usr/bin/env bash
# Installs, builds and runs every test (what CI runs through .ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [[ -z "${RLHF_SKIP_INSTALL:-}" ]]; then
  # The browser tests: Debian's Chromium, Node.js and npm (playwright-core comes from npm in tests/browser).
  SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  need=()
  [[ -x /usr/bin/chromium ]] || need+=(chromium)
  command -v node >/dev/null || need+=(nodejs)
  command -v npm >/dev/null || need+=(npm)
  if (( ${#need[@]} )); then
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  fi
fi
cd build
ctest --output-on-failure --timeout 1200 -j 1
