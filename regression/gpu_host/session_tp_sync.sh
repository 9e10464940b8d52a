#!/usr/bin/env bash
# The GPU host session of weight sync into tensor-parallel GPU engines (#8): device_weight_sync_test with a trainer
# and a TP=2 engine (3 ranks) and colocated (1 rank), then slime-train with --backend cuda on the demo task: one
# trainer rank and one TP=2 engine over 2 rollout ranks, every weight sync checked equal. All ranks share the GPU
# (host-staged collectives). Run from the repo root with dist/gpu.tar.gz carried (slime-hpc/{lib,bin,libexec} of
# slurm/make_bundle.sh, slime-hpc/tests/device_weight_sync_test, slime-hpc/model: the demo model from
# `slime-convert init-random`); logs under $OUT.
set -uo pipefail
OUT=${OUT:-/tmp/out}
SUMMARY_PATTERN="^(rank [0-9]|All tests|test cases|.*FAILED|.*failed|\[step|\[eval|.*weights trainer|.*engines hold|.*error|.*rollout pool)"
. regression/gpu_host/lib.sh
mpi=(mpirun --allow-run-as-root --oversubscribe --bind-to none)
run device_weight_sync_test "${mpi[@]}" -np 3 -x LD_LIBRARY_PATH -x NCCL_NVLS_ENABLE \
  "$B/tests/device_weight_sync_test" --use-colour no
run device_weight_sync_test_colocated "${mpi[@]}" -np 1 -x LD_LIBRARY_PATH -x NCCL_NVLS_ENABLE \
  "$B/tests/device_weight_sync_test" --use-colour no
data=$PWD/inputs/demo
LIMIT=200 run slime_train_tp_engine "${mpi[@]}" -np 3 -x LD_LIBRARY_PATH -x NCCL_NVLS_ENABLE "$B/bin/slime-train" \
  --backend cuda --hf-checkpoint "$B/model" --prompt-data "$data/train.jsonl" --input-key prompt --label-key label \
  --apply-chat-template --rollout-shuffle --rollout-seed 1 --seed 1 --rm-type arithmetic --advantage-estimator grpo \
  --rollout-batch-size 16 --n-samples-per-prompt 8 --num-rollout 6 --rollout-max-response-len 6 \
  --rollout-temperature 1.0 --lr 2e-4 --sglang-max-total-tokens 16384 --eval-prompt-data eval "$data/eval.jsonl" \
  --eval-interval 3 --actor-num-nodes 1 --actor-num-gpus-per-node 1 --rollout-num-gpus 2 \
  --rollout-num-gpus-per-engine 2 --micro-batch-size 128 --check-weight-update-equal
