// Element types and host-side conversions between them (bf16/fp16 <-> fp32, round to nearest even).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace slime {

enum class DType : uint8_t { F32, F64, BF16, F16, I64, I32, I16, I8, U8, Bool };

size_t dtype_size(DType dtype);
// Every DType, in enum order.
const std::vector<DType>& all_dtypes();
// Names as safetensors writes them: F32, F64, BF16, F16, I64, I32, I16, I8, U8, BOOL.
const char* dtype_name(DType dtype);
// Inverse of dtype_name; returns false when the name is unknown.
bool dtype_from_name(const std::string& name, DType* out);
bool dtype_is_float(DType dtype);

template <class T> struct dtype_of;
template <> struct dtype_of<float> { static constexpr DType value = DType::F32; };
template <> struct dtype_of<double> { static constexpr DType value = DType::F64; };
template <> struct dtype_of<int64_t> { static constexpr DType value = DType::I64; };
template <> struct dtype_of<int32_t> { static constexpr DType value = DType::I32; };
template <> struct dtype_of<uint8_t> { static constexpr DType value = DType::U8; };

inline float bf16_to_f32(uint16_t bits) {
  uint32_t u = static_cast<uint32_t>(bits) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

inline uint16_t f32_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);  // quiet NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

float f16_to_f32(uint16_t bits);
uint16_t f32_to_f16(float f);

}  // namespace slime
