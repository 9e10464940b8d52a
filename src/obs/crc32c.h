// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of TFRecord framing, and TensorBoard's
// "masked" form of it. Table-driven, one byte at a time: event files are small, so no SSE4.2 path.
#pragma once

#include <cstddef>
#include <cstdint>

namespace slime::obs {

// CRC-32C of `size` bytes. `crc` is a previous result to extend (crc32c(ab) == crc32c(b, crc32c(a))).
uint32_t crc32c(const void* data, size_t size, uint32_t crc = 0);

// TensorFlow's masking, applied to CRCs stored next to the data they cover:
// ((crc >> 15) | (crc << 17)) + 0xa282ead8, in uint32 arithmetic.
uint32_t mask_crc32c(uint32_t crc);

// mask_crc32c(crc32c(data, size)): what a TFRecord stores.
uint32_t masked_crc32c(const void* data, size_t size);

}  // namespace slime::obs
