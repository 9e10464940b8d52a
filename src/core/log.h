// Logging: one line per message, prefixed with the MPI rank and wall time, to stderr.
// Rank 0 is the default voice; SLIME_INFO0 prints only there.
#pragma once

#include <string>

#include "core/error.h"

namespace slime::log {

enum class Level { Debug = 0, Info = 1, Warn = 2, Error = 3 };

void set_rank(int rank);
int rank();
void set_level(Level level);
Level level();
// Parses debug|info|warn|error (the value of SLIME_LOG_LEVEL or --log-level).
Level parse_level(const std::string& name);
void write(Level level, const std::string& message);

}  // namespace slime::log

#define SLIME_DEBUG(...)                                                 \
  do {                                                                   \
    if (::slime::log::level() <= ::slime::log::Level::Debug)             \
      ::slime::log::write(::slime::log::Level::Debug, ::slime::cat(__VA_ARGS__)); \
  } while (0)
#define SLIME_INFO(...) ::slime::log::write(::slime::log::Level::Info, ::slime::cat(__VA_ARGS__))
#define SLIME_WARN(...) ::slime::log::write(::slime::log::Level::Warn, ::slime::cat(__VA_ARGS__))
#define SLIME_INFO0(...)                                                             \
  do {                                                                               \
    if (::slime::log::rank() == 0) SLIME_INFO(__VA_ARGS__);                          \
  } while (0)
