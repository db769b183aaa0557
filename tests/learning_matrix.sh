#!/usr/bin/env bash
# The learning tests under every OpenBLAS kernel choice and thread count (issue 12): the evidence behind the
# thresholds in tests/test_ppo_learn.cpp and tests/test_demo.cpp. Prints each run's statistics and verdict.
#   BUILD=build bash tests/learning_matrix.sh                      # all of PPOLearn and Demo, 4 kernels x 2 threads
#   CORES="Haswell unset" THREADS="1" SEEDS=9 bash tests/learning_matrix.sh
#   TESTS="test_train_algos test_train_cli" bash tests/learning_matrix.sh   # the supervised trainers' trajectories
# SEEDS sets RLHF_LEARN_SEEDS (more seeds than the tests' 5, to measure the spread). Not run by ctest: it is the
# same tests eight times over (about 8 x 3 minutes on 2 cores).
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${BUILD:-$root/build}"
cores="${CORES:-Prescott Haswell SkylakeX unset}"
threads="${THREADS:-1 2}"
tests="${TESTS:-test_ppo_learn test_demo}"
fails=0
for core in $cores; do
  for t in $threads; do
    for exe in $tests; do
      if [[ $core == unset ]]; then envs=(-u OPENBLAS_CORETYPE); else envs=(OPENBLAS_CORETYPE="$core"); fi
      envs+=(OMP_NUM_THREADS="$t")
      [[ -n "${SEEDS:-}" ]] && envs+=(RLHF_LEARN_SEEDS="$SEEDS")
      start=$SECONDS
      log="$(cd "$build" && env "${envs[@]}" "./$exe" 2>&1)"
      rc=$?
      (( rc != 0 )) && fails=$((fails + 1))
      echo "=== $exe  OPENBLAS_CORETYPE=$core  threads=$t  rc=$rc  $((SECONDS - start)) s"
      grep -E "median|^demo seed|^\[(sft|dpo)\]|^\[reward |FAILED|Failure" <<<"$log" | grep -v "^\[  FAILED  \] [0-9]* test" | sed 's/^/  /'
    done
  done
done
echo "runs failed: $fails"
exit $(( fails > 0 ))
