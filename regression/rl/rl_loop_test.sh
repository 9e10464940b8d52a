#!/usr/bin/env bash
# slime-train end to end on the demo task (inputs/demo: 2-digit addition, a 0.8M-parameter model): a short SFT on
# the trainer pool alone (--debug-train-only: trainer rank 0 runs slime's SFT rollout), then short GRPO runs in
# each loop: synchronous (1 trainer rank + 1 rollout rank), asynchronous (--train-async, with TIS since its samples
# are one weight version old), colocated (2 ranks, both pools, DP=2), disaggregated with 2 engines, and with one
# tensor-parallel engine over 2 ranks (--rollout-num-gpus-per-engine 2); and 4 steps colocated with a TP=2 trainer
# and one TP=2 engine over the same ranks, every weight sync checked equal. Each must
# raise the evaluation reward by 3 points and the training reward (last 5 steps over the first 5). (The engine
# count changes each engine's batches, hence float rounding in the logits, which can flip a rare sampled token:
# the 1- and 2-engine runs are alike but not bitwise equal.) Then the crash test: the synchronous run again, one
# rank SIGKILLed once a mid-run checkpoint exists, restarted with --load: the metrics of every step (all but perf/*)
# must equal the uninterrupted run's bit for bit.
# Bad launches: a world size that does not match the pools, --train-async with --colocate.
# Usage: rl_loop_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1
src=$2
data=$src/inputs/demo
out=$(mktemp -d /tmp/slime_rl_loop.XXXXXX)
trap 'rm -rf "$out"' EXIT
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
mpi=(mpirun --allow-run-as-root --oversubscribe --bind-to none)
train=$build/slime-train

"$build/slime-convert" init-random --config "$data/model/config.json" --tokenizer-dir "$data/model" \
  --out "$out/model" --seed 1 --std 0.02 >/dev/null

echo "== SFT, trainer pool only"
"${mpi[@]}" -np 1 "$train" --hf-checkpoint "$out/model" --actor-num-nodes 1 --actor-num-gpus-per-node 1 \
  --debug-train-only --rollout-function-path slime.rollout.sft_rollout.generate_rollout --loss-type sft_loss \
  --disable-compute-advantages-and-returns --prompt-data "$data/sft.jsonl" --input-key messages --rollout-shuffle \
  --rollout-seed 1 \
  --rollout-batch-size 32 --micro-batch-size 32 --num-rollout 900 --lr 1e-3 --lr-decay-style constant --weight-decay 0 --clip-grad 1.0 \
  --seed 1 --save "$out/sft" --save-interval 900 >"$out/sft.log" 2>&1 || { tail -30 "$out/sft.log"; exit 1; }
grep "^\[step 899\]" "$out/sft.log"
[ "$(cat "$out/sft/latest_checkpointed_iteration.txt")" = 899 ] || { echo "SFT checkpoint missing"; exit 1; }

grpo=(--hf-checkpoint "$out/model" --ref-load "$out/sft" --prompt-data "$data/train.jsonl" --input-key prompt
      --label-key label --apply-chat-template --rollout-shuffle --rollout-seed 1 --seed 1 --rm-type arithmetic
      --advantage-estimator grpo --rollout-batch-size 16 --n-samples-per-prompt 8
      --num-rollout 40 --rollout-max-response-len 6 --rollout-temperature 1.0 --lr 2e-4 --lr-warmup-iters 10
      --lr-decay-style constant --weight-decay 0 --clip-grad 1.0 --eps-clip 0.2 --eps-clip-high 0.28
      --sglang-max-total-tokens 16384 --eval-prompt-data eval "$data/eval.jsonl" --eval-interval 20)
one_trainer=(--actor-num-nodes 1 --actor-num-gpus-per-node 1 --rollout-num-gpus 1 --micro-batch-size 128)

# The run must learn: the evaluation reward (held-out prompts, before training -> after the last step) rises by at
# least 3 points and the mean training reward of the last 5 steps exceeds that of the first 5.
check_rise() {
  python3 - "$1" "$2" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
r = [x["rollout/raw_reward"] for x in rows if "rollout_id" in x]
ev = [x["eval/eval"] for x in rows if "eval/eval" in x]
first, last = sum(r[:5]) / 5, sum(r[-5:]) / 5
print(f"{sys.argv[2]}: eval reward {ev[0]:.3f} -> {ev[-1]:.3f}; training reward first 5 steps {first:.3f} -> "
      f"last 5 steps {last:.3f} ({len(r)} steps)")
sys.exit(0 if ev[-1] >= ev[0] + 0.03 and last > first else 1)
PY
}

run_mode() {  # name, ranks, options...
  local name=$1 np=$2
  shift 2
  echo "== GRPO, $name"
  "${mpi[@]}" -np "$np" "$train" "${grpo[@]}" "$@" --save "$out/$name" >"$out/$name.log" 2>&1 ||
    { tail -30 "$out/$name.log"; exit 1; }
  grep '^\[step 39\]' "$out/$name.log"
  check_rise "$out/$name/metrics.jsonl" "$name"
}
run_mode sync 2 "${one_trainer[@]}" --save-interval 10
run_mode async 2 "${one_trainer[@]}" --train-async --use-tis  # TIS: the samples are one version behind
grep -q 'asynchronous loop' "$out/async.log" || { echo "async: not the asynchronous loop"; exit 1; }
run_mode colocate 2 --actor-num-nodes 1 --actor-num-gpus-per-node 2 --colocate --micro-batch-size 64 \
  --check-weight-update-equal
grep -q 'colocated with 2 rollout engine' "$out/colocate.log" || { echo "colocate: wrong layout"; exit 1; }
run_mode two_engines 3 --actor-num-nodes 1 --actor-num-gpus-per-node 1 --rollout-num-gpus 2 --micro-batch-size 128
run_mode tp_engine 3 --actor-num-nodes 1 --actor-num-gpus-per-node 1 --rollout-num-gpus 2 \
  --rollout-num-gpus-per-engine 2 --micro-batch-size 128
grep -q '1 engine(s) of 2 rank(s)' "$out/tp_engine.log" || { echo "tp_engine: wrong layout"; exit 1; }

# (--make-vocab-size-divisible-by 64: TP=2 pads the vocabulary to 64 x 2, the size the TP=1 SFT reference has.)
echo "== colocated, one tensor-parallel engine over both ranks (TP=2 trainer, --offload-rollout), 4 steps"
"${mpi[@]}" -np 2 "$train" "${grpo[@]}" --num-rollout 4 --eval-interval 2 --actor-num-nodes 1 \
  --actor-num-gpus-per-node 2 --colocate --tensor-model-parallel-size 2 --make-vocab-size-divisible-by 64 \
  --rollout-num-gpus-per-engine 2 --offload-rollout --micro-batch-size 64 --check-weight-update-equal >"$out/colocate_tp.log" 2>&1 ||
  { tail -30 "$out/colocate_tp.log"; exit 1; }
grep -q 'colocated with 1 rollout engine(s) of 2 rank(s)' "$out/colocate_tp.log" || { echo "colocate_tp: wrong layout"; exit 1; }
[ "$(grep -c "engines hold the trainer's weights" "$out/colocate_tp.log")" = 5 ] ||
  { echo "colocate_tp: not every sync checked equal"; exit 1; }
grep '^\[step 3\]' "$out/colocate_tp.log"

echo "== crash and resume"
crash=(--save "$out/crash" --load "$out/crash" --save-interval 10)
"${mpi[@]}" -np 2 "$train" "${grpo[@]}" "${one_trainer[@]}" "${crash[@]}" >"$out/crash1.log" 2>&1 &
launcher=$!
for _ in $(seq 1 6000); do
  it=$(cat "$out/crash/latest_checkpointed_iteration.txt" 2>/dev/null || echo -1)
  [ "$it" -ge 19 ] && break
  sleep 0.02
done
sleep 1.5  # into the steps after the checkpoint: they are lost and redone
victim=$(pgrep -f "^[^ ]*slime-train .*--save $out/crash" | tail -1 || true)  # a rank, not mpirun
[ -n "$victim" ] || { echo "no rank to kill (the run ended before step 19?)"; tail "$out/crash1.log"; exit 1; }
kill -9 "$victim"
if wait "$launcher"; then echo "the killed run exited 0"; exit 1; fi
done_steps=$(grep -c '"rollout_id"' "$out/crash/metrics.jsonl")
saved=$(cat "$out/crash/latest_checkpointed_iteration.txt")
echo "killed rank pid $victim after $done_steps logged steps; last checkpoint: iteration $saved"
[ "$done_steps" -lt 40 ] || { echo "the run finished before the kill"; exit 1; }
"${mpi[@]}" -np 2 "$train" "${grpo[@]}" "${one_trainer[@]}" "${crash[@]}" >"$out/crash2.log" 2>&1 ||
  { tail -30 "$out/crash2.log"; exit 1; }
grep -q "rollout steps $((saved + 1)) .. 39 (resumed" "$out/crash2.log" || { echo "did not resume after $saved"; grep 'rollout steps' "$out/crash2.log"; exit 1; }
python3 - "$out/sync/metrics.jsonl" "$out/crash/metrics.jsonl" <<'PY'
import json, sys
def lines(path):
    for line in open(path):
        row = json.loads(line)
        if "rollout_id" in row:
            yield row["rollout_id"], {k: v for k, v in row.items() if not k.startswith("perf/")}
ref = dict(lines(sys.argv[1]))
got = list(lines(sys.argv[2]))
assert sorted(set(k for k, _ in got)) == sorted(ref) == list(range(40)), "steps missing"
for k, row in got:  # the killed run's lines, the redone steps and the resumed run's lines
    assert row == ref[k], f"step {k} differs: " + str({m: (ref[k].get(m), row.get(m)) for m in set(row) | set(ref[k]) if ref[k].get(m) != row.get(m)})
redone = len(got) - len(ref)
print(f"resumed run == uninterrupted run: all 40 steps bit for bit (rewards, losses, KL, grad norms, eval); "
      f"{redone} step(s) after the checkpoint were redone identically")
PY

echo "== bad launches"
if "${mpi[@]}" -np 3 "$train" "${grpo[@]}" "${one_trainer[@]}" >"$out/bad1.log" 2>&1; then exit 1; fi
grep -q "world size 3 does not match the options: .* = 2 ranks (mpirun -np 2)" "$out/bad1.log" ||
  { cat "$out/bad1.log" | grep error; exit 1; }
if "${mpi[@]}" -np 2 "$train" "${grpo[@]}" --actor-num-nodes 1 --actor-num-gpus-per-node 2 --colocate --train-async \
  >"$out/bad2.log" 2>&1; then exit 1; fi
grep -q -- "--train-async cannot be used with --colocate" "$out/bad2.log" || { grep error "$out/bad2.log"; exit 1; }
echo "rl_loop_test: all passed"
