#!/usr/bin/env bash
# The GPU host session of the Hopper attention kernels (attention_sm90.cu): the attention cases of kernels_cuda_test
# on both kernel sets against the CPU, the attention benchmark (both sets), the CUDA decoder against the CPU, and the
# training-step benchmark with each set (SLIME_ATTENTION_KERNELS), plus its section profile. Run from the repo root
# with dist/gpu.tar.gz carried (slime-hpc/lib of slurm/make_bundle.sh + slime-hpc/tests/{kernels_cuda_test,
# cuda_decoder_test} + slime-hpc/bin/bench_cuda_train); logs under $OUT.
set -uo pipefail
OUT=${OUT:-/tmp/slime-hopper-attention}
SUMMARY_PATTERN="^(attention|slime|torch|device|cuda decoder|  bf16|test cases|All tests|FAILED|.*failed|  [a-zA-Z].* ms)"
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
export SLIME_SOURCE_DIR=$PWD
if [ -z "${SKIP_TESTS:-}" ]; then
run attention_tests "$B/tests/kernels_cuda_test" "attention*" --use-colour no
SLIME_ATTENTION_BENCH=1 run attention_bench "$B/tests/kernels_cuda_test" \
  "attention bf16 benchmark (SLIME_ATTENTION_BENCH=1)" --use-colour no
run cuda_decoder_test "$B/tests/cuda_decoder_test" --use-colour no
fi
if [ -z "${SKIP_BENCH:-}" ]; then
run bench_cuda_train "$B/bin/bench_cuda_train" 4096 10
SLIME_ATTENTION_KERNELS=portable run bench_cuda_train_portable "$B/bin/bench_cuda_train" 4096 10
SLIME_CUDA_PROFILE=1 run bench_cuda_train_profile "$B/bin/bench_cuda_train" 4096 5
fi
