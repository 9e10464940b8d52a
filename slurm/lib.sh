# Shared by the job scripts in slurm/ (source it; it defines functions and sets nothing else that a script sees
# unless it asks). What it does for them:
#   - launching: `slime_launch NP PROGRAM ARGS...` runs NP MPI ranks with srun inside a Slurm allocation (PMIx,
#     or $SLIME_SRUN_MPI) and with mpirun elsewhere ($SLIME_LAUNCHER=mpirun|srun forces one), each rank through
#     slurm/task.sh (one GPU per rank, per-pool log files);
#   - preemption: while the ranks run, SIGUSR1, SIGUSR2 and SIGTERM sent to the batch shell (`#SBATCH
#     --signal=B:USR1@300`, `scancel --signal=USR1 --batch`) are passed to the ranks as SIGUSR1; slime-train with
#     --exit-signal-handler finishes its step, saves, and exits 75 (app/early_exit.h);
#   - requeue: `slime_requeue_if_resumable STATUS` requeues the batch job (`scontrol requeue`) when a step exited
#     75, so that the job starts again and resumes from its checkpoint by itself (the scripts pass --load = --save).
# docs/slurm.md describes the scripts and how to adapt them to a site.

# The exit status of slime-train when it stopped early with a checkpoint (app/early_exit.h: kExitResumable).
SLIME_EXIT_RESUMABLE=75

# slime_log MESSAGE...: a timestamped line on stderr (the job's log).
slime_log() { echo "[slime-slurm $(date +%H:%M:%S)] $*" >&2; }

# slime_find_programs ROOT: the directory holding slime-train in a bundle (ROOT/bin) or a build tree
# ($SLIME_BUILD, default ROOT/build); printed.
slime_find_programs() {
  local root=$1
  if [ -n "${SLIME_BUILD:-}" ]; then echo "$SLIME_BUILD"
  elif [ -x "$root/bin/slime-train" ]; then echo "$root/bin"
  else echo "$root/build"; fi
}

# slime_launcher: "srun" inside a Slurm allocation with srun available, else "mpirun" (or $SLIME_LAUNCHER).
slime_launcher() {
  if [ -n "${SLIME_LAUNCHER:-}" ]; then echo "$SLIME_LAUNCHER"
  elif [ -n "${SLURM_JOB_ID:-}" ] && command -v srun >/dev/null; then echo srun
  else echo mpirun; fi
}

# Preemption signals. Sourcing this file installs a trap: SIGUSR1, SIGUSR2 or SIGTERM marks the script as stopping
# and is passed on as SIGUSR1 to the child that slime_run_child is waiting for (srun and mpirun pass SIGUSR1 on to
# every rank; mpirun would abort the job on SIGTERM). A script stopping starts no new launch (slime_launch returns 75).
slime_stop_requested=0
slime_child_pid=
slime_on_stop_signal() {
  slime_stop_requested=1
  if [ -n "$slime_child_pid" ]; then
    slime_log "preemption signal: passing SIGUSR1 to process $slime_child_pid"
    kill -USR1 "$slime_child_pid" 2>/dev/null || true
  fi
}
trap slime_on_stop_signal USR1 USR2 TERM

# slime_run_child COMMAND...: runs COMMAND in the background (signals reach it through the trap above) and
# returns its exit status once it has ended.
slime_run_child() {
  "$@" &
  slime_child_pid=$!
  local status=0
  while :; do
    wait "$slime_child_pid" && status=0 || status=$?
    kill -0 "$slime_child_pid" 2>/dev/null || break  # wait returned because of a trapped signal: keep waiting
  done
  slime_child_pid=
  return "$status"
}

# slime_launch NP PROGRAM ARGS...: runs PROGRAM on NP ranks, passing preemption signals on; returns its status.
# Environment read: SLIME_SRUN_MPI (pmix), SLIME_SRUN_ARGS / SLIME_MPIRUN_ARGS (more launcher options),
# SLIME_TASK_PREFIX (before each rank's command, e.g. "apptainer exec image.sif"),
# SLIME_TRAINER_RANKS and SLIME_COLOCATE (for task.sh's log names), SLIME_LOG_DIR (per-rank logs; unset: all
# ranks on the job's output).
slime_launch() {
  local np=$1
  shift
  if [ "$slime_stop_requested" = 1 ]; then
    slime_log "stopping: not launching $1"
    return "$SLIME_EXIT_RESUMABLE"
  fi
  local task
  task="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/task.sh"
  local launcher
  launcher=$(slime_launcher)
  local cmd
  case "$launcher" in
    srun)
      # --kill-on-bad-exit: one failed rank ends the step (as mpirun does) instead of leaving the others waiting.
      cmd=(srun --mpi="${SLIME_SRUN_MPI:-pmix}" --ntasks="$np" --kill-on-bad-exit=1 ${SLIME_SRUN_ARGS:-})
      ;;
    mpirun)
      cmd=(mpirun --oversubscribe --bind-to none ${SLIME_MPIRUN_ARGS:-})
      [ "$(id -u)" = 0 ] && cmd+=(--allow-run-as-root)
      # mpirun does not pass the caller's environment to remote nodes by itself: name what task.sh needs.
      local v
      for v in SLIME_TRAINER_RANKS SLIME_COLOCATE SLIME_LOG_DIR SLIME_PROGRESS OPENBLAS_NUM_THREADS OMP_NUM_THREADS NCCL_NVLS_ENABLE \
               LD_LIBRARY_PATH; do
        [ -n "${!v:-}" ] && cmd+=(-x "$v")
      done
      cmd+=(-np "$np")
      ;;
    *) slime_log "unknown SLIME_LAUNCHER=$launcher (srun or mpirun)"; return 2 ;;
  esac
  # A progress bar for rollouts when this shell is on a terminal (a rank cannot tell under srun or mpirun).
  if [ -z "${SLIME_PROGRESS:-}" ] && [ -t 2 ]; then export SLIME_PROGRESS=1; fi
  slime_log "launch: ${cmd[*]} ${SLIME_TASK_PREFIX:+$SLIME_TASK_PREFIX }$*"
  [ -n "${SLIME_DRY_RUN:-}" ] && return 0  # print the launch only (checking a script's pools off-cluster)
  # shellcheck disable=SC2086
  slime_run_child "${cmd[@]}" ${SLIME_TASK_PREFIX:-} bash "$task" "$@"
}

# slime_check_ntasks NEED WHAT: the allocation must have NEED tasks (Slurm's SLURM_NTASKS, when set); WHAT says
# which variables asked for them. Exits 2 with a message otherwise.
slime_check_ntasks() {
  local need=$1 what=$2
  if [ -n "${SLURM_NTASKS:-}" ] && [ "$SLURM_NTASKS" != "$need" ]; then
    slime_log "error: the job has $SLURM_NTASKS tasks but $what = $need ranks: change #SBATCH --nodes /" \
              "--ntasks-per-node or the variables at the top of the script"
    exit 2
  fi
}

# slime_train_job NP SLIME_TRAIN_OPTIONS...: the whole body of a training job script: a header line, NP ranks of
# slime-train with --exit-signal-handler, per-pool logs under $SLIME_LOG_DIR (default <SAVE>/logs/<job id>), and the
# requeue when a preemption signal stopped it. Needs SLIME_HOME and SAVE; exits with slime-train's status.
slime_train_job() {
  local np=$1
  shift
  local programs
  programs=$(slime_find_programs "$SLIME_HOME")
  export SLIME_LOG_DIR=${SLIME_LOG_DIR:-$SAVE/logs/${SLURM_JOB_ID:-local}}
  slime_log "job ${SLURM_JOB_ID:-(not under Slurm)} (restart ${SLURM_RESTART_COUNT:-0}) on" \
            "${SLURM_JOB_NODELIST:-$(hostname)}: $np ranks, checkpoints in $SAVE, rank logs in $SLIME_LOG_DIR"
  local status=0
  slime_launch "$np" "$programs/slime-train" "$@" --exit-signal-handler || status=$?
  slime_requeue_if_resumable "$status"
}

# slime_requeue_if_resumable STATUS: a step that exited 75 was stopped early and saved: requeue this batch job (it
# starts again from the top and resumes with --load) and exit 0. Outside a batch job, or on another status,
# returns STATUS.
slime_requeue_if_resumable() {
  local status=$1
  [ "$status" = "$SLIME_EXIT_RESUMABLE" ] || return "$status"
  # Only batch jobs can be requeued (an salloc allocation has BatchFlag=0).
  if [ -n "${SLURM_JOB_ID:-}" ] && scontrol show job "$SLURM_JOB_ID" 2>/dev/null | grep -q 'BatchFlag=1'; then
    slime_log "stopped early with a checkpoint: requeueing job $SLURM_JOB_ID (restart ${SLURM_RESTART_COUNT:-0})"
    scontrol requeue "$SLURM_JOB_ID"
    exit 0
  fi
  slime_log "stopped early with a checkpoint (status 75): run the same command again to resume"
  return "$status"
}
