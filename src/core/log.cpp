#include "core/log.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <mutex>

namespace slime::log {
namespace {

int g_rank = 0;
Level g_level = [] {
  const char* env = std::getenv("SLIME_LOG_LEVEL");
  return env ? parse_level(env) : Level::Info;
}();
std::mutex g_mutex;

const char* level_tag(Level level) {
  switch (level) {
    case Level::Debug: return "D";
    case Level::Info: return "I";
    case Level::Warn: return "W";
    case Level::Error: return "E";
  }
  return "?";
}

}  // namespace

void set_rank(int rank) { g_rank = rank; }
int rank() { return g_rank; }
void set_level(Level level) { g_level = level; }
Level level() { return g_level; }

Level parse_level(const std::string& name) {
  if (name == "debug") return Level::Debug;
  if (name == "info") return Level::Info;
  if (name == "warn" || name == "warning") return Level::Warn;
  if (name == "error") return Level::Error;
  SLIME_FAIL("log level: expected one of debug|info|warn|error, got '", name, "'");
}

void write(Level level, const std::string& message) {
  if (level < g_level) return;
  std::time_t now = std::time(nullptr);
  std::tm tm_now{};
  localtime_r(&now, &tm_now);
  char stamp[16];
  std::strftime(stamp, sizeof(stamp), "%H:%M:%S", &tm_now);
  std::lock_guard<std::mutex> lock(g_mutex);
  std::fprintf(stderr, "[slime %s r%d %s] %s\n", level_tag(level), g_rank, stamp, message.c_str());
  std::fflush(stderr);
}

}  // namespace slime::log
