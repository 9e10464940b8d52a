#!/usr/bin/env bash
# slime-train with --backend cuda against --backend cpu on the demo task (inputs/demo), on a GPU machine:
#   1. the same SFT (200 steps of 32 conversations) from the same random weights on each backend;
#   2. 20 GRPO steps replayed on each backend from one set of rollouts (saved by a CPU run with
#      --save-debug-rollout-data, replayed with --load-debug-rollout-data), so both train on the same samples.
#   3. the same 20 GRPO steps live with --backend cuda: trainer AND rollout engine on the GPU (two ranks sharing it;
#      weight sync GPU to GPU, each sync checked with --check-weight-update-equal),
#      against the live CPU run of step 2: the engine's fp32 path samples the CPU engine's tokens (same Philox draws),
#      so the reward curves agree until a rounding difference flips a draw.
# Prints the curves side by side and fails when the GPU curve leaves the CPU curve's band. The demo model has
# head_dim 32, so the GPU runs its fp32 path (the bf16 attention kernel takes 64 and 128).
# Usage: trainer_backend_compare.sh PROGRAMS_DIR SOURCE_DIR OUT_DIR
set -euo pipefail
bin=${1:?usage: trainer_backend_compare.sh PROGRAMS_DIR SOURCE_DIR OUT_DIR}
src=${2:?}
out=${3:?}
data=$src/inputs/demo
mkdir -p "$out"
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 NCCL_NVLS_ENABLE=0
mpi=(mpirun --allow-run-as-root --oversubscribe --bind-to none)
train=$bin/slime-train

"$bin/slime-convert" init-random --config "$data/model/config.json" --tokenizer-dir "$data/model" \
  --out "$out/model" --seed 1 --std 0.02 >/dev/null

sft=(--hf-checkpoint "$out/model" --actor-num-nodes 1 --actor-num-gpus-per-node 1 --debug-train-only
     --rollout-function-path slime.rollout.sft_rollout.generate_rollout --loss-type sft_loss
     --disable-compute-advantages-and-returns --prompt-data "$data/sft.jsonl" --input-key messages --rollout-shuffle
     --rollout-seed 1 --rollout-batch-size 32 --micro-batch-size 32 --num-rollout 200 --lr 1e-3
     --lr-decay-style constant --weight-decay 0 --clip-grad 1.0 --seed 1 --save-interval 200)
for backend in cpu cuda; do
  echo "== SFT, --backend $backend"
  t0=$SECONDS
  "${mpi[@]}" -np 1 "$train" "${sft[@]}" --backend $backend --save "$out/sft_$backend" >"$out/sft_$backend.log" 2>&1 ||
    { tail -30 "$out/sft_$backend.log"; exit 1; }
  echo "   $((SECONDS - t0)) s"
done

grpo=(--hf-checkpoint "$out/model" --ref-load "$out/sft_cpu" --prompt-data "$data/train.jsonl" --input-key prompt
      --label-key label --apply-chat-template --rollout-shuffle --rollout-seed 1 --seed 1 --rm-type arithmetic
      --advantage-estimator grpo --rollout-batch-size 16 --n-samples-per-prompt 8 --num-rollout 20
      --rollout-max-response-len 6 --rollout-temperature 1.0 --lr 2e-4 --lr-decay-style constant --weight-decay 0
      --clip-grad 1.0 --eps-clip 0.2 --eps-clip-high 0.28 --entropy-coef 0.01 --sglang-max-total-tokens 16384
      --micro-batch-size 128)
echo "== GRPO rollouts (CPU run, saved)"
"${mpi[@]}" -np 2 "$train" "${grpo[@]}" --actor-num-nodes 1 --actor-num-gpus-per-node 1 --rollout-num-gpus 1 \
  --backend cpu --save-debug-rollout-data "$out/rollouts/{rollout_id}.bin" --save "$out/grpo_live" \
  >"$out/grpo_live.log" 2>&1 || { tail -30 "$out/grpo_live.log"; exit 1; }
for backend in cpu cuda; do
  echo "== GRPO replay, --backend $backend"
  "${mpi[@]}" -np 1 "$train" "${grpo[@]}" --actor-num-nodes 1 --actor-num-gpus-per-node 1 --backend $backend \
    --load-debug-rollout-data "$out/rollouts/{rollout_id}.bin" --save "$out/grpo_$backend" \
    >"$out/grpo_$backend.log" 2>&1 || { tail -30 "$out/grpo_$backend.log"; exit 1; }
done
echo "== GRPO live, --backend cuda (trainer and engine on the GPU)"
t0=$SECONDS
"${mpi[@]}" -np 2 "$train" "${grpo[@]}" --actor-num-nodes 1 --actor-num-gpus-per-node 1 --rollout-num-gpus 1 \
  --backend cuda --check-weight-update-equal --save "$out/grpo_live_cuda" >"$out/grpo_live_cuda.log" 2>&1 ||
  { tail -30 "$out/grpo_live_cuda.log"; exit 1; }
echo "   $((SECONDS - t0)) s"
grep -m1 "rollout engine on" "$out/grpo_live_cuda.log" || true
# The first sync goes through the host (the engine is built afterwards); the others GPU to GPU, each one checked.
echo "   weight syncs: $(grep -c "engines hold the trainer's GPU weights" "$out/grpo_live_cuda.log") on the GPU path," \
  "$(grep -c "engines hold the trainer's weights (version" "$out/grpo_live_cuda.log") on the host path, all checked equal"

python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
def curve(run, key):
    rows = [json.loads(l) for l in open(f"{out}/{run}/metrics.jsonl")]
    return [r[key] for r in rows if key in r]
ok = True
for phase, keys, bound in [("sft", ["train/loss"], 1e-3), ("grpo", ["train/loss", "rollout/log_probs", "train/grad_norm"], 2e-2)]:
    for key in keys:
        cpu, gpu = curve(f"{phase}_cpu", key), curve(f"{phase}_cuda", key)
        assert len(cpu) == len(gpu) and cpu, (phase, key, len(cpu), len(gpu))
        scale = max(abs(v) for v in cpu) or 1.0
        diffs = [abs(a - b) / scale for a, b in zip(cpu, gpu)]
        first = diffs[:20]
        shown = sorted({0, 4, 9, 14, 19, len(cpu) - 1})
        print(f"{phase} {key}: " + ", ".join(f"step {i} cpu {cpu[i]:.5f} cuda {gpu[i]:.5f}" for i in shown if i < len(cpu)))
        print(f"{phase} {key}: largest difference over the first 20 steps {max(first):.2e} of the curve's scale "
              f"{scale:.4f}; over all {len(cpu)} steps {max(diffs):.2e}")
        if max(first) > bound:
            ok = False
            print(f"FAILED: {phase} {key} leaves the band {bound:g}")
cpu, gpu = curve("grpo_live", "rollout/raw_reward"), curve("grpo_live_cuda", "rollout/raw_reward")
assert len(cpu) == len(gpu) and cpu, ("live reward", len(cpu), len(gpu))
same = next((i for i, (a, b) in enumerate(zip(cpu, gpu)) if abs(a - b) > 1e-6), len(cpu))
mean_cpu, mean_gpu = sum(cpu) / len(cpu), sum(gpu) / len(gpu)
print("grpo live rollout/raw_reward: " + ", ".join(f"step {i} cpu {cpu[i]:.4f} cuda {gpu[i]:.4f}"
                                                   for i in sorted({0, 4, 9, 14, len(cpu) - 1})))
print(f"grpo live rollout/raw_reward: identical for the first {same} of {len(cpu)} steps; mean cpu {mean_cpu:.4f} "
      f"cuda {mean_gpu:.4f}")
if abs(mean_cpu - mean_gpu) > 0.1:
    ok = False
    print("FAILED: the live GPU run's mean reward leaves the CPU run's by more than 0.1")
sys.exit(0 if ok else 1)
PY
