// Wall-clock timing: a stopwatch, and named accumulating timers for "where did the step's time go".
#pragma once

#include <chrono>
#include <map>
#include <string>

namespace slime {

class Stopwatch {
 public:
  Stopwatch() : start_(std::chrono::steady_clock::now()) {}
  void reset() { start_ = std::chrono::steady_clock::now(); }
  double seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }

 private:
  std::chrono::steady_clock::time_point start_;
};

// Named totals: seconds and call counts. Not thread safe; one registry per thread of work.
class TimerRegistry {
 public:
  struct Entry {
    double seconds = 0;
    long calls = 0;
  };
  void add(const std::string& name, double seconds) {
    Entry& e = entries_[name];
    e.seconds += seconds;
    e.calls += 1;
  }
  const std::map<std::string, Entry>& entries() const { return entries_; }
  double seconds(const std::string& name) const {
    auto it = entries_.find(name);
    return it == entries_.end() ? 0.0 : it->second.seconds;
  }
  void clear() { entries_.clear(); }

 private:
  std::map<std::string, Entry> entries_;
};

class ScopedTimer {
 public:
  ScopedTimer(TimerRegistry& registry, std::string name) : registry_(registry), name_(std::move(name)) {}
  ~ScopedTimer() { registry_.add(name_, watch_.seconds()); }

 private:
  TimerRegistry& registry_;
  std::string name_;
  Stopwatch watch_;
};

}  // namespace slime
