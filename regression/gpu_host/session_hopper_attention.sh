#!/usr/bin/env bash
# The GPU host session of the 1.5B step's MFU work (#7): the Hopper attention kernels (attention_sm90.cu) and the
# fused RMSNorm / AdamW / lazy gradient zeroing. Every CUDA op against the CPU (kernels_cuda_test, attention on both
# kernel sets), the attention benchmark (both sets), the CUDA decoder and the GPU trainer against the CPU (one rank
# and TP=2, DP=2 on a shared GPU), the GPU engine (its prefill runs the same attention), the training step next to
# PyTorch (bench_train.sh prints the ratio), the step with the portable attention kernels, its section profile, and
# the GPU trainer benchmark. Run from the repo root with dist/gpu.tar.gz carried: slime-hpc/lib of
# slurm/make_bundle.sh + slime-hpc/tests/{kernels_cuda_test,cuda_decoder_test,cuda_decoder_tp_test,trainer_cuda_test,
# cuda_engine_test} + slime-hpc/bin/{bench_cuda_train,bench_gpu_trainer}; logs under $OUT. SKIP_TESTS / SKIP_BENCH
# leave parts out.
set -uo pipefail
OUT=${OUT:-/tmp/slime-hopper-attention}
SUMMARY_PATTERN="^(attention|adamw|rmsnorm|slime|torch|ratio|device|cuda decoder|cuda engine|one rank|DP=|TP=|test cases|All tests|FAILED|.*failed|  [a-zA-Z].* ms )"
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
export SLIME_SOURCE_DIR=$PWD
mpi=(mpirun --allow-run-as-root --oversubscribe --bind-to none -x LD_LIBRARY_PATH -x NCCL_NVLS_ENABLE -x SLIME_SOURCE_DIR)
if [ -z "${SKIP_TESTS:-}" ]; then
run kernels_cuda_test "$B/tests/kernels_cuda_test" --use-colour no
SLIME_ATTENTION_BENCH=1 run attention_bench "$B/tests/kernels_cuda_test" \
  "attention bf16 benchmark (SLIME_ATTENTION_BENCH=1)" --use-colour no
run cuda_decoder_test "$B/tests/cuda_decoder_test" --use-colour no
run cuda_decoder_tp_test "${mpi[@]}" -np 2 "$B/tests/cuda_decoder_tp_test" --use-colour no
run trainer_cuda_test "${mpi[@]}" -np 2 "$B/tests/trainer_cuda_test" --use-colour no
run cuda_engine_test "$B/tests/cuda_engine_test" --use-colour no
fi
if [ -z "${SKIP_BENCH:-}" ]; then
LIMIT=400 run bench_train bash regression/bench/bench_train.sh "$B/bin" 4096 10
SLIME_ATTENTION_KERNELS=portable run bench_cuda_train_portable "$B/bin/bench_cuda_train" 4096 10
SLIME_CUDA_PROFILE=1 run bench_cuda_train_profile "$B/bin/bench_cuda_train" 4096 5
LIMIT=300 run bench_gpu_trainer "$B/bin/bench_gpu_trainer" 4
fi
