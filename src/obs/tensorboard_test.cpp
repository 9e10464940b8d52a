// TensorBoardWriter: file name, TFRecord framing and CRCs, and every byte of the Event / Summary / Value encoding
// for known events; several values in one event; int64 steps; non-finite values; errors.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <cmath>
#include <cstring>
#include <regex>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/io.h"
#include "obs/obs_test_util.h"
#include "obs/crc32c.h"
#include "obs/tensorboard.h"

using namespace slime::obs;
using Catch::Matchers::Contains;

using slime::obs::testing::TempDir;

namespace {

std::string bytes(std::initializer_list<int> values) {
  std::string out;
  for (int v : values) out.push_back(static_cast<char>(v));
  return out;
}

uint64_t read_le(const std::string& data, size_t offset, int width) {
  uint64_t value = 0;
  for (int i = 0; i < width; ++i) value |= static_cast<uint64_t>(static_cast<unsigned char>(data[offset + i])) << (8 * i);
  return value;
}

// Splits a file into record payloads, checking the framing and both masked CRCs of each record.
std::vector<std::string> read_records(const std::string& path) {
  const std::string file = slime::read_text_file(path);
  std::vector<std::string> records;
  size_t offset = 0;
  while (offset < file.size()) {
    REQUIRE(offset + 12 <= file.size());
    const uint64_t length = read_le(file, offset, 8);
    CHECK(read_le(file, offset + 8, 4) == masked_crc32c(file.data() + offset, 8));
    REQUIRE(offset + 12 + length + 4 <= file.size());
    const std::string data = file.substr(offset + 12, length);
    CHECK(read_le(file, offset + 12 + length, 4) == masked_crc32c(data.data(), data.size()));
    records.push_back(data);
    offset += 12 + length + 4;
  }
  return records;
}

std::string le_double(double value) {
  uint64_t bits;
  std::memcpy(&bits, &value, 8);
  std::string out;
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((bits >> (8 * i)) & 0xff));
  return out;
}

std::string le_float(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, 4);
  std::string out;
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((bits >> (8 * i)) & 0xff));
  return out;
}

}  // namespace

TEST_CASE("TensorBoardWriter: file name and the file_version record", "[obs]") {
  const TempDir temp("tb_name");
  const std::string dir = temp.path + "/nested/logs";
  const double before = unix_time_seconds();
  std::string path;
  {
    TensorBoardWriter writer(dir, 3);
    path = writer.path();
  }
  const double after = unix_time_seconds();
  char host[256] = {0};
  ::gethostname(host, sizeof host - 1);
  const std::regex pattern(dir + "/events\\.out\\.tfevents\\.([0-9]+)\\." + host + "\\." +
                           std::to_string(::getpid()) + "\\.3");
  std::smatch match;
  REQUIRE(std::regex_match(path, match, pattern));
  CHECK(std::stoll(match[1]) >= static_cast<long long>(before));
  CHECK(std::stoll(match[1]) <= static_cast<long long>(after));

  const std::vector<std::string> records = read_records(path);
  REQUIRE(records.size() == 1);
  const std::string& event = records[0];
  // Event{wall_time (1, fixed64) = 0x09 + 8 bytes, file_version (3, string) = 0x1a, 13, "brain.Event:2"}.
  REQUIRE(event.size() == 9 + 2 + 13);
  CHECK(event[0] == 0x09);
  double wall_time;
  const uint64_t bits = read_le(event, 1, 8);
  std::memcpy(&wall_time, &bits, 8);
  CHECK(wall_time >= before - 1e-3);
  CHECK(wall_time <= after + 1e-3);
  CHECK(event.substr(9) == bytes({0x1a, 13}) + "brain.Event:2");
}

TEST_CASE("TensorBoardWriter: one scalar event, byte for byte", "[obs]") {
  const TempDir temp("tb_scalar");
  const std::string dir = temp.path;
  TensorBoardWriter writer(dir);
  writer.add_scalar("loss", 0.5, 7, 1234.5);
  writer.flush();
  const std::vector<std::string> records = read_records(writer.path());
  REQUIRE(records.size() == 2);
  // Value{tag (1) = 0x0a 4 "loss", simple_value (2, fixed32) = 0x15 + float 0.5}: 11 bytes.
  const std::string value = bytes({0x0a, 4}) + "loss" + bytes({0x15, 0x00, 0x00, 0x00, 0x3f});
  // Summary{value (1, message) = 0x0a 11 ...}: 13 bytes.
  const std::string summary = bytes({0x0a, 11}) + value;
  // Event{wall_time (1) = 0x09 + double 1234.5, step (2, varint) = 0x10 7, summary (5) = 0x2a 13 ...}.
  const std::string event = bytes({0x09, 0x00, 0x00, 0x00, 0x00, 0x00, 0x4a, 0x93, 0x40}) + bytes({0x10, 0x07}) +
                            bytes({0x2a, 13}) + summary;
  CHECK(records[1] == event);
  CHECK(encode_scalars_event(1234.5, 7, {{"loss", 0.5}}) == event);

  // The framing around it: length (uint64 LE), masked CRC of the length, data, masked CRC of the data.
  const std::string framed = frame_tfrecord(event);
  REQUIRE(framed.size() == 8 + 4 + event.size() + 4);
  CHECK(framed.substr(0, 8) == bytes({26, 0, 0, 0, 0, 0, 0, 0}));
  CHECK(read_le(framed, 8, 4) == masked_crc32c(framed.data(), 8));
  CHECK(framed.substr(12, event.size()) == event);
  CHECK(read_le(framed, 12 + event.size(), 4) == masked_crc32c(event.data(), event.size()));
}

TEST_CASE("TensorBoardWriter: several values in one event, large steps, non-finite values", "[obs]") {
  const TempDir temp("tb_scalars");
  const std::string dir = temp.path;
  TensorBoardWriter writer(dir);
  const int64_t big_step = (int64_t{1} << 33) + 1;
  writer.add_scalars({{"b", 1.0}, {"a", -2.0}}, big_step, 10.0);              // order kept
  writer.add_scalars(std::map<std::string, double>{{"z", 3.0}, {"y", 4.0}}, 0, 11.0);  // tag order
  writer.add_scalar("nan", std::nan(""), 1, 12.0);
  writer.add_scalar("inf", 1e300, 2, 13.0);  // beyond float range: +inf
  writer.close();
  const std::vector<std::string> records = read_records(writer.path());
  REQUIRE(records.size() == 5);

  auto value = [](const std::string& tag, float v) {
    return bytes({0x0a, static_cast<int>(tag.size())}) + tag + bytes({0x15}) + le_float(v);
  };
  auto event = [](double wall_time, const std::string& step_varint, const std::vector<std::string>& values) {
    std::string summary;
    for (const auto& v : values) summary += bytes({0x0a, static_cast<int>(v.size())}) + v;
    return bytes({0x09}) + le_double(wall_time) + bytes({0x10}) + step_varint +
           bytes({0x2a, static_cast<int>(summary.size())}) + summary;
  };
  CHECK(records[1] == event(10.0, bytes({0x81, 0x80, 0x80, 0x80, 0x20}), {value("b", 1.0f), value("a", -2.0f)}));
  CHECK(records[2] == event(11.0, bytes({0x00}), {value("y", 4.0f), value("z", 3.0f)}));
  // NaN keeps its bits through the float cast; compare the stored float, not bytes of a particular NaN.
  const std::string& nan_event = records[3];
  float stored;
  const uint32_t nan_bits = static_cast<uint32_t>(read_le(nan_event, nan_event.size() - 4, 4));
  std::memcpy(&stored, &nan_bits, 4);
  CHECK(std::isnan(stored));
  CHECK(records[4] == event(13.0, bytes({0x02}), {value("inf", INFINITY)}));
}

TEST_CASE("TensorBoardWriter: never overwrites, closes once, errors name the path", "[obs]") {
  const TempDir temp("tb_errors");
  const std::string dir = temp.path;
  TensorBoardWriter first(dir), second(dir);
  CHECK(first.path() != second.path());  // same second, same pid: the second gets a suffix
  second.close();
  second.close();  // twice is fine
  CHECK_THROWS_WITH(second.add_scalar("x", 1.0, 0), Contains("already closed") && Contains(second.path()));
  CHECK_THROWS_WITH(first.add_scalar("", 1.0, 0), Contains("empty tag"));

  // A directory that cannot exist: its parent is a regular file (fails even as root).
  const std::string blocker = dir + "/not_a_directory";
  slime::write_file_atomic(blocker, "x");
  CHECK_THROWS_WITH(TensorBoardWriter(blocker + "/logs"), Contains(blocker));
}
