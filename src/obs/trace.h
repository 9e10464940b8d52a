// Chrome trace-event JSON, one file per rank (trace-rank<R>.json), viewable in Perfetto (ui.perfetto.dev) and
// chrome://tracing; merge_traces joins the ranks' files into one timeline.
//   TraceWriter trace(dir, rank, "rank 0 (trainer)");
//   { TraceSpan span(&trace, "train", "step", {{"step", 3}}); ... }   // a complete ("X") event when it ends
//   TraceSpan off(nullptr, "train", "step");                           // no writer: does nothing
// Timestamps are integer microseconds on the steady clock since a process-wide epoch (trace_now_us); pid is the
// rank, tid a small per-thread number. docs/observability.md describes the file layout.
#pragma once

#include <cstdint>
#include <cstdio>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace slime::obs {

// Microseconds since the process-wide trace epoch (steady clock). The epoch is fixed by the first call of
// trace_now_us or reset_trace_epoch.
int64_t trace_now_us();
// Moves the epoch to now. Call it once, before any event, right after a barrier on every rank, so the ranks'
// clocks start together (up to the barrier's skew) and a merged trace lines up.
void reset_trace_epoch();
// A small number for the calling thread, 0, 1, 2, ... in order of first use (stable for the thread's life).
int64_t trace_thread_id();

// The JSON Array Format: "[" then one event per line, separated by ",\n", and "\n]" written by close(). A run
// that dies before close() leaves a file without the final "]", which Perfetto and chrome://tracing accept and
// merge_traces tolerates. Events are buffered; an event written a second or more after the last flush flushes
// the buffer (so do flush() and close()).
// Thread-safe: one mutex around each event.
class TraceWriter {
 public:
  // Creates `dir` (with parents) and `<dir>/trace-rank<rank>.json`, truncating an old one, and writes the
  // process_name ("rank 0 (trainer)") and process_sort_index (the rank) metadata events.
  TraceWriter(const std::string& dir, int rank, const std::string& process_name);
  ~TraceWriter();  // close(); an error there is logged, not thrown
  TraceWriter(const TraceWriter&) = delete;
  TraceWriter& operator=(const TraceWriter&) = delete;

  const std::string& path() const { return path_; }
  int rank() const { return rank_; }

  // Metadata event naming thread `tid` (default: the calling thread) in the viewer.
  void set_thread_name(const std::string& name, int64_t tid = trace_thread_id());
  // "X": a span [ts_us, ts_us + dur_us). `args` must be a JSON object or null (none).
  void complete(std::string_view category, std::string_view name, int64_t ts_us, int64_t dur_us,
                const nlohmann::json& args = nullptr, int64_t tid = trace_thread_id());
  // "i": a point in time; scope 't' (thread), 'p' (process) or 'g' (global: a line across every track).
  void instant(std::string_view category, std::string_view name, const nlohmann::json& args = nullptr,
               char scope = 't', int64_t ts_us = trace_now_us(), int64_t tid = trace_thread_id());
  // "C": a counter track per name, one series per key of `values` (a JSON object of numbers).
  void counter(std::string_view name, const nlohmann::json& values, int64_t ts_us = trace_now_us());

  void flush();
  // Writes the final "]" and closes the file; later events are errors. Safe to call twice.
  void close();

 private:
  // Appends one event line (the JSON object's members, without braces); takes the lock.
  void write_event(const std::string& members);

  std::string path_;
  int rank_ = 0;
  std::FILE* file_ = nullptr;
  bool first_event_ = true;
  int64_t last_flush_us_ = 0;
  std::mutex mutex_;
};

// RAII span: records a complete event from construction to destruction (or end()), on the constructing thread's
// track. With a null writer everything is one inline pointer test: no clock read, no copy, no allocation (a null
// span in a loop compiles to nothing at -O3). An args object passed to the constructor is built by the caller
// even then, so on hot paths add arguments with arg(), which is free when the writer is null.
class TraceSpan {
 public:
  TraceSpan(TraceWriter* writer, std::string_view category, std::string_view name) : writer_(writer) {
    if (writer_ != nullptr) start(category, name, nullptr);
  }
  TraceSpan(TraceWriter* writer, std::string_view category, std::string_view name, nlohmann::json args)
      : writer_(writer) {
    if (writer_ != nullptr) start(category, name, std::move(args));
  }
  ~TraceSpan() {
    if (writer_ != nullptr) end();
  }
  TraceSpan(const TraceSpan&) = delete;
  TraceSpan& operator=(const TraceSpan&) = delete;

  template <class T>
  void arg(std::string_view key, T&& value) {
    if (writer_ != nullptr) open_->args[std::string(key)] = std::forward<T>(value);
  }
  // Records the event now (the destructor then does nothing). Errors are logged, not thrown (destructor-safe).
  void end();

 private:
  void start(std::string_view category, std::string_view name, nlohmann::json args);

  // What a live span needs; absent (and never constructed) without a writer.
  struct Open {
    std::string category;
    std::string name;
    nlohmann::json args;
    int64_t tid;
    int64_t start_us;
  };
  TraceWriter* writer_;
  std::optional<Open> open_;
};

// The process's trace (slime-train's --trace-dir), for code deep in the call tree (trainer micro-batches, the
// rollout engine) that has no writer passed to it; null when tracing is off. Set once at start, cleared at the end.
TraceWriter* process_trace();
void set_process_trace(TraceWriter* writer);

// What merge_traces did.
struct MergeSummary {
  int64_t events = 0;                        // written to the output
  std::vector<std::string> unterminated;     // inputs without the final "]" (a run that did not close)
  std::vector<std::string> partial_dropped;  // inputs whose last line was a half-written event (dropped)
};

// Concatenates the events of per-rank trace files (JSON arrays of event objects, as TraceWriter writes them) into
// one JSON array file, in input order. Tolerates inputs without the final "]" and a half-written last event line
// (a crash mid-write; reported in the summary and logged). A missing file, a file that is not a JSON array of
// objects, or any other damage is an error naming the file. The output is written atomically (temp + rename).
MergeSummary merge_traces(const std::vector<std::string>& inputs, const std::string& output);

}  // namespace slime::obs
