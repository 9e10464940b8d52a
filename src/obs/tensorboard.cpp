// TensorBoardWriter: hand-encoded Event protos in TFRecord framing (field numbers from TensorFlow's
// tensorflow/core/util/event.proto and tensorflow/core/framework/summary.proto).
#include "obs/tensorboard.h"

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "core/error.h"
#include "core/io.h"
#include "core/log.h"
#include "obs/crc32c.h"
#include "obs/protobuf_wire.h"

namespace slime::obs {
namespace {

// message Event { double wall_time = 1; int64 step = 2; oneof what { string file_version = 3; ...
//                 Summary summary = 5; ... } }
constexpr uint32_t kEventWallTime = 1;
constexpr uint32_t kEventStep = 2;
constexpr uint32_t kEventFileVersion = 3;
constexpr uint32_t kEventSummary = 5;
// message Summary { repeated Value value = 1; }
constexpr uint32_t kSummaryValue = 1;
// message Summary.Value { string tag = 1; oneof value { float simple_value = 2; ... } }
constexpr uint32_t kValueTag = 1;
constexpr uint32_t kValueSimpleValue = 2;

constexpr const char* kFileVersion = "brain.Event:2";

std::string hostname() {
  char name[256] = {0};
  if (::gethostname(name, sizeof name - 1) != 0 || name[0] == '\0') return "localhost";
  return name;
}

}  // namespace

double unix_time_seconds() {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

std::string encode_file_version_event(double wall_time) {
  std::string event;
  wire::append_double_field(event, kEventWallTime, wall_time);
  wire::append_bytes_field(event, kEventFileVersion, kFileVersion);
  return event;
}

std::string encode_scalars_event(double wall_time, int64_t step, const std::vector<ScalarValue>& values) {
  std::string summary;
  for (const auto& [tag, value] : values) {
    SLIME_CHECK(!tag.empty(), "TensorBoard scalar at step ", step, ": empty tag");
    std::string encoded_value;
    wire::append_bytes_field(encoded_value, kValueTag, tag);
    wire::append_float_field(encoded_value, kValueSimpleValue, static_cast<float>(value));
    wire::append_bytes_field(summary, kSummaryValue, encoded_value);
  }
  std::string event;
  wire::append_double_field(event, kEventWallTime, wall_time);
  wire::append_int64_field(event, kEventStep, step);  // written even when 0: explicit beats proto3's default
  wire::append_bytes_field(event, kEventSummary, summary);
  return event;
}

std::string frame_tfrecord(const std::string& data) {
  std::string record;
  record.reserve(data.size() + 16);
  wire::append_fixed64(record, data.size());
  wire::append_fixed32(record, masked_crc32c(record.data(), 8));
  record += data;
  wire::append_fixed32(record, masked_crc32c(data.data(), data.size()));
  return record;
}

TensorBoardWriter::TensorBoardWriter(const std::string& log_dir, int rank) {
  make_directories(log_dir);
  const auto seconds = static_cast<int64_t>(unix_time_seconds());
  const std::string base = path_join(log_dir, cat("events.out.tfevents.", seconds, ".", hostname(), ".",
                                                  ::getpid(), ".", rank));
  // "x": exclusive create, so two writers started in the same second never share (or truncate) a file.
  for (int suffix = 0; file_ == nullptr; ++suffix) {
    path_ = suffix == 0 ? base : cat(base, ".", suffix);
    file_ = std::fopen(path_.c_str(), "wbx");
    if (file_ == nullptr && errno != EEXIST)
      SLIME_FAIL(path_, ": cannot create TensorBoard event file: ", std::strerror(errno));
  }
  std::lock_guard<std::mutex> lock(mutex_);
  write_record_locked(encode_file_version_event(unix_time_seconds()));
}

TensorBoardWriter::~TensorBoardWriter() {
  try {
    close();
  } catch (const std::exception& e) {
    SLIME_WARN(e.what());
  }
}

void TensorBoardWriter::add_scalar(const std::string& tag, double value, int64_t step, double wall_time) {
  add_scalars(std::vector<ScalarValue>{{tag, value}}, step, wall_time);
}

void TensorBoardWriter::add_scalars(const std::vector<ScalarValue>& values, int64_t step, double wall_time) {
  const std::string event = encode_scalars_event(wall_time, step, values);
  std::lock_guard<std::mutex> lock(mutex_);
  write_record_locked(event);
}

void TensorBoardWriter::add_scalars(const std::map<std::string, double>& values, int64_t step, double wall_time) {
  add_scalars(std::vector<ScalarValue>(values.begin(), values.end()), step, wall_time);
}

void TensorBoardWriter::add_scalars(std::initializer_list<ScalarValue> values, int64_t step, double wall_time) {
  add_scalars(std::vector<ScalarValue>(values), step, wall_time);
}

void TensorBoardWriter::write_record_locked(const std::string& data) {
  SLIME_CHECK(file_ != nullptr, path_, ": TensorBoard event file already closed");
  const std::string record = frame_tfrecord(data);
  SLIME_CHECK(std::fwrite(record.data(), 1, record.size(), file_) == record.size(), path_,
              ": write failed: ", std::strerror(errno));
  SLIME_CHECK(std::fflush(file_) == 0, path_, ": flush failed: ", std::strerror(errno));
}

void TensorBoardWriter::flush() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (file_ != nullptr) SLIME_CHECK(std::fflush(file_) == 0, path_, ": flush failed: ", std::strerror(errno));
}

void TensorBoardWriter::close() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (file_ == nullptr) return;
  std::FILE* file = file_;
  file_ = nullptr;
  SLIME_CHECK(std::fclose(file) == 0, path_, ": close failed: ", std::strerror(errno));
}

}  // namespace slime::obs
