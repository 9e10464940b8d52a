#!/usr/bin/env bash
# The GPU host session of the GPU-resident trainer (#7) and weight sync on the GPU (#8): the device collectives, the
# trainer with --backend cuda against the CPU trainer (one rank, DP=2 and TP=2 on a shared GPU through host-staged
# MPI, DP=1 through NCCL's one-rank communicator), the CUDA decoder with TP=2 against the CPU decoder, weight sync into GPU engines (two ranks, and colocated), the CUDA decoder and
# optimizer against the CPU, the trainer, training-step and weight-sync benchmarks, and slime-train on both backends. Run from the repo root with dist/gpu.tar.gz carried (slime-hpc/{bin,lib} of
# slurm/make_bundle.sh + slime-hpc/tests/{device_comm_test,trainer_cuda_test,device_weight_sync_test,
# cuda_decoder_test,cuda_decoder_tp_test,kernels_cuda_test} + slime-hpc/bin/{bench_gpu_trainer,bench_cuda_train,bench_weight_sync});
# logs under $OUT.
set -uo pipefail
OUT=${OUT:-/tmp/slime-gpu-trainer}
SUMMARY_PATTERN="^(slime|rollout [0-9]|weights to host|host path|device|adamw|weight sync|rank [0-9]:|one rank|DP=|TP=|cuda decoder|  bf16|tensor-parallel|compute_gradients|resume|test cases|All tests|FAILED|grpo|sft|.*failed|.*FAILED|   [0-9]+ s|   weight syncs)"
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
export SLIME_SOURCE_DIR=$PWD
mpi=(mpirun --allow-run-as-root --oversubscribe --bind-to none)
if [ -z "${SKIP_TESTS:-}" ]; then
run device_comm_test "${mpi[@]}" -np 2 -x LD_LIBRARY_PATH -x NCCL_NVLS_ENABLE "$B/tests/device_comm_test" --use-colour no
run trainer_cuda_test "${mpi[@]}" -np 2 -x LD_LIBRARY_PATH -x SLIME_SOURCE_DIR -x NCCL_NVLS_ENABLE \
  "$B/tests/trainer_cuda_test" --use-colour no
run trainer_cuda_test_nccl1 "${mpi[@]}" -np 1 -x LD_LIBRARY_PATH -x SLIME_SOURCE_DIR -x NCCL_NVLS_ENABLE \
  -x SLIME_DEVICE_COMM=nccl "$B/tests/trainer_cuda_test" --use-colour no
run device_weight_sync_test "${mpi[@]}" -np 3 -x LD_LIBRARY_PATH -x NCCL_NVLS_ENABLE \
  "$B/tests/device_weight_sync_test" --use-colour no
run device_weight_sync_test_colocated "${mpi[@]}" -np 1 -x LD_LIBRARY_PATH -x NCCL_NVLS_ENABLE \
  "$B/tests/device_weight_sync_test" --use-colour no
run cuda_decoder_test "$B/tests/cuda_decoder_test" --use-colour no
run cuda_decoder_tp_test "${mpi[@]}" -np 2 -x LD_LIBRARY_PATH -x NCCL_NVLS_ENABLE "$B/tests/cuda_decoder_tp_test" \
  --use-colour no
[ -n "${SKIP_KERNELS:-}" ] || run kernels_cuda_test "$B/tests/kernels_cuda_test" --use-colour no
fi
if [ -z "${SKIP_BENCH:-}" ]; then
LIMIT=300 run bench_gpu_trainer "$B/bin/bench_gpu_trainer" 4
run bench_cuda_train "$B/bin/bench_cuda_train" 4096 10
LIMIT=200 run bench_weight_sync "${mpi[@]}" -np 2 -x LD_LIBRARY_PATH -x NCCL_NVLS_ENABLE "$B/bin/bench_weight_sync" 1.5b
fi
# SKIP_TESTS / SKIP_BENCH / SKIP_RL leave parts out (one device call has 10 minutes).
[ -n "${SKIP_RL:-}" ] || LIMIT=400 run trainer_backend_compare bash regression/gpu_host/trainer_backend_compare.sh \
  "$B/bin" "$PWD" /tmp/tbc
