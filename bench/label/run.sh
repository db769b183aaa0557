#!/usr/bin/env bash
# The labelling server under load (issue 19, part 4), with wrk from Debian: a database of ITEMS items × 4 candidates
# and 64 annotators, `rlhf label serve`, then
#   1. GET /api/next (the query the page makes for each item) for DURATION s,
#   2. POST /api/rank, every request a new (annotator, item) pair (bench/label/rank.lua), for DURATION s,
# each with 2 wrk threads and CONNS connections. Prints requests/s, latency p50 / p90 / p99, non-2xx answers and
# socket errors, and checks that every ranking answered 200 is in the database (plus at most CONNS more: requests in flight when
# wrk stopped counting).
#   bash bench/label/run.sh [build/rlhf] [DURATION=10] [CONNS=16] [ITEMS=2000]
set -euo pipefail
RLHF=$(cd "$(dirname "${1:-build/rlhf}")" && pwd)/$(basename "${1:-build/rlhf}")
DURATION=${2:-10}
CONNS=${3:-16}
ITEMS=${4:-2000}
here=$(cd "$(dirname "$0")" && pwd)
command -v wrk >/dev/null || { echo "run.sh: wrk is needed (apt-get install wrk)" >&2; exit 1; }
dir=$(mktemp -d /tmp/rlhf-label-bench-XXXXXX)
server=""
trap '[[ -n $server ]] && kill $server 2>/dev/null; rm -rf "$dir"' EXIT
python3 - "$dir/candidates.jsonl" "$ITEMS" <<'PY'
import json, sys
with open(sys.argv[1], "w") as f:
    for i in range(int(sys.argv[2])):
        f.write(json.dumps({"prompt": f"Prompt {i}: tell me a story.",
                            "responses": [f"Answer {i}.{j}: " + "word " * (20 + 7 * j) for j in range(4)]}) + "\n")
PY
"$RLHF" label import --db "$dir/db.sqlite" --candidates "$dir/candidates.jsonl" >/dev/null
for a in $(seq 1 64); do "$RLHF" label add-annotator --db "$dir/db.sqlite" "annotator$a" | grep -oE '[0-9a-f]{64}' | head -1; done > "$dir/tokens"
port=$((20000 + RANDOM % 20000))
"$RLHF" label serve --db "$dir/db.sqlite" --port "$port" >"$dir/serve.log" 2>&1 &
server=$!
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/login" && break; sleep 0.1; done
token=$(head -1 "$dir/tokens")
echo "== GET /api/next: ${DURATION} s, 2 threads, $CONNS connections ($ITEMS items, 64 annotators)"
wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency -H "Authorization: Bearer $token" "http://127.0.0.1:$port/api/next" |
  grep -E "Requests/sec|Non-2xx|Socket errors|^ +(50|90|99)%"
echo "== POST /api/rank: ${DURATION} s, 2 threads, $CONNS connections, each a new (annotator, item)"
wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency -s "$here/rank.lua" "http://127.0.0.1:$port" -- "$dir/tokens" "$ITEMS" 4 2 |
  tee "$dir/rank.out" | grep -E "Requests/sec|Non-2xx|Socket errors|^ +(50|90|99)%|answers:"
kill $server; wait $server 2>/dev/null || true
server=""
answered=$(grep -oE 'answers: 200 [0-9]+' "$dir/rank.out" | grep -oE '[0-9]+$')
stored=$(python3 -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT COUNT(*) FROM rankings").fetchone()[0])' "$dir/db.sqlite")
# wrk stops counting at the deadline while up to CONNS requests are still in flight; the server may store those.
echo "rankings answered 200: $answered, stored: $stored (at most $CONNS in flight when wrk stopped)"
(( stored >= answered && stored - answered <= CONNS )) || { echo "run.sh: an answered ranking is missing" >&2; exit 1; }
