#!/bin/bash
# One training step on the GPU, slime-hpc against PyTorch + transformers in the same call, with the ratio.
#   bash regression/bench/bench_train.sh <build dir or folder holding bench_cuda_train> [tokens] [steps]
set -euo pipefail
build=${1:?usage: bench_train.sh <build dir> [tokens] [steps]}
tokens=${2:-4096}
steps=${3:-10}
here=$(cd "$(dirname "$0")" && pwd)
export NCCL_NVLS_ENABLE=0
bin=$build/regression/bench_cuda_train
[ -x "$bin" ] || bin=$build/bench_cuda_train  # a bundle's flat folder
slime=$("$bin" "$tokens" "$steps")
echo "$slime"
if python3 -c "import torch, transformers" 2>/dev/null; then
  torch_out=$(python3 "$here/bench_torch_train.py" "$tokens" "$steps")
  echo "$torch_out"
  for shape in qwen2.5-0.5b qwen2.5-1.5b; do
    ours=$(echo "$slime" | sed -n "s/^slime $shape: .* \([0-9]*\) tokens\/s.*/\1/p")
    theirs=$(echo "$torch_out" | sed -n "s/^torch $shape: .* \([0-9]*\) tokens\/s.*/\1/p")
    [ -n "$ours" ] && [ -n "$theirs" ] && awk -v a="$ours" -v b="$theirs" -v s="$shape" \
      'BEGIN { printf "ratio %s: slime %d / torch %d tokens/s = %.2fx\n", s, a, b, a / b }'
  done
else
  echo "(python3 with torch + transformers not found: no PyTorch peer)"
fi
