#!/usr/bin/env bash
# The GPU host session of the CUDA rollout engine (#8): the paged-attention and sampling kernels against the CPU (and
# every other CUDA op), the engine against the CPU engine, the decode benchmark next to transformers' generate, and
# slime-train with the trainer and the engine on the GPU. Run from the repo root with dist/gpu.tar.gz carried
# (slime-hpc/{bin,lib} of slurm/make_bundle.sh + slime-hpc/tests/{kernels_cuda_test,cuda_engine_test,
# cuda_decoder_test} + slime-hpc/bin/{bench_cuda_decode}); logs under $OUT.
set -uo pipefail
OUT=${OUT:-/tmp/slime-cuda-rollout}
SUMMARY_PATTERN="^(paged|sampling|cuda engine|slime|torch|ratio|device|test cases|FAILED|grpo|sft|rollout engine on|.*failed|.*FAILED)"
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
[ -n "${SKIP_KERNELS:-}" ] || SLIME_PAGED_ATTENTION_BENCH=1 SLIME_SAMPLING_BENCH=1 run kernels_cuda_test \
  "$B/tests/kernels_cuda_test" --use-colour no
run cuda_engine_test "$B/tests/cuda_engine_test" --use-colour no
[ -n "${SKIP_BENCH:-}" ] || LIMIT=420 run bench_decode bash regression/bench/bench_decode.sh "$B/bin" "${CONTEXT:-1024}" \
  "${STEPS:-128}" "${BATCHES:-1,64,256}"
[ -n "${SKIP_RL:-}" ] || LIMIT=400 run trainer_backend_compare bash regression/gpu_host/trainer_backend_compare.sh \
  "$B/bin" "$PWD" /tmp/tbc
