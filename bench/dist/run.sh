#!/usr/bin/env bash
# Data parallel on one machine (issue 15, part 6): the same `rlhf sft` (global batch, steps, seed) as 1 process ×
# 2 threads, as 2 processes × 1 thread (RANK / WORLD_SIZE / MASTER_* set as torchrun sets them), and as 2 × 1 with
# --zero 1, alternating, on a GPT-2 of 4 layers × 512 with GPT-2's vocabulary (38.4 M parameters: 154 MB of
# weights, 154 MB of gradients, 307 MB of AdamW moments, of which ZeRO-1 keeps about half per rank). Prints each
# run's wall time and every process's peak RSS, and the speed ratio of 2 × 1 against 1 × 2.
#   bash bench/dist/run.sh [build/rlhf] [repeats]
set -euo pipefail
RLHF=$(cd "$(dirname "${1:-build/rlhf}")" && pwd)/$(basename "${1:-build/rlhf}")
REPEATS=${2:-2}
root=$(cd "$(dirname "$0")/../.." && pwd)
dir=$(mktemp -d /tmp/rlhf-dist-XXXXXX)
trap 'rm -rf "$dir"' EXIT
cat > "$dir/config.json" <<'JSON'
{"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "n_embd": 512, "n_layer": 4, "n_head": 8,
 "n_positions": 256, "vocab_size": 50257, "layer_norm_epsilon": 1e-5, "activation_function": "gelu_new",
 "tie_word_embeddings": true, "bos_token_id": 50256, "eos_token_id": 50256, "pad_token_id": 50256,
 "dtype": "float32"}
JSON
"$RLHF" init --config "$dir/config.json" --tokenizer "$root/tests/data/models/gpt2-e2e" --out "$dir/model" >/dev/null
python3 - "$dir/sft.jsonl" <<'PY'
import json, random, sys
random.seed(0)
words = "the cat dog cow owl fox bee elk yak emu ant bat rat sat on a mat and ran far away".split()
with open(sys.argv[1], "w") as f:
    for i in range(512):
        p = " ".join(random.choice(words) for _ in range(random.randint(8, 24)))
        c = " ".join(random.choice(words) for _ in range(random.randint(16, 48)))
        f.write(json.dumps({"prompt": p, "completion": " " + c}) + "\n")
PY
args=(sft --model "$dir/model" --data "$dir/sft.jsonl" --eval-fraction 0 --batch-size 8 --max-steps 6
      --lr 1e-4 --seed 1 --device cpu --log-every 100 --save-every 0)
# Peak RSS of each process from GNU time (apt install time), else "n/a".
T=(); [ -x /usr/bin/time ] && T=(/usr/bin/time -f "maxrss_kb %M")
rss() { local kb; kb=$(sed -n 's/^maxrss_kb \([0-9]*\)/\1/p' "$1" | tail -1); [ -n "$kb" ] && echo $((kb / 1024)) || echo n/a; }
echo "$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2), OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}"
for r in $(seq "$REPEATS"); do
  t0=$(date +%s.%N)
  "${T[@]}" "$RLHF" "${args[@]}" --threads 2 --out "$dir/one" > "$dir/one.log" 2>&1
  t1=$(date +%s.%N)
  two() {  # 2 processes × 1 thread, extra flags "$1", logs two$2-RANK.log
    local port=$((20000 + RANDOM % 20000)) k
    for k in 0 1; do
      RANK=$k LOCAL_RANK=$k WORLD_SIZE=2 LOCAL_WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port OMP_NUM_THREADS=1 \
        "${T[@]}" "$RLHF" "${args[@]}" --threads 1 $1 --out "$dir/two$2" > "$dir/two$2-$k.log" 2>&1 &
    done
    wait
  }
  two "" dp
  t2=$(date +%s.%N)
  two "--zero 1" zero
  t3=$(date +%s.%N)
  one=$(echo "$t1 - $t0" | bc -l); dp=$(echo "$t2 - $t1" | bc -l); zero=$(echo "$t3 - $t2" | bc -l)
  printf 'run %d: 1x2 threads %.2f s (RSS %s MB) | 2x1 %.2f s (RSS %s + %s MB) | 2x1 --zero 1 %.2f s (RSS %s + %s MB) | 2x1 / 1x2 speed %.2fx\n' \
    "$r" "$one" "$(rss "$dir/one.log")" "$dp" "$(rss "$dir/twodp-0.log")" "$(rss "$dir/twodp-1.log")" \
    "$zero" "$(rss "$dir/twozero-0.log")" "$(rss "$dir/twozero-1.log")" "$(echo "$one / $dp" | bc -l)"
done
