# GRPO on problems with a verifiable answer (JSONL with "prompt" and "label", e.g. slime's dapo-math-17k or
# deepscaler data), for Qwen2.5-0.5B / 1.5B-sized models: the options slime's examples use, as slime-train arrays.
# Sourced by the job scripts after their edit-here block (needs MODEL, PROMPT_DATA, SAVE; EVAL_DATA optional);
# change any array there, after sourcing, or pass more options in EXTRA_ARGS.
#
# Per rollout step: 32 prompts x 8 samples = 256 sequences of ~150 prompt + up to 1024 response tokens (~650 on
# average early in training): ~0.17M tokens.

CKPT_ARGS=(--hf-checkpoint "$MODEL" --ref-load "${REF_LOAD:-$MODEL}" --load "$SAVE" --save "$SAVE"
           --save-interval "${SAVE_INTERVAL:-20}" --keep-last-n 3)
ROLLOUT_ARGS=(--prompt-data "$PROMPT_DATA" --input-key prompt --label-key label --apply-chat-template
              --rollout-shuffle --rm-type deepscaler --num-rollout "${NUM_ROLLOUT:-500}" --rollout-batch-size 32
              --n-samples-per-prompt 8 --rollout-max-response-len "${MAX_RESPONSE_LEN:-1024}"
              --rollout-temperature 1.0 --global-batch-size 256 --balance-data)
EVAL_ARGS=()
[ -n "${EVAL_DATA:-}" ] && EVAL_ARGS=(--eval-interval 20 --eval-prompt-data eval "$EVAL_DATA"
                                       --n-samples-per-eval-prompt 4 --eval-max-response-len
                                       "${MAX_RESPONSE_LEN:-1024}" --eval-top-p 0.7)
GRPO_ARGS=(--advantage-estimator grpo --use-kl-loss --kl-loss-coef 0.00 --kl-loss-type low_var_kl
           --entropy-coef 0.00 --eps-clip 0.2 --eps-clip-high 0.28)
OPTIMIZER_ARGS=(--optimizer adam --lr 1e-6 --lr-decay-style constant --weight-decay 0.1 --adam-beta1 0.9
                --adam-beta2 0.98)
PERF_ARGS=(--use-dynamic-batch-size --max-tokens-per-gpu "${MAX_TOKENS_PER_GPU:-9216}")
RECIPE_ARGS=("${CKPT_ARGS[@]}" "${ROLLOUT_ARGS[@]}" "${EVAL_ARGS[@]}" "${GRPO_ARGS[@]}" "${OPTIMIZER_ARGS[@]}"
             "${PERF_ARGS[@]}")
