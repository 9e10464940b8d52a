#!/usr/bin/env bash
# The CPU demo (make run): a 0.8M-parameter Qwen3-shaped model with a character tokenizer (inputs/demo/model) learns
# two-digit addition. SFT (slime's sft_rollout + sft_loss) brings it to partial accuracy, then GRPO on the arithmetic
# verifier's reward raises its evaluation accuracy, with separate trainer and rollout ranks: under mpirun, or under
# srun inside a Slurm allocation (slurm/demo.sbatch; launching, signals and requeue are slurm/lib.sh's).
#
#   slurm/run_demo.sh PROGRAMS_DIR RUN_DIR      (PROGRAMS_DIR: a build tree, or a bundle's bin/)
#   env: SEED (1), SFT_STEPS (900), GRPO_STEPS (200), EVAL_EVERY (40), TRAINER_RANKS (1: data-parallel trainer
#        ranks), ROLLOUT_RANKS (1: one engine each), EXTRA (more slime-train options for the GRPO phase), and
#        slurm/lib.sh's SLIME_LAUNCHER, SLIME_LOG_DIR, ...
#
# Cost model (2 cores, OPENBLAS_NUM_THREADS=1, 1 + 1 ranks): SFT 900 steps x 32 conversations x ~20 tokens at ~10k
# tokens/s -> ~70 s; GRPO 200 steps x 256 samples (32 prompts x 8) x ~18 tokens: rollout ~0.2 s + train ~0.7 s per
# step -> ~3 min; 6 evaluations of 512 samples, ~0.3 s each. Memory: well under 1 GB per rank.
# Output: RUN_DIR/model (random init), RUN_DIR/sft and RUN_DIR/rl (HDF5 checkpoints, metrics.jsonl, TensorBoard
# events in rl/tensorboard, the timeline in rl/trace/trace.json, plots and summary.md in rl/report from
# slime-report when gnuplot is installed), and a summary line "demo: eval accuracy A after SFT -> B after GRPO
# (+G points)".
# Both phases resume from their checkpoints: run the same command again after an interruption. Stopped by a
# preemption signal (slurm/lib.sh), a phase saves and this script exits 75 (resumable).
set -euo pipefail
build=${1:?usage: run_demo.sh PROGRAMS_DIR RUN_DIR}
run=${2:?usage: run_demo.sh PROGRAMS_DIR RUN_DIR}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
data=$here/inputs/demo
seed=${SEED:-1}
# shellcheck source=lib.sh
. "$here/slurm/lib.sh"
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1} OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
trainers=${TRAINER_RANKS:-1}
engines=${ROLLOUT_RANKS:-1}
export SLIME_TRAINER_RANKS=$trainers
ranks=$((trainers + engines))
# Each step's samples (32 conversations for SFT, 32 x 8 for GRPO) are split evenly over the trainer ranks.
case $trainers in 1|2|4|8|16|32) ;; *) echo "run_demo.sh: TRAINER_RANKS must divide 32 (1, 2, 4, 8, 16, 32)" >&2; exit 2 ;; esac
mkdir -p "$run"
start=$(date +%s)

[ -f "$run/model/model.safetensors" ] ||
  "$build/slime-convert" init-random --config "$data/model/config.json" --tokenizer-dir "$data/model" \
    --out "$run/model" --seed "$seed" --std 0.02

# Options of both phases: the model, the pools, evaluation on held-out problems, a checkpoint on a preemption signal.
common=(--hf-checkpoint "$run/model" --actor-num-nodes 1 --actor-num-gpus-per-node "$trainers"
        --rollout-num-gpus "$engines" --exit-signal-handler
        --seed "$seed" --rollout-seed "$seed" --rollout-shuffle --lr-decay-style constant --weight-decay 0
        --clip-grad 1.0 --sglang-max-total-tokens 16384 --apply-chat-template --rm-type arithmetic
        --eval-prompt-data eval "$data/eval.jsonl" --eval-input-key prompt --eval-label-key label
        --n-samples-per-eval-prompt 4 --rollout-max-response-len 6 --rollout-temperature 1.0)

sft_steps=${SFT_STEPS:-900}
if [ "$(cat "$run/sft/latest_checkpointed_iteration.txt" 2>/dev/null)" != "$((sft_steps - 1))" ]; then
  echo "== SFT: $sft_steps steps of 32 conversations"
  status=0
  slime_launch "$ranks" "$build/slime-train" "${common[@]}" --load "$run/sft" \
    --rollout-function-path slime.rollout.sft_rollout.generate_rollout --loss-type sft_loss \
    --disable-compute-advantages-and-returns --prompt-data "$data/sft.jsonl" --input-key messages \
    --rollout-batch-size 32 --micro-batch-size $((32 / trainers)) --num-rollout "$sft_steps" --lr 1e-3 --eval-interval "$sft_steps" \
    --skip-eval-before-train --save "$run/sft" --save-interval "$sft_steps" --log-interval 100 \
    > >(grep -v '^  ') || status=$?
  [ "$status" = 0 ] || exit "$status"
fi

grpo_steps=${GRPO_STEPS:-200}
echo "== GRPO: $grpo_steps steps of 32 prompts x 8 samples"
status=0
slime_launch "$ranks" "$build/slime-train" "${common[@]}" --ref-load "$run/sft" --load "$run/rl" --save "$run/rl" \
  --save-interval "${EVAL_EVERY:-40}" --prompt-data "$data/train.jsonl" --input-key prompt --label-key label \
  --advantage-estimator grpo --rollout-batch-size 32 --n-samples-per-prompt 8 --micro-batch-size $((256 / trainers)) \
  --num-rollout "$grpo_steps" --lr 3e-4 --lr-warmup-iters 10 --eps-clip 0.2 --eps-clip-high 0.28 \
  --eval-interval "${EVAL_EVERY:-40}" --log-interval 10 --use-tensorboard --trace-dir "$run/rl/trace" ${EXTRA:-} \
  > >(grep -v '^  ') || status=$?
[ "$status" = 0 ] || exit "$status"

python3 - "$run/rl/metrics.jsonl" "$(( $(date +%s) - start ))" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
evals = [r["eval/eval"] for r in rows if "eval/eval" in r]
first, last = evals[0], evals[-1]
print(f"demo: eval accuracy {100*first:.1f}% after SFT -> {100*last:.1f}% after GRPO ({100*(last-first):+.1f} points) "
      f"in {sys.argv[2]} s")
PY
if [ -x "$build/slime-report" ] && command -v gnuplot >/dev/null; then
  "$build/slime-report" "$run/rl" >/dev/null && echo "demo: plots and summary in $run/rl/report (slime-report)"
fi
