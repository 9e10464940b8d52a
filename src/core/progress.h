// Progress of a long phase (rollout generation) for whoever watches the run:
//   - on an interactive terminal (stderr is a TTY, or SLIME_PROGRESS=1): one line redrawn in place, at most 10 times a second,
//       rollout 12 [##########..........] 16/32 groups  2.1 s  dropped 3
//     and cleared by finish(), so the per-step metrics lines stay clean;
//   - otherwise (a log file, sbatch): nothing for short phases, and a plain line every `plain_interval_s` seconds
//     (30) for long ones, so a log shows that a long rollout is alive.
// SLIME_PROGRESS=0 turns it off, =1 forces the terminal form, =plain the plain lines. Used from one thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace slime {

class Progress {
 public:
  // `label` starts the line ("rollout 12"); `unit` names what is counted ("groups").
  Progress(std::string label, int64_t total, std::string unit, bool enabled = true, double plain_interval_s = 30.0);
  ~Progress();  // finish()
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  // `done` of total so far; `note` is appended ("dropped 3"). Cheap when nothing is drawn.
  void update(int64_t done, const std::string& note = "");
  // Clears the terminal line (terminal form); nothing otherwise. Safe to call twice.
  void finish();

  // The line as drawn for `done` after `seconds` (exposed for tests).
  std::string render(int64_t done, double seconds, const std::string& note) const;

 private:
  enum class Mode { Off, Terminal, Plain };
  std::string label_, unit_;
  int64_t total_;
  Mode mode_ = Mode::Off;
  double plain_interval_s_;
  std::chrono::steady_clock::time_point start_, last_draw_;
  bool drawn_ = false;
};

}  // namespace slime
