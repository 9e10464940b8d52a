// CRC-32C against published check values (the CRC catalogue's "123456789", RFC 3720 B.4's 32-byte vectors),
// TensorFlow's mask, and the protobuf wire helpers byte for byte.
#include <catch2/catch.hpp>
#include <cstring>
#include <string>
#include <vector>

#include "obs/crc32c.h"
#include "obs/protobuf_wire.h"

using namespace slime::obs;

namespace {

std::string bytes(std::initializer_list<int> values) {
  std::string out;
  for (int v : values) out.push_back(static_cast<char>(v));
  return out;
}

std::string varint(uint64_t value) {
  std::string out;
  wire::append_varint(out, value);
  return out;
}

}  // namespace

TEST_CASE("crc32c: known vectors", "[obs]") {
  CHECK(crc32c("123456789", 9) == 0xE3069283u);
  const std::vector<unsigned char> zeros(32, 0x00), ones(32, 0xff);
  std::vector<unsigned char> incrementing(32);
  for (int i = 0; i < 32; ++i) incrementing[i] = static_cast<unsigned char>(i);
  CHECK(crc32c(zeros.data(), zeros.size()) == 0x8A9136AAu);
  CHECK(crc32c(ones.data(), ones.size()) == 0x62A8AB43u);
  CHECK(crc32c(incrementing.data(), incrementing.size()) == 0x46DD794Eu);
  CHECK(crc32c(nullptr, 0) == 0u);
}

TEST_CASE("crc32c: extending equals one pass", "[obs]") {
  const std::string text = "The quick brown fox jumps over the lazy dog";
  for (size_t split = 0; split <= text.size(); split += 7)
    CHECK(crc32c(text.data() + split, text.size() - split, crc32c(text.data(), split)) ==
          crc32c(text.data(), text.size()));
}

TEST_CASE("crc32c: TensorFlow mask", "[obs]") {
  CHECK(mask_crc32c(0) == 0xa282ead8u);
  CHECK(masked_crc32c("123456789", 9) == 0xC78AB0E5u);
  // Unmasking (subtract, rotate back) recovers the CRC.
  const uint32_t masked = masked_crc32c("123456789", 9);
  const uint32_t rotated = masked - 0xa282ead8u;
  CHECK(((rotated >> 17) | (rotated << 15)) == 0xE3069283u);
}

TEST_CASE("protobuf wire: varints", "[obs]") {
  CHECK(varint(0) == bytes({0x00}));
  CHECK(varint(1) == bytes({0x01}));
  CHECK(varint(127) == bytes({0x7f}));
  CHECK(varint(128) == bytes({0x80, 0x01}));
  CHECK(varint(300) == bytes({0xac, 0x02}));
  CHECK(varint(1ull << 32) == bytes({0x80, 0x80, 0x80, 0x80, 0x10}));
  CHECK(varint((1ull << 33) + 1) == bytes({0x81, 0x80, 0x80, 0x80, 0x20}));
  CHECK(varint(UINT64_MAX) == bytes({0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}));
  // int64 -1 is its two's complement: ten bytes.
  std::string minus_one;
  wire::append_int64_field(minus_one, 2, -1);
  CHECK(minus_one == bytes({0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}));
}

TEST_CASE("protobuf wire: fixed-width fields and keys", "[obs]") {
  std::string out;
  wire::append_fixed32(out, 0x11223344u);
  CHECK(out == bytes({0x44, 0x33, 0x22, 0x11}));
  out.clear();
  wire::append_fixed64(out, 0x0102030405060708ull);
  CHECK(out == bytes({0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01}));
  out.clear();
  wire::append_double_field(out, 1, 1234.5);  // key 0x09 = field 1, wire type 1
  CHECK(out == bytes({0x09, 0x00, 0x00, 0x00, 0x00, 0x00, 0x4a, 0x93, 0x40}));
  out.clear();
  wire::append_float_field(out, 2, 0.5f);  // key 0x15 = field 2, wire type 5
  CHECK(out == bytes({0x15, 0x00, 0x00, 0x00, 0x3f}));
  out.clear();
  wire::append_bytes_field(out, 5, "ab");  // key 0x2a = field 5, wire type 2
  CHECK(out == bytes({0x2a, 0x02, 'a', 'b'}));
  out.clear();
  wire::append_key(out, 16, wire::kVarint);  // field numbers >= 16 need a two-byte key
  CHECK(out == bytes({0x80, 0x01}));
}
