#!/bin/bash
# Decode throughput on the GPU: the rollout engine (CUDA backend) against transformers' generate in the same call,
# with the ratio per shape and batch.
#   bash regression/bench/bench_decode.sh <build dir or folder holding bench_cuda_decode> [context] [steps] [batches]
set -euo pipefail
build=${1:?usage: bench_decode.sh <build dir> [context] [steps] [batches]}
context=${2:-1024}
steps=${3:-128}
batches=${4:-1,64,256}
here=$(cd "$(dirname "$0")" && pwd)
export NCCL_NVLS_ENABLE=0
bin=$build/regression/bench_cuda_decode
[ -x "$bin" ] || bin=$build/bench_cuda_decode  # a bundle's flat folder
slime=$("$bin" "$context" "$steps" "$batches")
echo "$slime"
if python3 -c "import torch, transformers" 2>/dev/null; then
  torch_out=$(python3 "$here/bench_torch_decode.py" "$context" "$steps" "$batches")
  echo "$torch_out"
  for shape in qwen2.5-0.5b qwen2.5-1.5b; do
    for b in ${batches//,/ }; do
      ours=$(echo "$slime" | sed -n "s/^slime $shape batch $b: decode \([0-9]*\) tokens\/s.*/\1/p")
      theirs=$(echo "$torch_out" | sed -n "s/^torch $shape batch $b: decode \([0-9]*\) tokens\/s.*/\1/p")
      [ -n "$ours" ] && [ -n "$theirs" ] && awk -v a="$ours" -v t="$theirs" -v s="$shape" -v b="$b" \
        'BEGIN { printf "ratio %s batch %s: slime %d / transformers %d tokens/s = %.2fx\n", s, b, a, t, a / t }'
    done
  done
else
  echo "(python3 with torch + transformers not found: no PyTorch peer)"
fi
