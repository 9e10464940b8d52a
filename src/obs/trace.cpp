// TraceWriter, TraceSpan and merge_traces. Events are formatted by hand in the field order of the Chrome trace
// format document (name, cat, ph, ts, dur, pid, tid, args); nlohmann::json quotes strings and serializes args.
#include "obs/trace.h"

#ifdef SLIME_HAVE_NVTX
#include <nvtx3/nvToolsExt.h>
#endif

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstring>

#include "core/error.h"
#include "core/io.h"
#include "core/log.h"

namespace slime::obs {
namespace {

using ordered_json = nlohmann::ordered_json;

constexpr int64_t kFlushIntervalUs = 1000000;
constexpr int64_t kNoEpoch = INT64_MIN;

std::atomic<int64_t> g_epoch_ns{kNoEpoch};
std::atomic<int64_t> g_next_thread_id{0};

int64_t steady_ns() {
  using namespace std::chrono;
  return duration_cast<nanoseconds>(steady_clock::now().time_since_epoch()).count();
}

int64_t epoch_ns() {
  int64_t epoch = g_epoch_ns.load(std::memory_order_acquire);
  if (epoch != kNoEpoch) return epoch;
  const int64_t now = steady_ns();
  // First caller wins; a loser gets the winner's epoch back in `epoch`.
  return g_epoch_ns.compare_exchange_strong(epoch, now, std::memory_order_acq_rel) ? now : epoch;
}

// A JSON string literal; invalid UTF-8 is replaced (U+FFFD) rather than thrown on.
std::string quote(std::string_view text) {
  return nlohmann::json(std::string(text)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

template <class Json>
std::string dump(const Json& value) {
  return value.dump(-1, ' ', false, Json::error_handler_t::replace);
}

}  // namespace

int64_t trace_now_us() {
  const int64_t epoch = epoch_ns();  // before reading the clock, so the result is never negative
  return (steady_ns() - epoch) / 1000;
}

void reset_trace_epoch() { g_epoch_ns.store(steady_ns(), std::memory_order_release); }

int64_t trace_thread_id() {
  thread_local const int64_t id = g_next_thread_id.fetch_add(1);
  return id;
}

// ---------------------------------------------------------------------------------------------------------------
// TraceWriter

TraceWriter::TraceWriter(const std::string& dir, int rank, const std::string& process_name) : rank_(rank) {
  make_directories(dir);
  path_ = path_join(dir, cat("trace-rank", rank, ".json"));
  file_ = std::fopen(path_.c_str(), "w");
  SLIME_CHECK(file_ != nullptr, path_, ": cannot create trace file: ", std::strerror(errno));
  SLIME_CHECK(std::fputs("[\n", file_) >= 0, path_, ": write failed: ", std::strerror(errno));
  write_event(cat("\"name\":\"process_name\",\"ph\":\"M\",\"pid\":", rank_, ",\"tid\":0,\"args\":{\"name\":",
                  quote(process_name), "}"));
  write_event(cat("\"name\":\"process_sort_index\",\"ph\":\"M\",\"pid\":", rank_,
                  ",\"tid\":0,\"args\":{\"sort_index\":", rank_, "}"));
  flush();
}

TraceWriter::~TraceWriter() {
  try {
    close();
  } catch (const std::exception& e) {
    SLIME_WARN(e.what());
  }
}

void TraceWriter::set_thread_name(const std::string& name, int64_t tid) {
  write_event(cat("\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":", rank_, ",\"tid\":", tid,
                  ",\"args\":{\"name\":", quote(name), "}"));
}

void TraceWriter::complete(std::string_view category, std::string_view name, int64_t ts_us, int64_t dur_us,
                           const nlohmann::json& args, int64_t tid) {
  SLIME_CHECK(args.is_null() || args.is_object(), path_, ": trace event '", name,
              "': args must be a JSON object, got ", dump(args));
  std::string members = cat("\"name\":", quote(name), ",\"cat\":", quote(category), ",\"ph\":\"X\",\"ts\":", ts_us,
                            ",\"dur\":", dur_us, ",\"pid\":", rank_, ",\"tid\":", tid);
  if (!args.is_null()) members += cat(",\"args\":", dump(args));
  write_event(members);
}

void TraceWriter::instant(std::string_view category, std::string_view name, const nlohmann::json& args, char scope,
                          int64_t ts_us, int64_t tid) {
  SLIME_CHECK(scope == 't' || scope == 'p' || scope == 'g', path_, ": instant event '", name, "': scope '", scope,
              "' is not t, p or g");
  SLIME_CHECK(args.is_null() || args.is_object(), path_, ": trace event '", name,
              "': args must be a JSON object, got ", dump(args));
  std::string members = cat("\"name\":", quote(name), ",\"cat\":", quote(category), ",\"ph\":\"i\",\"ts\":", ts_us,
                            ",\"pid\":", rank_, ",\"tid\":", tid, ",\"s\":\"", scope, "\"");
  if (!args.is_null()) members += cat(",\"args\":", dump(args));
  write_event(members);
}

void TraceWriter::counter(std::string_view name, const nlohmann::json& values, int64_t ts_us) {
  SLIME_CHECK(values.is_object() && !values.empty(), path_, ": counter '", name,
              "': values must be a non-empty JSON object, got ", dump(values));
  for (const auto& [series, value] : values.items())
    SLIME_CHECK(value.is_number(), path_, ": counter '", name, "' series '", series, "': expected a number, got ",
                dump(value));
  write_event(cat("\"name\":", quote(name), ",\"ph\":\"C\",\"ts\":", ts_us, ",\"pid\":", rank_,
                  ",\"args\":", dump(values)));
}

void TraceWriter::write_event(const std::string& members) {
  std::lock_guard<std::mutex> lock(mutex_);
  SLIME_CHECK(file_ != nullptr, path_, ": trace file already closed");
  // The separator goes before each event after the first, so the file never ends in a dangling comma.
  const std::string line = cat(first_event_ ? "" : ",\n", "{", members, "}");
  first_event_ = false;
  SLIME_CHECK(std::fwrite(line.data(), 1, line.size(), file_) == line.size(), path_, ": write failed: ",
              std::strerror(errno));
  const int64_t now = trace_now_us();
  if (now - last_flush_us_ >= kFlushIntervalUs) {
    SLIME_CHECK(std::fflush(file_) == 0, path_, ": flush failed: ", std::strerror(errno));
    last_flush_us_ = now;
  }
}

void TraceWriter::flush() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (file_ == nullptr) return;
  SLIME_CHECK(std::fflush(file_) == 0, path_, ": flush failed: ", std::strerror(errno));
  last_flush_us_ = trace_now_us();
}

void TraceWriter::close() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (file_ == nullptr) return;
  std::FILE* file = file_;
  file_ = nullptr;
  const bool wrote = std::fputs("\n]\n", file) >= 0;
  const bool closed = std::fclose(file) == 0;
  SLIME_CHECK(wrote && closed, path_, ": closing the trace failed: ", std::strerror(errno));
}

// ---------------------------------------------------------------------------------------------------------------
// TraceSpan

void TraceSpan::start(std::string_view category, std::string_view name, nlohmann::json args) {
  open_.emplace(Open{std::string(category), std::string(name), std::move(args), trace_thread_id(), 0});
#ifdef SLIME_HAVE_NVTX
  // The same span as an NVTX range, for Nsight Systems (`nsys profile mpirun ... slime-train --trace-dir D`):
  // header-only NVTX, a no-op unless a profiler is attached.
  nvtxRangePushA((open_->category + "/" + open_->name).c_str());
#endif
  open_->start_us = trace_now_us();
}

void TraceSpan::end() {
  if (writer_ == nullptr) return;
  TraceWriter* writer = writer_;
  writer_ = nullptr;
  const int64_t end_us = trace_now_us();
#ifdef SLIME_HAVE_NVTX
  nvtxRangePop();
#endif
  try {
    writer->complete(open_->category, open_->name, open_->start_us, end_us - open_->start_us, open_->args,
                     open_->tid);
  } catch (const std::exception& e) {
    SLIME_WARN("trace span '", open_->name, "': ", e.what());
  }
}

// ---------------------------------------------------------------------------------------------------------------
// merge_traces

namespace {

std::string rstrip(std::string text) {
  while (!text.empty() && (text.back() == ' ' || text.back() == '\n' || text.back() == '\r' || text.back() == '\t'))
    text.pop_back();
  return text;
}

// Closes an unterminated array: drops a trailing separator and appends "]".
std::string terminate_array(std::string text) {
  text = rstrip(std::move(text));
  if (!text.empty() && text.back() == ',') text.pop_back();
  return text + "\n]";
}

// Parses one per-rank trace into its array of events, recording in `summary` what had to be tolerated.
ordered_json read_trace(const std::string& path, MergeSummary& summary) {
  SLIME_CHECK(path_exists(path), "merge_traces: ", path, ": no such file");
  const std::string text = rstrip(read_text_file(path));
  SLIME_CHECK(!text.empty(), "merge_traces: ", path, ": empty file, not a trace");
  SLIME_CHECK(text.front() == '[', "merge_traces: ", path,
              ": not a trace in the JSON Array format (expected '[' first, got '", text.front(), "')");
  ordered_json events = ordered_json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (events.is_discarded()) {
    // A run that did not close(): no final "]", and perhaps a last event cut mid-write (which may even end in
    // ']', inside its args).
    events = ordered_json::parse(terminate_array(text), nullptr, false);
    if (events.is_discarded()) {
      const size_t last_line = text.rfind('\n');
      if (last_line != std::string::npos) {
        events = ordered_json::parse(terminate_array(text.substr(0, last_line)), nullptr, false);
        if (!events.is_discarded()) {
          summary.partial_dropped.push_back(path);
          SLIME_WARN("merge_traces: ", path, ": dropped a half-written last event");
        }
      }
    }
    if (!events.is_discarded()) summary.unterminated.push_back(path);
  }
  if (events.is_discarded()) {
    try {  // parse again, throwing, for the parser's message (offset and what it expected)
      const ordered_json reparsed = ordered_json::parse(text);
      (void)reparsed;
    } catch (const nlohmann::json::parse_error& e) {
      SLIME_FAIL("merge_traces: ", path, ": malformed trace JSON: ", e.what());
    }
    SLIME_FAIL("merge_traces: ", path, ": malformed trace JSON");
  }
  SLIME_CHECK(events.is_array(), "merge_traces: ", path, ": expected a JSON array of events, got ",
              json_type_name(events));
  for (size_t i = 0; i < events.size(); ++i)
    SLIME_CHECK(events[i].is_object(), "merge_traces: ", path, ": event ", i, ": expected a JSON object, got ",
                json_type_name(events[i]));
  return events;
}

}  // namespace

MergeSummary merge_traces(const std::vector<std::string>& inputs, const std::string& output) {
  SLIME_CHECK(!inputs.empty(), "merge_traces: no input traces for ", output);
  MergeSummary summary;
  const std::string tmp = cat(output, ".tmp.", ::getpid());
  std::FILE* out = std::fopen(tmp.c_str(), "w");
  SLIME_CHECK(out != nullptr, "merge_traces: ", tmp, ": cannot create: ", std::strerror(errno));
  try {
    std::string text = "[\n";
    for (const std::string& input : inputs) {
      // One input in memory at a time.
      const ordered_json events = read_trace(input, summary);
      for (const auto& event : events) {
        text += cat(summary.events == 0 ? "" : ",\n", dump(event));
        summary.events += 1;
      }
      SLIME_CHECK(std::fwrite(text.data(), 1, text.size(), out) == text.size(), "merge_traces: ", tmp,
                  ": write failed: ", std::strerror(errno));
      text.clear();
    }
    SLIME_CHECK(std::fputs("\n]\n", out) >= 0, "merge_traces: ", tmp, ": write failed: ", std::strerror(errno));
  } catch (...) {
    std::fclose(out);
    std::remove(tmp.c_str());
    throw;
  }
  SLIME_CHECK(std::fclose(out) == 0, "merge_traces: ", tmp, ": close failed: ", std::strerror(errno));
  SLIME_CHECK(std::rename(tmp.c_str(), output.c_str()) == 0, "merge_traces: rename ", tmp, " -> ", output, ": ",
              std::strerror(errno));
  return summary;
}

namespace {
std::atomic<TraceWriter*> g_process_trace{nullptr};
}  // namespace

TraceWriter* process_trace() { return g_process_trace.load(std::memory_order_acquire); }
void set_process_trace(TraceWriter* writer) { g_process_trace.store(writer, std::memory_order_release); }

}  // namespace slime::obs
