#!/usr/bin/env bash
# The GPU check, in one call on the GPU machine (see docs in ../shared/docs/GPU.md):
#   1. build against the machine's pip PyTorch (CUDA) with the Debian packages carried in .gpu-debs/
#   2. the test suite (ctest; the tests pick their own device, CPU today) and a CUDA parity check: `rlhf forward
#      --device cuda` on the test models against transformers' float64 logits stored in tests/data
#   3. `rlhf bench --device cuda --dtype bf16` on gpu_baseline.py's shapes, next to gpu_baseline.py itself
#      (transformers' bf16-autocast training step and `generate`), and a short table of the ratios last.
#
# Here (a machine with apt and network), once:   bash scripts/gpu-check.sh --prepare
#   downloads the .debs into .gpu-debs/ and copies ../shared/bench/gpu_baseline.py into bench/ (both git-ignored)
# There (device tool, repo root, carry [".gpu-debs", "bench/gpu_baseline.py"]):   bash scripts/gpu-check.sh
#   writes everything under $OUT (default ./gpu-out): build.log, ctest.log, parity.txt, bench.jsonl,
#   baseline.json, summary.txt. Each step has its own time limit, so a slow step still leaves the others' files.
# --cpu-dry-run: runs steps 2-3 with the CPU build in build-bench and --device cpu (to test this script here).
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
DEBS="libpcre2-dev libpcre2-8-0 libpcre2-16-0 libpcre2-32-0 libpcre2-posix3 libutf8proc-dev libutf8proc2
      libcli11-dev nlohmann-json3-dev libgtest-dev libgmock-dev"

if [ "${1:-}" = "--prepare" ]; then
  set -e
  grep -qx '/.gpu-debs/' .git/info/exclude 2>/dev/null || echo /.gpu-debs/ >> .git/info/exclude
  grep -qx '/bench/gpu_baseline.py' .git/info/exclude 2>/dev/null || echo /bench/gpu_baseline.py >> .git/info/exclude
  mkdir -p .gpu-debs
  (cd .gpu-debs && apt-get download $DEBS)
  cp ../shared/bench/gpu_baseline.py bench/gpu_baseline.py
  ls -la .gpu-debs bench/gpu_baseline.py
  exit 0
fi

dry=0
[ "${1:-}" = "--cpu-dry-run" ] && dry=1
OUT=${OUT:-$root/gpu-out}
mkdir -p "$OUT"
summary=$OUT/summary.txt
: > "$summary"
note() { echo "$*" | tee -a "$summary"; }
t_start=$(date +%s)
elapsed() { echo $(( $(date +%s) - t_start ))s; }

# ---- 1. build
if [ $dry = 1 ]; then
  bin=$root/build-bench/rlhf
  bdir=$root/build-bench
  dev=cpu
  py=/usr/bin/python3
else
  dev=cuda
  py=python3
  mkdir -p /tmp/deps
  for f in .gpu-debs/*.deb; do dpkg -x "$f" /tmp/deps; done
  export LD_LIBRARY_PATH=/tmp/deps/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}
  [ -d /usr/local/cuda/bin ] && export PATH=/usr/local/cuda/bin:$PATH
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > "$OUT/gpu.txt" 2>&1
  TP=$($py -c 'import torch;print(torch.utils.cmake_prefix_path)')
  note "machine: $(cat "$OUT/gpu.txt"); torch $($py -c 'import torch;print(torch.__version__)'); $(nproc) cores; $(date -u +%FT%TZ)"
  bdir=$root/build-gpu
  gen=""
  command -v ninja > /dev/null && gen="-G Ninja"
  timeout 420 bash -c "cmake -S . -B build-gpu $gen -DCMAKE_BUILD_TYPE=Release -DRLHF_WITH_LABEL=OFF \
      -DCMAKE_PREFIX_PATH='$TP;/tmp/deps/usr' -DCMAKE_CUDA_ARCHITECTURES=90 && cmake --build build-gpu -j$(nproc)" \
      > "$OUT/build.log" 2>&1
  rc=$?
  note "build: rc=$rc ($(elapsed)); last lines of build.log:"
  tail -5 "$OUT/build.log" | tee -a "$summary"
  bin=$bdir/rlhf
  [ -x "$bin" ] || { note "no rlhf binary: stopping"; exit 1; }
fi

# ---- 2. tests and CUDA parity
if [ $dry = 0 ]; then
  (cd "$bdir" && timeout 240 ctest --output-on-failure --timeout 200 -j8 -E '^browser_') > "$OUT/ctest.log" 2>&1
  note "ctest: rc=$? ($(elapsed)): $(grep -E 'tests passed|tests failed' "$OUT/ctest.log" | tail -1)"
  grep -E '^\s+[0-9]+ - ' "$OUT/ctest.log" | tee -a "$summary"
fi
for m in gpt2-tiny llama-tiny qwen2-tiny; do
  d=tests/data/models/$m
  [ -f "$d/reference.safetensors" ] || continue
  timeout 60 $py - "$bin" "$d" "$dev" "$OUT" >> "$OUT/parity.txt" 2>&1 <<'EOF'
# rlhf forward on the device vs transformers' float64 logits (left-padded batch; compare where mask = 1).
# A minimal safetensors reader/writer (8-byte header size, JSON header, raw little-endian data), so that the
# check needs only torch.
import json, struct, subprocess, sys, torch
DT = {"F64": torch.float64, "F32": torch.float32, "BF16": torch.bfloat16, "F16": torch.float16, "I64": torch.int64,
      "I32": torch.int32}
def load(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    hdr, out = json.loads(raw[8:8 + n]), {}
    for k, v in hdr.items():
        if k == "__metadata__":
            continue
        a, b = v["data_offsets"]
        buf = bytearray(raw[8 + n + a:8 + n + b])
        out[k] = torch.frombuffer(buf, dtype=DT[v["dtype"]]).reshape(v["shape"]) if b > a else \
            torch.empty(v["shape"], dtype=DT[v["dtype"]])
    return out
def save(path, tensors):
    hdr, blobs, off = {}, [], 0
    for k, t in tensors.items():
        data = t.contiguous().numpy().tobytes()
        name = {v: k2 for k2, v in DT.items()}[t.dtype]
        hdr[k] = {"dtype": name, "shape": list(t.shape), "data_offsets": [off, off + len(data)]}
        blobs.append(data)
        off += len(data)
    h = json.dumps(hdr).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    open(path, "wb").write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
bin_, d, dev, out = sys.argv[1:]
ref = load(f"{d}/reference.safetensors")
inp = {k: ref[f"left.{k}"].to(torch.int64) for k in ("input_ids", "attention_mask", "position_ids")}
save(f"{out}/parity_in.safetensors", inp)
subprocess.run([bin_, "forward", "--model", d, "--input", f"{out}/parity_in.safetensors", "--output",
                f"{out}/parity_out.safetensors", "--device", dev], check=True)
got = load(f"{out}/parity_out.safetensors")["logits"].double()
m = inp["attention_mask"].bool()
diff = (got - ref["left.logits"].double())[m].abs().max().item()
print(f"{d} on {dev}: max |logits - transformers float64| = {diff:.2e} ({'ok' if diff < 1e-3 else 'FAIL'})")
EOF
done
note "parity ($(elapsed)):"
cat "$OUT/parity.txt" >> "$summary" 2>/dev/null
cat "$OUT/parity.txt" 2>/dev/null

# ---- 3. bench next to transformers (gpu_baseline.py's shapes)
if [ $dry = 1 ]; then
  cases=("sft gpt2-tiny --batch 2 --seq-len 64 --steps 2" "generate gpt2-tiny --batch 4 --prompt-len 16 --gen-len 16 --temperature 1.0 --steps 2")
  dt=fp32
else
  cases=("sft gpt2-small --batch 16 --seq-len 1024 --steps 5" "generate gpt2-small --batch 64 --prompt-len 128 --gen-len 128 --temperature 1.0"
         "sft qwen2-0.5b --batch 8 --seq-len 1024 --steps 5" "generate qwen2-0.5b --batch 64 --prompt-len 128 --gen-len 128 --temperature 1.0"
         "ppo gpt2-tiny --batch 64")
  dt=bf16
fi
: > "$OUT/bench.jsonl"
for c in "${cases[@]}"; do
  read -r task model rest <<< "$c"
  d=$dt
  [ "$task" = ppo ] && d=fp32
  timeout 150 "$bin" bench --task "$task" --model "$model" --device "$dev" --dtype "$d" $rest >> "$OUT/bench.jsonl" 2> "$OUT/bench-$task-$model.err" \
    || note "bench $c: rc=$? (see bench-$task-$model.err)"
done
note "bench done ($(elapsed))"
if [ $dry = 0 ] && [ -f bench/gpu_baseline.py ]; then
  timeout 240 $py bench/gpu_baseline.py "$OUT/baseline.json" > "$OUT/baseline.log" 2>&1
  note "gpu_baseline.py: rc=$? ($(elapsed))"
fi

# ---- table
$py - "$OUT" <<'EOF' | tee -a "$summary"
import json, os, sys
out = sys.argv[1]
ours = [json.loads(l) for l in open(f"{out}/bench.jsonl") if l.startswith("{")]
base = json.load(open(f"{out}/baseline.json")) if os.path.exists(f"{out}/baseline.json") else {}
names = {"gpt2-small": "gpt2-124M", "qwen2-0.5b": "qwen2.5-0.5B-shape"}
print(f"{'task':9} {'model':12} {'ours tok/s':>11} {'transformers':>13} {'ratio':>6}")
for r in ours:
    key = {"sft": "sft_step_bf16_autocast", "generate": "hf_generate_bf16"}.get(r["task"])
    b = base.get(f"{names.get(r['model'], r['model'])}.{key}", {})
    peer = b.get("tok_s") or b.get("new_tok_s")
    ratio = f"{r['tokens_per_s'] / peer:6.2f}" if peer else "     -"
    print(f"{r['task']:9} {r['model']:12} {r['tokens_per_s']:11.1f} {peer or float('nan'):13.1f} {ratio}"
          f"   ({r['dtype']}, B{r['batch']}, peak RSS {r['peak_rss_mb']} MB)")
EOF
exit 0
