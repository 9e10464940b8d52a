#!/usr/bin/env bash
# The GPU host session of the CUDA training backend (#7): every CUDA op against the CPU, the CUDA decoder against the
# CPU decoder, the attention kernel's speed, and the training-step benchmark next to PyTorch. Run from the repo root
# with dist/gpu.tar.gz (slime-hpc/lib + slime-hpc/tests/{kernels_cuda_test,cuda_decoder_test} +
# slime-hpc/bin/bench_cuda_train) carried; logs under $OUT.
set -uo pipefail
OUT=${OUT:-/tmp/slime-cuda-train}
SUMMARY_PATTERN="^(profile|attention|qkv|embedding|logprob|rmsnorm|gemm NN|swiglu|rope|adamw|cuda |recompute|step|20 steps|slime|torch|ratio|device|test cases|FAILED|.*failed)"
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
run kernels_cuda_test "$B/tests/kernels_cuda_test" --use-colour no
run cuda_decoder_test "$B/tests/cuda_decoder_test" --use-colour no
SLIME_ATTENTION_BENCH=1 run attention_bench "$B/tests/kernels_cuda_test" --use-colour no "*bench*"
LIMIT=400 run bench_train bash regression/bench/bench_train.sh "$B/bin" 4096 10
SLIME_BENCH_RECOMPUTE=full run bench_recompute_full "$B/bin/bench_cuda_train" 4096 5
SLIME_CUDA_PROFILE=1 run bench_profile "$B/bin/bench_cuda_train" 4096 3
grep -A24 "^profile" "$OUT/bench_profile.log" | tee -a "$OUT/summary.txt"
