#!/usr/bin/env bash
# Runs every test binary of a relocatable bundle (slurm/make_bundle.sh BUILD dist --with-tests) on another machine:
# plain tests directly, MPI tests under the site's mpirun with 2 ranks, GPU tests when a GPU is visible. Used on the
# GPU host through the device tool, from the repo root (golden files and fixtures come from the working tree).
# Usage: regression/gpu_host/run_bundle_tests.sh [bundle.tar.gz]   -> summary on stdout, logs under $OUT
set -uo pipefail
export NCCL_NVLS_ENABLE=0 OPENBLAS_NUM_THREADS=4 SLIME_SOURCE_DIR=$PWD
OUT=${OUT:-/tmp/slime-bundle-tests}
mkdir -p "$OUT" /tmp/bundle
tar xzf "${1:-dist/slime-hpc.tar.gz}" -C /tmp/bundle
B=/tmp/bundle/slime-hpc
export LD_LIBRARY_PATH="$B/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
mpi_tests="checkpoint_test model_tp_test whiten_mpi_test trainer_test convert_test"
failed=0
{
  echo "host: $(hostname) $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2) | $(mpirun --version | head -1)"
  nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null || echo "no GPU"
} | tee "$OUT/summary.txt"
for t in "$B"/tests/*_test; do
  name=$(basename "$t")
  if [[ $name == tokenizer_test && ! -d .fixtures/npm ]]; then
    printf '%-22s %s\n' "$name" "skipped (tokenizer fixtures not carried)" | tee -a "$OUT/summary.txt"
    continue
  fi
  if [[ " $mpi_tests " == *" $name "* ]]; then
    cmd=(mpirun --allow-run-as-root --oversubscribe -np 2 "$t" --use-colour no)
  else
    cmd=("$t" --use-colour no)
  fi
  if "${cmd[@]}" > "$OUT/$name.log" 2>&1; then
    result=$(grep -E "All tests passed" "$OUT/$name.log" | tail -1)
  else
    result="FAILED (see $name.log)"
    failed=$((failed + 1))
  fi
  printf '%-22s %s\n' "$name" "$result" | tee -a "$OUT/summary.txt"
done
grep -h "^rmsnorm\|^hf_parity" "$OUT"/*.log | tee -a "$OUT/summary.txt"
# Keep only the summary and the logs of failures (the device tool returns at most 8 files).
for f in "$OUT"/*.log; do grep -q "FAILED\|failed" "$f" || rm -f "$f"; done
echo "failed: $failed" | tee -a "$OUT/summary.txt"
exit $failed
