// TensorBoardWriter: scalar summaries in TensorFlow event files that TensorBoard reads directly
// (`tensorboard --logdir DIR`). No TensorFlow or protobuf dependency: the few messages used (Event, Summary,
// Summary.Value) are encoded by hand and framed as TFRecords. docs/observability.md describes the bytes.
#pragma once

#include <cstdint>
#include <cstdio>
#include <initializer_list>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace slime::obs {

// Seconds since the Unix epoch (system clock), the wall_time of an Event.
double unix_time_seconds();

// One scalar of a Summary: what TensorBoard plots under `tag` at some step.
using ScalarValue = std::pair<std::string, double>;

// The encoders the writer uses, exposed for tests and tools.
// Event{wall_time = 1, file_version = 3 ("brain.Event:2")}: the first record of every event file.
std::string encode_file_version_event(double wall_time);
// Event{wall_time = 1, step = 2, summary = 5 {value = 1 {tag = 1, simple_value = 2 (float)}...}}.
std::string encode_scalars_event(double wall_time, int64_t step, const std::vector<ScalarValue>& values);
// TFRecord framing: uint64 LE length, uint32 masked CRC-32C of those 8 bytes, data, uint32 masked CRC of data.
std::string frame_tfrecord(const std::string& data);

// Writes `<log_dir>/events.out.tfevents.<unix seconds>.<hostname>.<pid>.<rank>` (log_dir is created with its
// parents). An existing file of that name is never overwritten: a suffix `.1`, `.2`, ... is added instead.
// Values are stored as float32 (Summary.Value.simple_value), so doubles are rounded; NaN and +-inf are written
// as they are (TensorBoard shows them as such). Every add_* call is flushed to the OS, so a live TensorBoard sees
// each step and a crash loses nothing already added. Thread-safe (one mutex around each record).
class TensorBoardWriter {
 public:
  explicit TensorBoardWriter(const std::string& log_dir, int rank = 0);
  ~TensorBoardWriter();  // close(); an error there is logged, not thrown
  TensorBoardWriter(const TensorBoardWriter&) = delete;
  TensorBoardWriter& operator=(const TensorBoardWriter&) = delete;

  const std::string& path() const { return path_; }

  // One Event holding one Value.
  void add_scalar(const std::string& tag, double value, int64_t step, double wall_time = unix_time_seconds());
  // One Event whose Summary holds every value, in the given order (a map: in tag order).
  void add_scalars(const std::vector<ScalarValue>& values, int64_t step, double wall_time = unix_time_seconds());
  void add_scalars(const std::map<std::string, double>& values, int64_t step,
                   double wall_time = unix_time_seconds());
  // Makes `add_scalars({{"loss", loss}, {"lr", lr}}, step)` unambiguous.
  void add_scalars(std::initializer_list<ScalarValue> values, int64_t step, double wall_time = unix_time_seconds());

  void flush();
  // Flushes and closes the file; later add_* calls are errors. Safe to call twice.
  void close();

 private:
  void write_record_locked(const std::string& data);

  std::string path_;
  std::FILE* file_ = nullptr;
  std::mutex mutex_;
};

}  // namespace slime::obs
