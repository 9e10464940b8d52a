#!/usr/bin/env bash
# The CPU demo (make run): a 0.8M-parameter Qwen3-shaped model with a character tokenizer (inputs/demo/model) learns
# two-digit addition. SFT (slime's sft_rollout + sft_loss) brings it to partial accuracy, then GRPO on the arithmetic
# verifier's reward raises its evaluation accuracy, under mpirun with one trainer rank and one rollout rank.
#
#   slurm/run_demo.sh BUILD_DIR RUN_DIR
#   env: SEED (1), SFT_STEPS (900), GRPO_STEPS (200), EVAL_EVERY (40), MPIRUN (mpirun [--allow-run-as-root]
#        --oversubscribe), EXTRA (more slime-train options for the GRPO phase)
#
# Cost model (2 cores, OPENBLAS_NUM_THREADS=1): SFT 900 steps x 32 conversations x ~20 tokens at ~10k tokens/s
# -> ~70 s; GRPO 200 steps x 256 samples (32 prompts x 8) x ~18 tokens: rollout ~0.2 s + train ~0.7 s per step
# -> ~3 min; 6 evaluations of 512 samples, ~0.3 s each. Memory: well under 1 GB per rank.
# Output: RUN_DIR/model (random init), RUN_DIR/sft and RUN_DIR/rl (HDF5 checkpoints, metrics.jsonl), and a
# summary line "demo: eval accuracy A after SFT -> B after GRPO (+G points)".
set -euo pipefail
build=${1:?usage: run_demo.sh BUILD_DIR RUN_DIR}
run=${2:?usage: run_demo.sh BUILD_DIR RUN_DIR}
here=$(cd "$(dirname "$0")/.." && pwd)
data=$here/inputs/demo
seed=${SEED:-1}
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1} OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
if [ -z "${MPIRUN:-}" ]; then
  MPIRUN="mpirun --oversubscribe --bind-to none"
  [ "$(id -u)" = 0 ] && MPIRUN="$MPIRUN --allow-run-as-root"
fi
mkdir -p "$run"
start=$(date +%s)

[ -f "$run/model/model.safetensors" ] ||
  "$build/slime-convert" init-random --config "$data/model/config.json" --tokenizer-dir "$data/model" \
    --out "$run/model" --seed "$seed" --std 0.02

# Options of both phases: the model, the pools (1 trainer rank + 1 rollout rank), evaluation on held-out problems.
common=(--hf-checkpoint "$run/model" --actor-num-nodes 1 --actor-num-gpus-per-node 1 --rollout-num-gpus 1
        --seed "$seed" --rollout-seed "$seed" --rollout-shuffle --lr-decay-style constant --weight-decay 0
        --clip-grad 1.0 --sglang-max-total-tokens 16384 --apply-chat-template --rm-type arithmetic
        --eval-prompt-data eval "$data/eval.jsonl" --eval-input-key prompt --eval-label-key label
        --n-samples-per-eval-prompt 4 --rollout-max-response-len 6 --rollout-temperature 1.0)

sft_steps=${SFT_STEPS:-900}
if [ "$(cat "$run/sft/latest_checkpointed_iteration.txt" 2>/dev/null)" != "$((sft_steps - 1))" ]; then
  echo "== SFT: $sft_steps steps of 32 conversations"
  $MPIRUN -np 2 "$build/slime-train" "${common[@]}" \
    --rollout-function-path slime.rollout.sft_rollout.generate_rollout --loss-type sft_loss \
    --disable-compute-advantages-and-returns --prompt-data "$data/sft.jsonl" --input-key messages \
    --rollout-batch-size 32 --micro-batch-size 32 --num-rollout "$sft_steps" --lr 1e-3 --eval-interval "$sft_steps" \
    --skip-eval-before-train --save "$run/sft" --save-interval "$sft_steps" --log-interval 100 | grep -v '^  '
fi

grpo_steps=${GRPO_STEPS:-200}
echo "== GRPO: $grpo_steps steps of 32 prompts x 8 samples"
$MPIRUN -np 2 "$build/slime-train" "${common[@]}" --ref-load "$run/sft" --load "$run/rl" --save "$run/rl" \
  --save-interval "${EVAL_EVERY:-40}" --prompt-data "$data/train.jsonl" --input-key prompt --label-key label \
  --advantage-estimator grpo --rollout-batch-size 32 --n-samples-per-prompt 8 --micro-batch-size 256 \
  --num-rollout "$grpo_steps" --lr 3e-4 --lr-warmup-iters 10 --eps-clip 0.2 --eps-clip-high 0.28 \
  --eval-interval "${EVAL_EVERY:-40}" --log-interval 10 ${EXTRA:-} | grep -v '^  '

python3 - "$run/rl/metrics.jsonl" "$(( $(date +%s) - start ))" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
evals = [r["eval/eval"] for r in rows if "eval/eval" in r]
first, last = evals[0], evals[-1]
print(f"demo: eval accuracy {100*first:.1f}% after SFT -> {100*last:.1f}% after GRPO ({100*(last-first):+.1f} points) "
      f"in {sys.argv[2]} s")
PY
