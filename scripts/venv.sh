#!/usr/bin/env bash
# Creates (or refreshes) the Python virtual environment for tests and benchmarks from scripts/requirements.txt:
#   bash scripts/venv.sh            # -> .venv (RLHF_VENV=path to put it elsewhere); prints its python
# Idempotent: a stamp with the requirements' hash skips pip when nothing changed. Needs python3 with venv
# (Debian: python3-venv, which scripts/test.sh installs).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="${RLHF_VENV:-$root/.venv}"
req="$root/scripts/requirements.txt"
want="$(sha256sum "$req" | cut -d' ' -f1)"
if [[ ! -x "$venv/bin/python" ]]; then
  "${PYTHON:-python3}" -m venv "$venv" >&2
fi
if [[ "$(cat "$venv/.requirements.sha256" 2>/dev/null)" != "$want" ]]; then
  "$venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip >&2
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$req" >&2
  echo "$want" > "$venv/.requirements.sha256"
fi
echo "$venv/bin/python"
