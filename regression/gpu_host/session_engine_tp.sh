set -uo pipefail
OUT=${OUT:-/tmp/out}
SUMMARY_PATTERN="^(gpu engine|  follower|cuda engine|All tests|test cases|.*FAILED|.*failed)"
. regression/gpu_host/lib.sh
export SLIME_SOURCE_DIR=$PWD
mpi=(mpirun --allow-run-as-root --oversubscribe --bind-to none)
run device_comm_test "${mpi[@]}" -np 2 -x LD_LIBRARY_PATH -x NCCL_NVLS_ENABLE "$B/tests/device_comm_test" --use-colour no
run cuda_engine_tp_test "${mpi[@]}" -np 2 -x LD_LIBRARY_PATH -x NCCL_NVLS_ENABLE "$B/tests/cuda_engine_tp_test" --use-colour no
run cuda_engine_test "$B/tests/cuda_engine_test" --use-colour no
