# Sourced by the browser tests' run*.sh: resolves RLHF_BIN and OUT_DIR, installs Debian's Chromium when missing,
# sets $PY to the project venv's python (Playwright from PyPI, via scripts/venv.sh) and leaves the shell in
# tests/browser. Playwright drives /usr/bin/chromium; it never downloads a browser.
# Needs: $here (this folder) and $name (the calling script, for messages).
root="$(cd "$here/../.." && pwd)"
export RLHF_BIN="${RLHF_BIN:-$root/build/rlhf}"
if [ ! -x "$RLHF_BIN" ]; then
  echo "$name: no rlhf binary at $RLHF_BIN (hint: build it, or set RLHF_BIN=path/to/rlhf)" >&2
  exit 1
fi
RLHF_BIN="$(cd "$(dirname "$RLHF_BIN")" && pwd)/$(basename "$RLHF_BIN")"
export OUT_DIR="${OUT_DIR:-$(dirname "$RLHF_BIN")/browser-test}"

if [ ! -x /usr/bin/chromium ]; then
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y --no-install-recommends chromium
fi
PY="$(bash "$root/scripts/venv.sh")"
cd "$here"
