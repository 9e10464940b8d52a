#!/usr/bin/env bash
# slime-train interactively: inside an allocation (salloc, or an interactive srun shell) it runs NTASKS ranks of
# slime-train with srun; outside one it asks salloc for NTASKS tasks first and runs itself inside it. Ctrl-C or a
# time-limit warning saves the step in flight (--exit-signal-handler) when the options include --save; run the same
# command again to resume (add --load with the --save directory).
#   slurm/interactive.sh NTASKS SLIME_TRAIN_OPTIONS...
#   env: SALLOC_ARGS (e.g. "--partition=gpu --gpus-per-node=8 --time=1:00:00"), SLIME_HOME (default: this
#        script's repository or bundle), and slurm/lib.sh's SLIME_LAUNCHER, SLIME_LOG_DIR, ...
# Example: slurm/interactive.sh 2 --hf-checkpoint runs/demo/model --prompt-data inputs/demo/train.jsonl ...
set -uo pipefail
ntasks=${1:?usage: interactive.sh NTASKS SLIME_TRAIN_OPTIONS...}
shift
SLIME_HOME=${SLIME_HOME:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
if [ -z "${SLURM_JOB_ID:-}" ]; then
  # shellcheck disable=SC2086
  exec salloc --ntasks="$ntasks" ${SALLOC_ARGS:-} env SLIME_HOME="$SLIME_HOME" bash "$SLIME_HOME/slurm/interactive.sh" \
    "$ntasks" "$@"
fi
. "$SLIME_HOME/slurm/lib.sh"
trap slime_on_stop_signal INT  # Ctrl-C: save and stop, as on a preemption signal
status=0
extra=()
[[ " $* " == *" --save "* ]] && extra=(--exit-signal-handler)
slime_launch "$ntasks" "$(slime_find_programs "$SLIME_HOME")/slime-train" "$@" "${extra[@]}" || status=$?
[ "$status" = "$SLIME_EXIT_RESUMABLE" ] && slime_log "stopped with a checkpoint: run the same command again (with" \
  "--load pointing at --save) to resume"
exit "$status"
