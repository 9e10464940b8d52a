#!/usr/bin/env bash
# The GPU host session of tensor-parallel rollout engines (#8): the device collectives (with the stream variants the
# engine uses), a TP=2 GPU engine against the CPU engine (two ranks: host-staged on one GPU, NCCL with a GPU each),
# and the one-rank GPU engine's tests. Run from the repo root with dist/gpu.tar.gz carried (slime-hpc/lib of
# slurm/make_bundle.sh + slime-hpc/tests/{device_comm_test,cuda_engine_tp_test,cuda_engine_test}); logs under $OUT.
set -uo pipefail
OUT=${OUT:-/tmp/out}
SUMMARY_PATTERN="^(gpu engine|  follower|cuda engine|All tests|test cases|.*FAILED|.*failed)"
. regression/gpu_host/lib.sh
export SLIME_SOURCE_DIR=$PWD
mpi=(mpirun --allow-run-as-root --oversubscribe --bind-to none)
run device_comm_test "${mpi[@]}" -np 2 -x LD_LIBRARY_PATH -x NCCL_NVLS_ENABLE "$B/tests/device_comm_test" --use-colour no
run cuda_engine_tp_test "${mpi[@]}" -np 2 -x LD_LIBRARY_PATH -x NCCL_NVLS_ENABLE "$B/tests/cuda_engine_tp_test" --use-colour no
run cuda_engine_test "$B/tests/cuda_engine_test" --use-colour no
