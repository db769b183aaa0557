#!/usr/bin/env bash
# Writes a 10 MB (10,000,000 byte) mixed text to $1: English prose and code found on every Debian machine
# (licenses, package copyright files, Python's standard library sources), in a fixed order, cut at 10 MB.
set -euo pipefail
out=${1:?usage: make_text.sh OUT}
{
  cat /usr/share/common-licenses/* 2>/dev/null || true
  find /usr/share/doc -name copyright -type f 2>/dev/null | LC_ALL=C sort | xargs cat 2>/dev/null || true
  find /usr/lib/python3* -name '*.py' -type f 2>/dev/null | LC_ALL=C sort | xargs cat 2>/dev/null || true
} | head -c 10000000 > "$out"
# Keep whole UTF-8 characters: drop a truncated sequence at the very end, if any.
python3 - "$out" <<'PY'
import sys
p = sys.argv[1]
b = open(p, 'rb').read()
s = b.decode('utf-8', 'ignore')
open(p, 'wb').write(s.encode('utf-8'))
PY
wc -c "$out"
