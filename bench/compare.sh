#!/usr/bin/env bash
# Ours (`rlhf bench`) against the PyTorch peer (../shared/bench/torch_ref.py) on the same machine, same threads,
# alternating run by run (the order flips every repetition so drifting load hits both alike); prints one JSON line
# per run to $LOG and a table of medians and ratios (ours / peer, tokens per second: > 1 means we are faster).
#
#   bench/compare.sh                           # the default cases below, 3 repetitions, 2 threads
#   bench/compare.sh -r 5 -t 2 "sft gpt2-tiny" "generate llama-tiny --batch 16"
# Options: -r REPS  -t THREADS  -b RLHF_BINARY  -p PEER_SCRIPT  -x PEER_PYTHON (default /usr/bin/python3, Debian's
#          torch 1.13 on the same OpenBLAS as build/)  -l LOG (JSONL of every run)
#          -e VAR=VALUE: environment for the peer only (e.g. -e OPENBLAS_CORETYPE=SkylakeX, the OpenBLAS kernels that
#          `rlhf` selects itself on CPUs OpenBLAS does not recognise; see src/common/runtime.cpp)
# A case is "TASK MODEL [flags passed to both]". Peak memory is the process's max RSS from /usr/bin/time.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
reps=3
threads=2
rlhf_bin=${RLHF_BIN:-$root/build-bench/rlhf}
peer=${PEER:-$root/../shared/bench/torch_ref.py}
log=${LOG:-/tmp/rlhf-compare-$$.jsonl}
peer_py=${PEER_PYTHON:-/usr/bin/python3}
peer_env=()
while getopts "r:t:b:p:x:l:e:h" o; do
  case $o in
    r) reps=$OPTARG ;;
    t) threads=$OPTARG ;;
    b) rlhf_bin=$OPTARG ;;
    p) peer=$OPTARG ;;
    x) peer_py=$OPTARG ;;
    l) log=$OPTARG ;;
    e) peer_env+=("$OPTARG") ;;
    *) sed -n '2,12p' "$0"; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
cases=("$@")
if [ ${#cases[@]} -eq 0 ]; then
  cases=("sft gpt2-tiny" "rm gpt2-tiny" "generate gpt2-tiny" "ppo gpt2-tiny"
         "sft llama-tiny" "rm llama-tiny" "generate llama-tiny" "ppo llama-tiny"
         "sft gpt2-small --batch 4 --seq-len 256" "generate gpt2-small --batch 8")
fi
[ -x "$rlhf_bin" ] || { echo "compare.sh: $rlhf_bin not built (ninja -C build-bench rlhf, or -b PATH)" >&2; exit 1; }
[ -f "$peer" ] || { echo "compare.sh: peer script $peer not found (-p PATH)" >&2; exit 1; }
"$peer_py" -c 'import torch' 2>/dev/null || { echo "compare.sh: needs $peer_py with torch (apt-get install python3-torch, or -x .venv/bin/python)" >&2; exit 1; }
: > "$log"

# run IMPL CASE: one run, its JSON line (with max_rss_mb and the 1-minute load added) appended to $log.
run() {
  local impl=$1 task model rest out rss load
  read -r task model rest <<< "$2"
  local args=(--task "$task" --model "$model" --threads "$threads" $rest)
  local tmp; tmp=$(mktemp)
  load=$(cut -d' ' -f1 /proc/loadavg)
  if [ "$impl" = ours ]; then
    /usr/bin/time -f "%M" -o "$tmp.rss" "$rlhf_bin" bench "${args[@]}" > "$tmp"
  else
    /usr/bin/time -f "%M" -o "$tmp.rss" env "${peer_env[@]}" "$peer_py" "$peer" "${args[@]}" > "$tmp"
  fi
  rss=$(tail -1 "$tmp.rss")
  /usr/bin/python3 - "$tmp" "$impl" "$rss" "$load" "$2" >> "$log" <<'EOF'
import json, sys
line = [l for l in open(sys.argv[1]) if l.startswith("{")][-1]
r = json.loads(line)
r.update(side=sys.argv[2], max_rss_mb=round(int(sys.argv[3]) / 1024, 1), load1=float(sys.argv[4]), case=sys.argv[5])
print(json.dumps(r))
EOF
  rm -f "$tmp" "$tmp.rss"
}

echo "# $(date -u +%FT%TZ) $(hostname) threads=$threads reps=$reps peer_env=${peer_env[*]:-} nproc=$(nproc) load: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for c in "${cases[@]}"; do
  for ((i = 0; i < reps; i++)); do
    if ((i % 2 == 0)); then run ours "$c"; run peer "$c"; else run peer "$c"; run ours "$c"; fi
    echo "  done: $c (rep $((i + 1))/$reps)" >&2
  done
done

/usr/bin/python3 - "$log" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
cases = list(dict.fromkeys(r["case"] for r in rows))
hdr = f"{'case':42} {'ours tok/s':>11} {'peer tok/s':>11} {'ratio':>6} {'ours MB':>8} {'peer MB':>8} {'load':>5}"
print(hdr); print("-" * len(hdr))
for c in cases:
    o = [r for r in rows if r["case"] == c and r["side"] == "ours"]
    p = [r for r in rows if r["case"] == c and r["side"] == "peer"]
    med = lambda rs, k: statistics.median(r[k] for r in rs)
    ot, pt = med(o, "tokens_per_s"), med(p, "tokens_per_s")
    load = statistics.mean(r["load1"] for r in o + p)
    print(f"{c:42} {ot:11.1f} {pt:11.1f} {ot / pt:6.2f} {med(o, 'max_rss_mb'):8.0f} {med(p, 'max_rss_mb'):8.0f} {load:5.1f}")
    if o[0]["task"] in ("ppo", "grpo") and "rollout_s" in p[0]:
        parts = " ".join(f"{k[:-2]} {med(o, k):.2f}/{med(p, k):.2f}" for k in ("rollout_s", "scoring_s", "train_s"))
        print(f"{'':4}s per iteration, ours/peer: {parts}")
print(f"(medians of {len(rows) // max(1, 2 * len(cases))} runs each; every run in {sys.argv[1]})")
EOF
