#!/usr/bin/env bash
# Installs, builds and runs every test (what CI runs through .ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cd build
ctest --output-on-failure --timeout 1200 -j 1
