#!/usr/bin/env bash
# `rlhf bench` against the real trainers (TRL 1.16's SFTTrainer, RewardTrainer, DPOTrainer, GRPOTrainer and
# transformers 5.24's generate, bench/trl/trl_bench.py), side by side in one run, alternating run by run
# (bench/compare.sh), same shapes, batch, lengths, hyperparameters and threads. PPO's peer is
# ../shared/bench/torch_ref.py (TRL's PPO algorithm step by step: TRL 1.16 has no PPOTrainer).
#
# Two comparisons, each printed as a table of medians and ratios (ours / peer tokens per second, > 1: we are faster):
#   1. equal kernels: build-torch2/rlhf, which links the very libtorch of the venv's torch wheel (its MKL sgemm,
#      its OpenMP), against TRL on that same torch. Nothing differs below the two programs.
#   2. as installed: build/rlhf (Debian's libtorch 1.13 on OpenBLAS, the default of scripts/setup.sh) against the same
#      TRL run (PyPI's torch, MKL): what a user of each gets.
#
#   bash bench/trl/run.sh                    # both, the default cases, 3 repetitions, 2 threads
#   bash bench/trl/run.sh -r 1 -c "sft gpt2-tiny" -c "grpo llama-tiny"   # chosen cases
#   bash bench/trl/run.sh -k torch2          # only comparison 1 (-k debian: only 2)
# The venv (scripts/venv.sh) provides torch, transformers, trl; RLHF_VENV=path to use another. Logs: $LOGDIR.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
reps=3
kinds="torch2 debian"
cases=()
while getopts "r:c:k:h" o; do
  case $o in
    r) reps=$OPTARG ;;
    c) cases+=("$OPTARG") ;;
    k) kinds=$OPTARG ;;
    *) sed -n '2,17p' "$0"; exit 2 ;;
  esac
done
if [ ${#cases[@]} -eq 0 ]; then
  for m in gpt2-tiny llama-tiny; do
    cases+=("sft $m" "rm $m" "dpo $m" "generate $m" "grpo $m" "ppo $m")
  done
fi
py=$(bash "$root/scripts/venv.sh")
logdir=${LOGDIR:-/tmp/rlhf-bench-trl-$(date -u +%Y%m%dT%H%M%S)}
mkdir -p "$logdir"
echo "# $(date -u +%FT%TZ) $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}" \
     "torch $("$py" -c 'import torch;print(torch.__version__)') trl $("$py" -c 'import trl;print(trl.__version__)')"
for kind in $kinds; do
  case $kind in
    torch2) bin=$root/build-torch2/rlhf; what="build-torch2 (the venv's libtorch $("$py" -c 'import torch;print(torch.__version__)'))" ;;
    debian) bin=$root/build/rlhf; what="build (Debian's libtorch 1.13, OpenBLAS)" ;;
    *) echo "run.sh: -k takes torch2 and/or debian" >&2; exit 2 ;;
  esac
  [ -x "$bin" ] || { echo "run.sh: $bin is not built (bash scripts/setup.sh; RLHF_TORCH=pypi bash scripts/setup.sh)" >&2; exit 1; }
  echo "## ours: $what; peer: TRL on the venv's torch"
  trl_cases=() ppo_cases=()
  for c in "${cases[@]}"; do
    if [[ $c == ppo* ]]; then ppo_cases+=("$c"); else trl_cases+=("$c"); fi
  done
  if [ ${#trl_cases[@]} -gt 0 ]; then
    LOG=$logdir/$kind-trl.jsonl bash "$root/bench/compare.sh" -r "$reps" -b "$bin" -x "$py" -p "$here/trl_bench.py" "${trl_cases[@]}"
  fi
  if [ ${#ppo_cases[@]} -gt 0 ]; then
    echo "## PPO (peer: torch_ref.py, TRL's PPO step by step, on the venv's torch)"
    LOG=$logdir/$kind-ppo.jsonl bash "$root/bench/compare.sh" -r "$reps" -b "$bin" -x "$py" "${ppo_cases[@]}"
  fi
done
echo "# every run: $logdir"
