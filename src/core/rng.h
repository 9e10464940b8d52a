// Counter-based random numbers (Philox4x32-10, Salmon et al. 2011).
//
// A value is a pure function of (seed, stream, index), so the CPU and CUDA backends draw identical numbers, a
// run is reproducible bit for bit, and the generator state to checkpoint is just (seed, stream, offset).
#pragma once

#include <array>
#include <cstdint>

namespace slime {

// One Philox4x32-10 block: 4 random 32-bit words for a 128-bit counter and a 64-bit key.
std::array<uint32_t, 4> philox4x32(std::array<uint32_t, 4> counter, uint64_t key);

// Stateless draws: element `index` of the stream (seed, stream).
uint32_t philox_u32(uint64_t seed, uint64_t stream, uint64_t index);
float philox_uniform(uint64_t seed, uint64_t stream, uint64_t index);  // in [0, 1), 24-bit resolution
float philox_normal(uint64_t seed, uint64_t stream, uint64_t index);   // N(0, 1), Box-Muller over 2 words

// A sequential generator over one stream; `offset` counts the 32-bit words consumed.
class Rng {
 public:
  explicit Rng(uint64_t seed = 0, uint64_t stream = 0) : seed_(seed), stream_(stream) {}
  uint32_t next_u32() { return philox_u32(seed_, stream_, offset_++); }
  float uniform() { return philox_uniform(seed_, stream_, offset_++); }
  double uniform_double();  // 53-bit resolution, uses 2 words
  float normal();           // uses 2 words
  // Uniform integer in [0, n) without modulo bias.
  uint64_t below(uint64_t n);

  uint64_t seed() const { return seed_; }
  uint64_t stream() const { return stream_; }
  uint64_t offset() const { return offset_; }
  void set_offset(uint64_t offset) { offset_ = offset; }

 private:
  uint64_t seed_, stream_, offset_ = 0;
};

}  // namespace slime
