#!/usr/bin/env bash
# Loading is bounded by disk reads: time `rlhf inspect` (load_model, in-process) against `cat FILE >/dev/null` on a
# ~500 MB safetensors file (GPT-2 small, float32), alternating, warm page cache; cold too when caches can be dropped.
#   bash bench/load/run.sh [build/rlhf]
set -euo pipefail
RLHF=${1:-build/rlhf}
dir=$(mktemp -d /tmp/rlhf-load-XXXXXX)
trap 'rm -rf "$dir"' EXIT
cat > "$dir/config.json" <<'JSON'
{"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "n_embd": 768, "n_layer": 12, "n_head": 12,
 "n_positions": 1024, "vocab_size": 50257, "layer_norm_epsilon": 1e-5, "activation_function": "gelu_new",
 "tie_word_embeddings": true, "dtype": "float32"}
JSON
"$RLHF" init --config "$dir/config.json" --out "$dir/model" >/dev/null
f="$dir/model/model.safetensors"
echo "file: $(du -m "$f" | cut -f1) MB, $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg)"
for i in 1 2 3; do
  t0=$(date +%s.%N); cat "$f" >/dev/null; t1=$(date +%s.%N)
  load=$("$RLHF" inspect --device cpu --model "$dir/model" | sed 's/.*"load_and_read_s":\([0-9.e-]*\).*/\1/')
  echo "warm: cat $(echo "$t1 - $t0" | bc -l | cut -c1-6) s, load_model + read every weight $load s"
done
if sync && echo 3 > /proc/sys/vm/drop_caches 2>/dev/null; then
  t0=$(date +%s.%N); cat "$f" >/dev/null; t1=$(date +%s.%N)
  echo 3 > /proc/sys/vm/drop_caches
  load=$("$RLHF" inspect --device cpu --model "$dir/model" | sed 's/.*"load_and_read_s":\([0-9.e-]*\).*/\1/')
  echo "cold: cat $(echo "$t1 - $t0" | bc -l | cut -c1-6) s, load_model + read every weight $load s"
else
  echo "cold: cannot drop the page cache here (not permitted); warm figures only"
fi
