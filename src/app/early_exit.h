// Stopping slime-train before --num-rollout with a checkpoint, as Megatron does: --exit-signal-handler (SIGTERM,
// SIGUSR1, SIGUSR2), --exit-duration-in-mins and --exit-interval. Slurm sends such a signal ahead of a preemption or
// the time limit (`#SBATCH --signal=B:USR1@300`, forwarded by slurm/lib.sh); the job finishes the rollout step in
// flight, saves it, and exits with kExitResumable, which the job scripts answer with `scontrol requeue`. The
// requeued job resumes from the checkpoint with --load (docs/slurm.md).
//
// The signal handler only records the signal. The decision is collective: after every rollout step all ranks
// combine what they saw (a signal on any rank, rank 0's clock for the duration), so they stop after the same step
// whichever ranks the signal reached.
#pragma once

#include <mpi.h>

#include <cstdint>
#include <string>

#include "core/args.h"

namespace slime::app {

// Exit status of a run stopped early by a signal or by --exit-duration-in-mins after saving its checkpoint: the
// job is resumable (sysexits' EX_TEMPFAIL). A run stopped by --exit-interval exits 0 (a planned stop).
constexpr int kExitResumable = 75;

// Installs the handlers of SIGTERM, SIGUSR1 and SIGUSR2 (idempotent). Before this, those signals kill the process.
void install_exit_signal_handlers();

// The last of those signals received since the handlers were installed, or 0.
int received_exit_signal();

struct ExitDecision {
  bool stop = false;
  int exit_code = 0;   // the process exit status when stopping
  std::string reason;  // for the log: "SIGUSR1", "--exit-duration-in-mins 30 reached", ...
};

class EarlyExit {
 public:
  // Starts the --exit-duration-in-mins clock; installs the signal handlers with --exit-signal-handler.
  explicit EarlyExit(const Args& args);

  // Collective over `world`, called by every rank after rollout step `rollout_id`: stop now?
  ExitDecision after_step(int64_t rollout_id, MPI_Comm world) const;

 private:
  bool signals_ = false;
  double duration_seconds_ = -1.0;
  int64_t interval_ = 0;
  double start_seconds_ = 0.0;
};

}  // namespace slime::app
