// The few pieces of the protobuf wire format that TensorBoard event files need, appended to a byte string:
// varints, fixed32 / fixed64 (little-endian), field keys and length-delimited fields. Internal to slime_obs (and
// its tests); no protobuf dependency. https://protobuf.dev/programming-guides/encoding/
#pragma once

#include <cstdint>
#include <cstring>
#include <string>

namespace slime::obs::wire {

// Wire types (the low 3 bits of a field key).
enum WireType : uint32_t { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5 };

// Base-128 varint, least significant group first, high bit = "more bytes follow". A negative int64 is encoded
// as its two's-complement uint64 (10 bytes), as protobuf's int64 does.
inline void append_varint(std::string& out, uint64_t value) {
  while (value >= 0x80) {
    out.push_back(static_cast<char>((value & 0x7f) | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<char>(value));
}

inline void append_fixed32(std::string& out, uint32_t value) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

inline void append_fixed64(std::string& out, uint64_t value) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

// Field key: (field_number << 3) | wire_type, as a varint.
inline void append_key(std::string& out, uint32_t field, WireType type) {
  append_varint(out, (static_cast<uint64_t>(field) << 3) | type);
}

inline void append_int64_field(std::string& out, uint32_t field, int64_t value) {
  append_key(out, field, kVarint);
  append_varint(out, static_cast<uint64_t>(value));
}

inline void append_double_field(std::string& out, uint32_t field, double value) {
  uint64_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  append_key(out, field, kFixed64);
  append_fixed64(out, bits);
}

inline void append_float_field(std::string& out, uint32_t field, float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  append_key(out, field, kFixed32);
  append_fixed32(out, bits);
}

// string, bytes and embedded messages: key, varint length, the bytes.
inline void append_bytes_field(std::string& out, uint32_t field, const std::string& bytes) {
  append_key(out, field, kLengthDelimited);
  append_varint(out, bytes.size());
  out += bytes;
}

}  // namespace slime::obs::wire
