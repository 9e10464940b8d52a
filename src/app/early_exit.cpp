#include "app/early_exit.h"

#include <atomic>
#include <csignal>


namespace slime::app {
namespace {

volatile std::sig_atomic_t g_signal = 0;  // written only by the handler

extern "C" void record_exit_signal(int sig) { g_signal = sig; }

std::string signal_name(int sig) {
  switch (sig) {
    case SIGTERM: return "SIGTERM";
    case SIGUSR1: return "SIGUSR1";
    case SIGUSR2: return "SIGUSR2";
    default: return "signal " + std::to_string(sig);
  }
}

double now_seconds() { return MPI_Wtime(); }

}  // namespace

void install_exit_signal_handlers() {
  static std::atomic<bool> installed{false};
  if (installed.exchange(true)) return;
  struct sigaction action = {};
  action.sa_handler = record_exit_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;  // a signal must not make a blocking call (MPI, file I/O) fail with EINTR
  for (int sig : {SIGTERM, SIGUSR1, SIGUSR2}) sigaction(sig, &action, nullptr);
}

int received_exit_signal() { return g_signal; }

EarlyExit::EarlyExit(const Args& args)
    : signals_(args.exit_signal_handler),
      duration_seconds_(args.exit_duration_in_mins ? *args.exit_duration_in_mins * 60.0 : -1.0),
      interval_(args.exit_interval.value_or(0)),
      start_seconds_(now_seconds()) {
  if (signals_) install_exit_signal_handlers();
}

ExitDecision EarlyExit::after_step(int64_t rollout_id, MPI_Comm world) const {
  if (!signals_ && duration_seconds_ < 0 && interval_ == 0) return {};
  // [0]: the largest signal number seen on any rank; [1]: rank 0's clock says the duration is up.
  int local[2] = {signals_ ? static_cast<int>(received_exit_signal()) : 0, 0};
  int rank = 0;
  MPI_Comm_rank(world, &rank);
  if (rank == 0 && duration_seconds_ >= 0 && now_seconds() - start_seconds_ >= duration_seconds_) local[1] = 1;
  int global[2] = {0, 0};
  MPI_Allreduce(local, global, 2, MPI_INT, MPI_MAX, world);
  if (global[0] != 0) return {true, kExitResumable, signal_name(global[0]) + " received"};
  if (global[1] != 0) return {true, kExitResumable, "--exit-duration-in-mins reached"};
  if (interval_ > 0 && (rollout_id + 1) % interval_ == 0)
    return {true, 0, "--exit-interval " + std::to_string(interval_) + " reached"};
  return {};
}

}  // namespace slime::app
