#!/usr/bin/env bash
# Debian's libtorch 1.13 (build/) vs PyPI's torch 2.11 (build-torch2/) on this machine, side by side in one run:
# the whole `rlhf demo` (wall time and its evaluation) and `rlhf bench` steps, alternating the builds each round.
#   bash bench/libtorch/compare.sh [rounds=2]
# Both builds must exist (scripts/test.sh makes both). Figures: bench/RESULTS.md, "Which libtorch".
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
rounds="${1:-2}"
builds=(build build-torch2)
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}"
for b in "${builds[@]}"; do "$root/$b/rlhf" --version; done
for r in $(seq "$rounds"); do
  for b in "${builds[@]}"; do
    bin="$root/$b/rlhf"
    start=$(date +%s.%N)
    "$bin" demo --seed 1 --out "$tmp/demo-$b-$r" > "$tmp/demo.log" 2>&1
    end=$(date +%s.%N)
    gold=$(python3 -c "import json;e=json.load(open('$tmp/demo-$b-$r/eval.json'))['policies'];print(' '.join(f'{p} {e[p][\"gold\"]:.3f}' for p in ('sft','ppo','dpo')))")
    printf 'round %d %-13s demo %6.1f s  gold: %s\n' "$r" "$b" "$(python3 -c "print($end - $start)")" "$gold"
    for task in "sft" "generate" "ppo"; do
      line=$("$bin" bench --task $task --model gpt2-tiny --steps 3 2>/dev/null | tail -1)
      printf 'round %d %-13s bench %-8s %s\n' "$r" "$b" "$task" \
        "$(python3 -c "import json,sys;j=json.loads(sys.argv[1]);print(' '.join(f'{k} {v}' for k,v in j.items() if k in ('tokens_per_s','new_tokens_per_s','step_s','peak_rss_mb')))" "$line")"
    done
  done
done
