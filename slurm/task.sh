#!/usr/bin/env bash
# Runs one MPI rank of a slime-hpc job (slime_launch in slurm/lib.sh starts every rank through this): finds the
# rank and its node-local index from srun's or mpirun's environment, gives the rank one GPU, sends its output to its
# pool's log file, then execs the program (so it receives the launcher's signals itself).
#   GPU: when the rank sees several GPUs (CUDA_VISIBLE_DEVICES lists more than one, or is unset on a node with
#        GPUs), it keeps the one at its node-local index (mod the count): rank i of a node uses GPU i. A site that
#        binds GPUs itself (srun --gpus-per-task, --gpu-bind) leaves one visible and this changes nothing.
#   logs: with SLIME_LOG_DIR set, rank 0 keeps the job's output and rank r > 0 writes
#        SLIME_LOG_DIR/<pool>.rank<r>.log, pool = trainer (r < SLIME_TRAINER_RANKS), rollout, or colocated
#        (SLIME_COLOCATE=1).
set -euo pipefail
rank=${SLURM_PROCID:-${OMPI_COMM_WORLD_RANK:-${PMIX_RANK:-0}}}
local_rank=${SLURM_LOCALID:-${OMPI_COMM_WORLD_LOCAL_RANK:-0}}

if [ -z "${CUDA_VISIBLE_DEVICES:-}" ] && command -v nvidia-smi >/dev/null; then
  count=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)
  [ "${count:-0}" -gt 0 ] && CUDA_VISIBLE_DEVICES=$(seq -s, 0 $((count - 1)))
fi
if [ -n "${CUDA_VISIBLE_DEVICES:-}" ]; then
  IFS=, read -ra gpus <<< "$CUDA_VISIBLE_DEVICES"
  export CUDA_VISIBLE_DEVICES=${gpus[$((local_rank % ${#gpus[@]}))]}
fi

if [ "${SLIME_COLOCATE:-0}" = 1 ]; then pool=colocated
elif [ "$rank" -lt "${SLIME_TRAINER_RANKS:-1}" ]; then pool=trainer
else pool=rollout; fi
if [ -n "${SLIME_LOG_DIR:-}" ] && [ "$rank" != 0 ]; then
  mkdir -p "$SLIME_LOG_DIR"
  exec >>"$SLIME_LOG_DIR/$pool.rank$rank.log" 2>&1
fi
echo "[task] rank $rank ($pool) on $(hostname -s), local index $local_rank," \
     "CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES:-none}" >&2
exec "$@"
