#!/usr/bin/env bash
# The memory benchmark of docs/MEMORY.md: one PPO iteration (rollout, scoring, 4 PPO epochs) on a Qwen2.5 shape
# (random weights from a config.json: shapes only), batch 8, 64 prompt + 32 new tokens, full fine-tune against LoRA
# r = 16 on all linears with and without gradient checkpointing and bf16 frozen weights. One JSON line per case
# (rlhf bench's: iter_s, rollout_s, scoring_s, train_s, peak_rss_mb) into bench/memory/results-<config>.jsonl.
#   bash bench/memory/run.sh [-b BUILD] [-c CONFIG.json] [-x CASE]...   (default: build, qwen2.5-0.5b, every case)
# Cases: full lora lora-gc lora-gc-bf16 lora-bf16. The full fine-tune of the 0.5B shape needs ~23 GB of memory.
set -euo pipefail
cd "$(dirname "$0")/../.."
build=build
config=bench/memory/qwen2.5-0.5b.json
cases=()
while getopts "b:c:x:" o; do
  case $o in
    b) build=$OPTARG ;;
    c) config=$OPTARG ;;
    x) cases+=("$OPTARG") ;;
    *) echo "usage: $0 [-b BUILD] [-c CONFIG.json] [-x CASE]..." >&2; exit 1 ;;
  esac
done
[[ ${#cases[@]} -gt 0 ]] || cases=(full lora lora-gc lora-gc-bf16 lora-bf16)
out="bench/memory/results-$(basename "$config" .json).jsonl"
lora=(--lora-r 16 --lora-alpha 32 --lora-targets all-linear)
for c in "${cases[@]}"; do
  case $c in
    full) flags=() ;;
    lora) flags=("${lora[@]}") ;;
    lora-gc) flags=("${lora[@]}" --gradient-checkpointing) ;;
    lora-gc-bf16) flags=("${lora[@]}" --gradient-checkpointing --frozen-dtype bf16) ;;
    lora-bf16) flags=("${lora[@]}" --frozen-dtype bf16) ;;
    *) echo "$0: unknown case $c (full lora lora-gc lora-gc-bf16 lora-bf16)" >&2; exit 1 ;;
  esac
  echo "== $c: $build/rlhf bench --task ppo --model $config --batch 8 --prompt-len 64 --gen-len 32 --steps 1 --warmup 0 ${flags[*]}" >&2
  line=$("$build/rlhf" bench --task ppo --model "$config" --batch 8 --prompt-len 64 --gen-len 32 --steps 1 --warmup 0 \
         "${flags[@]}" 2>/dev/null | tail -1)
  echo "$line" | python3 -c "import json,sys; j=json.load(sys.stdin); j['case']='$c'; print(json.dumps(j))" | tee -a "$out"
done
