#!/usr/bin/env bash
# The main job (make run) as a regression test: slurm/run_demo.sh from scratch (SFT, then GRPO, 1 trainer rank + 1
# rollout rank under mpirun). Asserts the issue's bar: evaluation accuracy after GRPO at least 20 points above the
# SFT starting point, the whole demo within 15 minutes, HDF5 checkpoints of both phases, metrics for every step.
# Usage: demo_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1
src=$2
out=$(mktemp -d /tmp/slime_demo.XXXXXX)
trap 'rm -rf "$out"' EXIT
start=$(date +%s)
bash "$src/slurm/run_demo.sh" "$build" "$out/run" >"$out/log" 2>&1 || { tail -40 "$out/log"; exit 1; }
seconds=$(( $(date +%s) - start ))
grep -E '^\[step (0|899|199)\]|eval/eval|^demo:' "$out/log" | grep -v '^\[step [0-9]*\] reward 0.000 resp_len' | tail -12
python3 - "$out/run/rl/metrics.jsonl" "$seconds" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
steps = [r for r in rows if "rollout_id" in r]
evals = [r["eval/eval"] for r in rows if "eval/eval" in r]
assert [r["rollout_id"] for r in steps] == list(range(200)), "a GRPO step is missing from metrics.jsonl"
gain = 100 * (evals[-1] - evals[0])
seconds = int(sys.argv[2])
print(f"demo_test: eval accuracy {100*evals[0]:.1f}% -> {100*evals[-1]:.1f}% ({gain:+.1f} points, need >= 20) "
      f"in {seconds} s (limit 900 s)")
assert gain >= 20, "GRPO gained less than 20 points of eval accuracy"
assert seconds <= 900, "the demo took longer than 15 minutes"
PY
[ "$(cat "$out/run/sft/latest_checkpointed_iteration.txt")" = 899 ] || { echo "no SFT checkpoint"; exit 1; }
[ "$(cat "$out/run/rl/latest_checkpointed_iteration.txt")" = 199 ] || { echo "no GRPO checkpoint"; exit 1; }
h5ls -r "$out/run/rl/iter_0000199/model.h5" | grep -q "linear_qkv" || { echo "GRPO checkpoint unreadable"; exit 1; }
echo "demo_test: passed"
