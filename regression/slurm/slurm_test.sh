#!/usr/bin/env bash
# The demo under a real Slurm: a private single-node cluster (munge, slurmctld, slurmd from Debian's slurm-wlm,
# regression/slurm/mini_cluster.sh) runs slurm/demo.sbatch with 3 tasks (2 data-parallel trainer ranks + 1 rollout
# rank, srun --mpi=pmix), shortened (SFT 150 steps, GRPO 16 steps).
#   run A: `sbatch --wait`, uninterrupted: the job's output, HDF5 checkpoints of both phases, per-pool logs, one
#          metrics line per step.
#   run B: the same GRPO phase (from A's SFT checkpoint), sent the preemption signal once 5 steps are logged
#          (`scancel --signal=USR1 --batch`, what `#SBATCH --signal=B:USR1@...` does before a time limit). The job
#          must save the step in flight, requeue itself, and the requeued job must resume from that checkpoint and
#          finish: every step logged once, and every metric (all but perf/*) equal to run A's bit for bit, so the
#          dataset position, the step count and the training state all continued.
#   then:  single_node.sbatch and colocate.sbatch as written (2 ranks, 2 steps on the demo model), multi_node.sbatch's
#          pools (printed, one node only), convert.sbatch both ways on 2 ranks, interactive.sh (salloc + srun).
# Slurm makes a requeued job wait 2 minutes before it is eligible again; the test moves its start time to 3 s after
# the requeue.
# Usage: slurm_test.sh BUILD_DIR SOURCE_DIR      (needs root, slurm-wlm and munge; skipped (77) without them)
set -euo pipefail
build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
for tool in slurmctld slurmd munged sbatch; do
  command -v "$tool" >/dev/null || { echo "slurm_test: $tool not installed (make deps): skipped"; exit 77; }
done
[ "$(id -u)" = 0 ] || { echo "slurm_test: needs root to run slurmd: skipped"; exit 77; }

out=$(mktemp -d /tmp/slime_slurm.XXXXXX)
cleanup() {
  bash "$src/regression/slurm/mini_cluster.sh" stop "$out/cluster" || true
  [ -n "${KEEP:-}" ] && echo "kept $out" || rm -rf "$out"
}
trap cleanup EXIT
bash "$src/regression/slurm/mini_cluster.sh" start "$out/cluster" 8
. "$out/cluster/env.sh"

export SLIME_HOME=$src SLIME_BUILD=$build SFT_STEPS=150 GRPO_STEPS=16 EVAL_EVERY=4
cd "$out"

fail() {
  echo "slurm_test: $*"
  for f in "$out"/*.out; do echo "== $f"; tail -30 "$f"; done
  echo "== slurmctld.log"; tail -20 "$out/cluster/log/slurmctld.log"
  exit 1
}

job_field() { scontrol show job "$1" | grep -o "$2=[^ ]*" | cut -d= -f2; }

echo "== run A: sbatch --wait, 3 tasks"
RUN_DIR=$out/a sbatch --wait --ntasks=3 --output="$out/a.out" "$src/slurm/demo.sbatch" || fail "run A failed"
grep -E '^demo:' "$out/a.out" || fail "run A: no summary line"
[ "$(cat "$out/a/sft/latest_checkpointed_iteration.txt")" = 149 ] || fail "run A: no SFT checkpoint 149"
[ "$(cat "$out/a/rl/latest_checkpointed_iteration.txt")" = 15 ] || fail "run A: no GRPO checkpoint 15"
h5ls -r "$out/a/rl/iter_0000015/model.h5" | grep -q linear_qkv || fail "run A: GRPO checkpoint unreadable"
logs=$(ls "$out"/a/logs/*/)
echo "run A per-pool logs: $(echo $logs)"
[[ "$logs" == *trainer.rank1.log* && "$logs" == *rollout.rank2.log* ]] || fail "run A: per-pool logs missing"
grep -q 'srun --mpi=pmix --ntasks=3' "$out/a.out" || fail "run A: not launched with srun --mpi=pmix"

echo "== run B: the GRPO phase again, preempted after 5 steps, requeued, resumed"
mkdir -p "$out/b"
cp -r "$out/a/model" "$out/a/sft" "$out/b/"
job=$(RUN_DIR=$out/b sbatch --parsable --ntasks=3 --output="$out/b.out" "$src/slurm/demo.sbatch")
for _ in $(seq 1 1200); do
  n=$(grep -c '"rollout_id"' "$out/b/rl/metrics.jsonl" 2>/dev/null || true)
  [ "${n:-0}" -ge 5 ] && break
  # Only an ended job fails here: right after sbatch it may also be CONFIGURING, or scontrol may answer nothing.
  state=$(job_field "$job" JobState || true)
  case $state in
    COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY | BOOT_FAIL | DEADLINE | PREEMPTED)
      fail "run B ended before the signal (state $state)" ;;
  esac
  sleep 0.25
done
[ "${n:-0}" -ge 5 ] || fail "run B: no 5 steps logged in 5 minutes"
scancel --signal=USR1 --batch "$job"
echo "sent SIGUSR1 to the batch shell of job $job after $n logged steps"
requeued=0
for _ in $(seq 1 1800); do
  state=$(job_field "$job" JobState || true)
  restarts=$(job_field "$job" Restarts || true)
  if [ "$state" = PENDING ] && [ "$restarts" = 1 ] && [ "$requeued" = 0 ]; then
    # Skip Slurm's 2-minute requeue delay, but not to the same second: slurmd refuses a job credential that is not
    # newer than the revocation of the requeued instance's ("Job credential revoked").
    sleep 3
    scontrol update JobId="$job" StartTime=now
    requeued=1
  fi
  case $state in COMPLETED) break ;; FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY) fail "run B: $state" ;; esac
  sleep 0.5
done
[ "$state" = COMPLETED ] || fail "run B did not complete (state $state)"
[ "$(job_field "$job" Restarts)" = 1 ] || fail "run B was not requeued once"
stop_line=$(grep -E 'stopping after rollout step [0-9]+ of 16: SIGUSR1 received' "$out/b.out") ||
  fail "run B: no early stop on the signal"
echo "$stop_line"
k=$(echo "$stop_line" | sed -E 's/.*stopping after rollout step ([0-9]+).*/\1/')
[ -f "$out/b/rl/iter_$(printf %07d "$k")/model.h5" ] || fail "run B: no checkpoint of step $k"
grep -q 'requeueing job' "$out/b.out" || fail "run B: the job did not requeue itself"
grep -q "rollout steps $((k + 1)) .. 15 (resumed" "$out/b.out" || fail "run B: the requeued job did not resume at $((k + 1))"
[ "$(cat "$out/b/rl/latest_checkpointed_iteration.txt")" = 15 ] || fail "run B: no final checkpoint"

python3 - "$out/a/rl/metrics.jsonl" "$out/b/rl/metrics.jsonl" "$k" <<'PY'
import json, sys
def steps(path):
    rows = [json.loads(l) for l in open(path)]
    return [r for r in rows if "rollout_id" in r], [r for r in rows if "rollout_id" not in r]
a, a_eval = steps(sys.argv[1])
b, b_eval = steps(sys.argv[2])
k = int(sys.argv[3])
ids = [r["rollout_id"] for r in b]
assert ids == list(range(16)), f"run B logged steps {ids}, want 0..15 once each"
for ra, rb in zip(a, b):
    for key in ra:
        if key.startswith("perf/"):
            continue
        assert key in rb and ra[key] == rb[key], f"step {ra['rollout_id']}: {key} {ra[key]!r} != {rb.get(key)!r}"
print(f"slurm_test: run B stopped after step {k}, requeued, resumed at {k + 1}: all 16 steps logged once, "
      f"metrics equal to the uninterrupted run bit for bit ({sum(len(r) for r in a)} values)")
PY
echo "== the GPU job scripts as written (their #SBATCH GPU requests granted by the test cluster's stand-in GRES),"
echo "   resized to 2 ranks of 1 CPU, on the demo model for 2 GRPO steps"
small=(--ntasks-per-node=2 --cpus-per-task=1 --gpus-per-node=2)
export MODEL=$out/a/model PROMPT_DATA=$src/inputs/demo/train.jsonl EVAL_DATA=$src/inputs/demo/eval.jsonl NUM_ROLLOUT=2 \
       MAX_RESPONSE_LEN=6 MAX_TOKENS_PER_GPU=2048
SAVE=$out/single TRAINER_GPUS=1 ROLLOUT_GPUS=1 sbatch --wait "${small[@]}" --output="$out/single.out" \
  "$src/slurm/single_node.sbatch" || fail "single_node.sbatch failed"
SAVE=$out/colocate GPUS_PER_NODE=2 sbatch --wait "${small[@]}" --output="$out/colocate.out" \
  "$src/slurm/colocate.sbatch" || fail "colocate.sbatch failed"
for run in single colocate; do
  [ "$(cat "$out/$run/latest_checkpointed_iteration.txt")" = 1 ] || fail "$run: no checkpoint of step 1"
  grep -q '^\[step 1\]' "$out/$run.out" || fail "$run: step 1 not logged"
done
grep -q 'colocated with 2 rollout engine' "$out/colocate.out" || fail "colocate.sbatch: not colocated"
grep -q 'rank 1 (rollout) on .*CUDA_VISIBLE_DEVICES=1' "$out"/single/logs/*/rollout.rank1.log ||
  fail "single_node.sbatch: rank 1 not on its own GPU"
grep -q 'rank 1 (colocated)' "$out"/colocate/logs/*/colocated.rank1.log || fail "colocate.sbatch: no per-rank log"
echo "single_node.sbatch and colocate.sbatch: 2 steps each, checkpoints written, one GPU per rank"

echo "== multi_node.sbatch: its pools for 3 nodes x 4 GPUs (launch printed, not run: the test cluster has 1 node)"
SLIME_DRY_RUN=1 SLURM_JOB_ID=0 SLURM_NNODES=3 SLURM_NTASKS=12 ACTOR_NODES=2 ROLLOUT_NODES=1 GPUS_PER_NODE=4 \
  SAVE=$out/mn SLIME_HOME=$src bash "$src/slurm/multi_node.sbatch" 2>"$out/mn.log" || fail "multi_node.sbatch dry run"
grep -q 'srun --mpi=pmix --ntasks=12 .*--actor-num-nodes 2 --actor-num-gpus-per-node 4 --rollout-num-gpus 4' \
  "$out/mn.log" || { cat "$out/mn.log"; fail "multi_node.sbatch: wrong pools"; }
SLIME_DRY_RUN=1 SLURM_JOB_ID=0 SLURM_NNODES=2 SLURM_NTASKS=8 ACTOR_NODES=2 ROLLOUT_NODES=1 GPUS_PER_NODE=4 \
  SAVE=$out/mn SLIME_HOME=$src bash "$src/slurm/multi_node.sbatch" 2>"$out/mn_bad.log" &&
  fail "multi_node.sbatch accepted 2 nodes for ACTOR_NODES + ROLLOUT_NODES = 3"
grep -q 'the job has 2 nodes' "$out/mn_bad.log" || fail "multi_node.sbatch: unclear node-count error"

echo "== convert.sbatch: HF -> HDF5 on 2 ranks, and back"
HF_DIR=$out/a/model MCORE_DIR=$out/mcore sbatch --wait --ntasks=2 --output="$out/convert.out" \
  "$src/slurm/convert.sbatch" || fail "convert.sbatch hf-to-mcore failed"
DIRECTION=mcore-to-hf HF_DIR=$out/a/model MCORE_DIR=$out/mcore HF_OUT=$out/hf_back sbatch --wait --ntasks=2 \
  --output="$out/convert_back.out" "$src/slurm/convert.sbatch" || fail "convert.sbatch mcore-to-hf failed"
cmp "$out/a/model/tokenizer.json" "$out/hf_back/tokenizer.json" || fail "convert: tokenizer not carried"
[ -f "$out/hf_back/model.safetensors" ] || ls "$out"/hf_back/*.safetensors >/dev/null || fail "convert: no safetensors"
echo "convert.sbatch: $(ls "$out/mcore") -> $(ls "$out/hf_back" | tr '\n' ' ')"

echo "== interactive.sh: salloc + srun, 2 ranks, 2 steps"
SALLOC_ARGS="--cpus-per-task=1" bash "$src/slurm/interactive.sh" 2 --hf-checkpoint "$out/a/model" \
  --prompt-data "$src/inputs/demo/train.jsonl" --input-key prompt --label-key label --apply-chat-template \
  --rm-type arithmetic --rollout-batch-size 8 --n-samples-per-prompt 4 --num-rollout 2 --rollout-max-response-len 6 \
  --actor-num-nodes 1 --actor-num-gpus-per-node 1 --rollout-num-gpus 1 --save "$out/inter" --save-interval 2 \
  >"$out/interactive.out" 2>&1 ||
  fail "interactive.sh failed"
grep -q 'salloc: Granted job allocation' "$out/interactive.out" || fail "interactive.sh: no salloc"
grep -q 'srun --mpi=pmix --ntasks=2' "$out/interactive.out" || fail "interactive.sh: no srun"
[ "$(cat "$out/inter/latest_checkpointed_iteration.txt")" = 1 ] || fail "interactive.sh: no checkpoint"
echo "interactive.sh: salloc -> srun, 2 steps, checkpoint 1"
echo "slurm_test: passed"
