#!/usr/bin/env bash
# slime-train's observability and debug outputs on a short GRPO run of the demo task (1 trainer rank + 1 rollout
# rank, 4 steps, evaluation, a checkpoint):
#   --use-tensorboard: the event file, read back by the independent reader (read_tfevents.py), holds every numeric
#       metric of every metrics.jsonl line at its step, with the value rounded to float32;
#   --trace-dir: trace.json is valid Chrome trace JSON (a list of events with ph/ts/pid), covers both ranks and every
#       phase (rollout generate / reward / eval, buffer put / take, train forward / backward / optimizer and the
#       log-prob passes, weight sync, checkpoint save);
#   --save-debug-rollout-data, then --load-debug-rollout-data on the trainer alone: every train/* metric of every
#       step equals the original run's bit for bit; a missing file is a clear error;
#   --debug-rollout-only (2 engines, no trainer) saving rollouts that a trainer-only run then trains on.
# Usage: observability_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1
src=$2
data=$src/inputs/demo
out=$(mktemp -d /tmp/slime_obs_run.XXXXXX)
trap 'rm -rf "$out"' EXIT
export OPENBLAS_NUM_THREADS=1 SLIME_PROGRESS=0
mpi=(mpirun --allow-run-as-root --oversubscribe --bind-to none)
"$build/slime-convert" init-random --config "$data/model/config.json" --tokenizer-dir "$data/model" \
  --out "$out/model" --seed 1 --std 0.02 >/dev/null
grpo=(--hf-checkpoint "$out/model" --ref-load "$out/model" --prompt-data "$data/train.jsonl" --input-key prompt
      --label-key label --apply-chat-template --rollout-shuffle --rollout-seed 1 --seed 1 --rm-type arithmetic
      --advantage-estimator grpo --rollout-batch-size 16 --n-samples-per-prompt 8 --num-rollout 4
      --rollout-max-response-len 6 --rollout-temperature 1.0 --lr 1e-3 --use-kl-loss --kl-loss-coef 0.01
      --sglang-max-total-tokens 16384 --micro-batch-size 64 --actor-num-nodes 1 --actor-num-gpus-per-node 1)

echo "== run: TensorBoard, trace, saved rollouts"
"${mpi[@]}" -np 2 "$build/slime-train" "${grpo[@]}" --rollout-num-gpus 1 --save "$out/run" --save-interval 2 \
  --eval-prompt-data eval "$data/eval.jsonl" --eval-interval 2 --use-tensorboard --trace-dir "$out/trace" \
  --save-debug-rollout-data "$out/rollouts/rollout_{rollout_id}.bin" >"$out/run.log" 2>&1 ||
  { tail -30 "$out/run.log"; exit 1; }
ls "$out/rollouts"

echo "== replay: --load-debug-rollout-data, trainer only"
"${mpi[@]}" -np 1 "$build/slime-train" "${grpo[@]}" --save "$out/replay" \
  --load-debug-rollout-data "$out/rollouts/rollout_{rollout_id}.bin" >"$out/replay.log" 2>&1 ||
  { tail -30 "$out/replay.log"; exit 1; }
grep -c 'samples replayed from' "$out/replay.log"

echo "== replay of a missing file"
if "${mpi[@]}" -np 1 "$build/slime-train" "${grpo[@]}" --load-debug-rollout-data "$out/nowhere/r_{rollout_id}.bin" \
  >"$out/missing.log" 2>&1; then echo "a missing rollout file was accepted"; exit 1; fi
grep -o "no such debug rollout file[^)]*)" "$out/missing.log" | head -1

echo "== slime's split debugging: --debug-rollout-only on 2 engines saves 2 rollouts, a trainer replays them"
"${mpi[@]}" -np 2 "$build/slime-train" "${grpo[@]}" --num-rollout 2 --debug-rollout-only --rollout-num-gpus 2 \
  --metrics-file "$out/rollout_only/metrics.jsonl" --save-debug-rollout-data "$out/ro/r_{rollout_id}.bin" \
  >"$out/rollout_only.log" 2>&1 || { tail -30 "$out/rollout_only.log"; exit 1; }
grep -q 'debug-rollout-only, 2 rollout engine(s), no trainer' "$out/rollout_only.log"
"${mpi[@]}" -np 1 "$build/slime-train" "${grpo[@]}" --num-rollout 2 --load-debug-rollout-data "$out/ro/r_{rollout_id}.bin" \
  --metrics-file "$out/ro_train/metrics.jsonl" >"$out/ro_train.log" 2>&1 || { tail -30 "$out/ro_train.log"; exit 1; }
python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
gen = [json.loads(l) for l in open(f"{out}/rollout_only/metrics.jsonl") if '"rollout_id"' in l]
train = [json.loads(l) for l in open(f"{out}/ro_train/metrics.jsonl") if '"rollout_id"' in l]
assert len(gen) == 2 and not any(k.startswith("train/") for r in gen for k in r), "rollout-only run trained?"
assert len(train) == 2 and all("train/loss" in r for r in train), "replay did not train"
for g, t in zip(gen, train):  # the replayed rollout's metrics are the saved ones
    assert g["rollout/raw_reward"] == t["rollout/raw_reward"], (g, t)
print(f"rollout only: rewards {[g['rollout/raw_reward'] for g in gen]}; replayed and trained: losses "
      f"{[t['train/loss'] for t in train]}")
PY

python3 "$src/regression/obs/read_tfevents.py" "$out"/run/tensorboard/events.out.tfevents.* >"$out/tb.json"
python3 - "$out" <<'PY'
import json, struct, sys
out = sys.argv[1]
f32 = lambda x: struct.unpack("<f", struct.pack("<f", x))[0]

# TensorBoard: every numeric metric of every line, at its step.
rows = [json.loads(l) for l in open(f"{out}/run/metrics.jsonl")]
tb = json.load(open(f"{out}/tb.json"))
checked = 0
for r in rows:
    step = r.get("rollout_id", 0)
    for k, v in r.items():
        if k == "rollout_id" or not isinstance(v, (int, float)) or isinstance(v, bool):
            continue
        points = dict((s, val) for s, val in tb.get(k, []))
        assert step in points, f"TensorBoard: {k} missing at step {step}"
        assert points[step] == f32(v) or (v != v and points[step] != points[step]), f"{k}@{step}: {points[step]} != {v}"
        checked += 1
print(f"tensorboard: {checked} values of {len(rows)} metrics lines found, {len(tb)} tags")

# Trace: valid JSON, both ranks, every phase.
events = json.load(open(f"{out}/trace/trace.json"))
assert isinstance(events, list) and events, "trace.json is not a list of events"
for e in events:
    assert "ph" in e and "pid" in e and ("ts" in e or e["ph"] == "M"), f"malformed event {e}"
spans = {(e["pid"], e["cat"], e["name"]) for e in events if e["ph"] == "X"}
want = {0: [("buffer", "take"), ("buffer", "allgather"), ("train", "train_rollout"), ("train", "forward"),
            ("train", "backward"), ("train", "optimizer"), ("train", "old_log_probs"), ("train", "ref_log_probs"),
            ("sync", "update_weights"), ("save", "checkpoint"), ("buffer", "take_eval")],
        1: [("rollout", "generate"), ("rollout", "reward"), ("rollout", "eval"), ("buffer", "put"),
            ("rollout", "save_debug_rollout_data"), ("sync", "update_weights")]}
for pid, phases in want.items():
    for cat, name in phases:
        assert (pid, cat, name) in spans, f"trace: rank {pid} has no {cat}/{name} span"
steps = {e["name"] for e in events if e["ph"] == "X" and e["cat"] == "step"}
assert steps == {f"step {k}" for k in range(4)}, steps
names = {e["pid"]: e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "process_name"}
print(f"trace: {len(events)} events, ranks {names}, {len(spans)} (rank, phase) spans")

# Replay: the training metrics of every step, bit for bit.
a = [r for r in rows if "rollout_id" in r]
b = [json.loads(l) for l in open(f"{out}/replay/metrics.jsonl")]
b = [r for r in b if "rollout_id" in r]
assert len(a) == len(b) == 4
n = 0
for ra, rb in zip(a, b):
    for k in ra:
        if k.startswith("train/"):
            assert ra[k] == rb[k], f"step {ra['rollout_id']}: {k} {ra[k]!r} != replay {rb[k]!r}"
            n += 1
print(f"replay: {n} train/* values of 4 steps equal bit for bit; losses {[r['train/loss'] for r in a]}")
PY
echo "observability_test: passed"
