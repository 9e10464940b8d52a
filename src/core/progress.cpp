#include "core/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace slime {

Progress::Progress(std::string label, int64_t total, std::string unit, bool enabled, double plain_interval_s)
    : label_(std::move(label)),
      unit_(std::move(unit)),
      total_(std::max<int64_t>(total, 1)),
      plain_interval_s_(plain_interval_s),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {
  // SLIME_PROGRESS: 0 = off, 1 = the terminal form (on stderr), plain = plain lines; unset: the terminal form when
  // stderr is a terminal. (Under mpirun a rank's stderr is a pipe even when mpirun runs on a terminal, and its
  // stdout a pseudo-terminal even when mpirun's output goes to a file: slurm/lib.sh sets SLIME_PROGRESS=1 when the
  // launching shell is on a terminal.)
  const char* env = std::getenv("SLIME_PROGRESS");
  const std::string setting = env != nullptr ? env : "";
  if (!enabled || setting == "0") mode_ = Mode::Off;
  else if (setting == "1" || (setting.empty() && isatty(STDERR_FILENO) == 1)) mode_ = Mode::Terminal;
  else mode_ = Mode::Plain;
}

Progress::~Progress() { finish(); }

std::string Progress::render(int64_t done, double seconds, const std::string& note) const {
  constexpr int kWidth = 20;
  const int64_t clamped = std::clamp<int64_t>(done, 0, total_);
  const int filled = static_cast<int>(clamped * kWidth / total_);
  std::string bar(static_cast<size_t>(filled), '#');
  bar.append(static_cast<size_t>(kWidth - filled), '.');
  char buf[256];
  std::snprintf(buf, sizeof buf, "%s [%s] %lld/%lld %s  %.1f s", label_.c_str(), bar.c_str(),
                static_cast<long long>(done), static_cast<long long>(total_), unit_.c_str(), seconds);
  std::string line = buf;
  if (!note.empty()) line += "  " + note;
  return line;
}

void Progress::update(int64_t done, const std::string& note) {
  if (mode_ == Mode::Off) return;
  const auto now = std::chrono::steady_clock::now();
  const double since_draw = std::chrono::duration<double>(now - last_draw_).count();
  const double seconds = std::chrono::duration<double>(now - start_).count();
  if (mode_ == Mode::Terminal) {
    if (drawn_ && since_draw < 0.1 && done < total_) return;
    std::fprintf(stderr, "\r\033[K%s", render(done, seconds, note).c_str());
    std::fflush(stderr);
    drawn_ = true;
    last_draw_ = now;
  } else if (since_draw >= plain_interval_s_) {
    std::fprintf(stderr, "%s\n", render(done, seconds, note).c_str());
    std::fflush(stderr);
    last_draw_ = now;
  }
}

void Progress::finish() {
  if (mode_ == Mode::Terminal && drawn_) {
    std::fprintf(stderr, "\r\033[K");
    std::fflush(stderr);
  }
  drawn_ = false;
  mode_ = Mode::Off;
}

}  // namespace slime
