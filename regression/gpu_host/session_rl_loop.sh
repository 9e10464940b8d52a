#!/usr/bin/env bash
# GPU-host session for the RL loop (run through the device tool from the repo root, with dist/ carried): the data
# buffer and weight-sync MPI tests with 4 ranks, then the whole rl_loop_test (sync, async, colocate, two engines,
# SIGKILL + resume, bad launches) from the relocatable bundle under the site's Open MPI, whose one-sided transport
# differs from Debian's. Everything lands in $OUT/session.log.
set -uo pipefail
export NCCL_NVLS_ENABLE=0 OPENBLAS_NUM_THREADS=1
OUT=${OUT:-/tmp/slime-out}
mkdir -p "$OUT"
exec > >(tee "$OUT/session.log") 2>&1
mkdir -p /tmp/bundle && tar xzf dist/slime-hpc.tar.gz -C /tmp/bundle
B=/tmp/bundle/slime-hpc
export LD_LIBRARY_PATH="$B/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
echo "host: $(nproc) cores, $(mpirun --version | head -1); osc components: $(ompi_info 2>/dev/null | grep -o 'MCA osc: [a-z0-9]*' | tr '\n' ' ')"
status=0
for t in buffer_test sync_test; do
  echo "=== $t (4 ranks)"
  mpirun --allow-run-as-root --oversubscribe -np 4 "$B/tests/$t" --use-colour no 2>&1 | tail -15 || status=1
done
echo "=== rl_loop_test from the bundle"
start=$(date +%s)
bash regression/rl/rl_loop_test.sh "$B/bin" "$PWD" || status=1
echo "rl_loop_test: $(( $(date +%s) - start )) s"
echo "session status: $status"
exit $status
