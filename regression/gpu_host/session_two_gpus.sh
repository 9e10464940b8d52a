#!/usr/bin/env bash
# The two-GPU session (nvidia-h200-x2, #7 and #8): every rank on a GPU of its own, so the device collectives are
# NCCL. Tests: the device collectives, DP=2 and TP=2 trainers against one GPU (trainer_cuda_test), the TP=2 decoder,
# a TP=2 rollout engine (its collectives captured in the decode graphs), weight sync into engines; then the weight
# sync benchmark (1.5B shape, GPU to GPU) and a full RL step of the Qwen2.5-0.5B shape on two GPUs (one trainer rank,
# one rollout rank; synchronous and --train-async) with its time split into rollout, train and sync.
# Run from the repo root with dist/gpu.tar.gz carried (the bundle: slime-hpc/{bin,libexec,lib,tests}, and
# slime-hpc/qwen-tokenizer: tokenizer.json and tokenizer_config.json of a Qwen tokenizer); logs under $OUT.
set -uo pipefail
OUT=${OUT:-/tmp/out}
SUMMARY_PATTERN="^(device:|weight sync|one rank|DP=|TP=|cuda decoder|  bf16|tensor-parallel|gpu engine|  follower|rank [0-9] \(|All tests|test cases|.*FAILED|.*failed|rl step|  mean|  step)"
. "$(dirname "$0")/lib.sh"
export SLIME_SOURCE_DIR=$PWD
mpi=(mpirun --allow-run-as-root --oversubscribe --bind-to none -x LD_LIBRARY_PATH -x NCCL_NVLS_ENABLE -x SLIME_SOURCE_DIR)
nvidia-smi -L | tee -a "$OUT/summary.txt"
if [ -z "${SKIP_TESTS:-}" ]; then
run device_comm_test "${mpi[@]}" -np 2 "$B/tests/device_comm_test" --use-colour no
run trainer_cuda_test "${mpi[@]}" -np 2 "$B/tests/trainer_cuda_test" --use-colour no
run cuda_decoder_tp_test "${mpi[@]}" -np 2 "$B/tests/cuda_decoder_tp_test" --use-colour no
run cuda_engine_tp_test "${mpi[@]}" -np 2 "$B/tests/cuda_engine_tp_test" --use-colour no
run device_weight_sync_test_np2 "${mpi[@]}" -np 2 "$B/tests/device_weight_sync_test" --use-colour no
run device_weight_sync_test_np3 "${mpi[@]}" -np 3 "$B/tests/device_weight_sync_test" --use-colour no
fi
if [ -z "${SKIP_BENCH:-}" ]; then
LIMIT=200 run bench_weight_sync "${mpi[@]}" -np 2 "$B/bin/bench_weight_sync" 1.5b
fi
[ -n "${SKIP_RL:-}" ] && exit 0

# The RL step: a random-init Qwen2.5-0.5B-shaped model with a Qwen tokenizer, the demo prompts, 32 prompts x 8
# samples of up to 512 response tokens a rollout (a random model rarely ends early), GRPO, one optimizer step per
# rollout; the trainer on GPU 0 and the engine on GPU 1.
model=/tmp/rl_step_model
cat > /tmp/rl_step_config.json <<'JSON'
{"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "vocab_size": 151936, "hidden_size": 896,
 "intermediate_size": 4864, "num_hidden_layers": 24, "num_attention_heads": 14, "num_key_value_heads": 2,
 "max_position_embeddings": 32768, "rms_norm_eps": 1e-6, "rope_theta": 1000000.0, "tie_word_embeddings": true,
 "hidden_act": "silu", "torch_dtype": "bfloat16"}
JSON
"$B/bin/slime-convert" init-random --config /tmp/rl_step_config.json --tokenizer-dir "$B/qwen-tokenizer" \
  --out "$model" --seed 1 --std 0.02 > "$OUT/init_model.log" 2>&1 || { tail "$OUT/init_model.log"; exit 1; }
rl=(--backend cuda --hf-checkpoint "$model" --prompt-data "$PWD/inputs/demo/train.jsonl" --input-key prompt
    --label-key label --apply-chat-template --rm-type arithmetic --advantage-estimator grpo --rollout-batch-size 32
    --n-samples-per-prompt 8 --global-batch-size 256 --num-rollout 5 --rollout-max-response-len 512
    --rollout-temperature 1.0 --lr 1e-6 --use-dynamic-batch-size --max-tokens-per-gpu 8192
    --actor-num-nodes 1 --actor-num-gpus-per-node 1 --rollout-num-gpus 1 --sglang-mem-fraction-static 0.8
    --save-interval 1000000)
LIMIT=240 run rl_step_sync "${mpi[@]}" -np 2 "$B/bin/slime-train" "${rl[@]}" --save /tmp/rl_sync
LIMIT=240 run rl_step_async "${mpi[@]}" -np 2 "$B/bin/slime-train" "${rl[@]}" --train-async --save /tmp/rl_async
for mode in sync async; do
  python3 - "/tmp/rl_$mode/metrics.jsonl" "$mode" <<'PY' | tee -a "$OUT/summary.txt"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if '"rollout_id"' in l]
print(f"rl step {sys.argv[2]}: {len(rows)} steps (the first is warm-up)")
keys = ["perf/step_time", "perf/rollout_time", "perf/train_time", "perf/update_weights_time", "perf/buffer_wait_time"]
for r in rows:
    print("  step %d: " % r["rollout_id"] + ", ".join(f"{k[5:]} {r.get(k, float('nan')):.3f} s" for k in keys) +
          f", response_len {r.get('rollout/response_len/mean', 0):.0f}")
steady = rows[1:] or rows
mean = {k: sum(r.get(k, 0.0) for r in steady) / len(steady) for k in keys}
step, roll, train, sync = (mean[k] for k in keys[:4])
tokens = sum(r.get("rollout/response_len/mean", 0) for r in steady) / len(steady) * 256
print(f"  mean over steps 1..: step {step:.3f} s = rollout {roll:.3f} + train {train:.3f} + sync {sync:.3f} "
      f"(+ other {step - roll - train - sync:.3f}) ; trainer GPU idle {1 - (train + sync) / step:.1%}, rollout GPU "
      f"idle {max(0.0, 1 - (roll + sync) / step):.1%}; {tokens / step:.0f} response tokens/s")
PY
done
