// Helpers of the GPU tests: fresh random inputs (the seed is printed once per binary), device upload/download in
// fp32 or bf16, relative error that treats any non-finite (poisoned, unwritten) element as a failure.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "core/dtype.h"
#include "core/rng.h"
#include "core/tensor.h"
#include "kernels/cuda/device.h"
#include "kernels/cuda/ops.h"

namespace slime::cuda_test {

inline uint64_t fresh_seed() {
  static const uint64_t seed = [] {
    uint64_t s = (static_cast<uint64_t>(std::random_device{}()) << 32) | std::random_device{}();
    std::printf("cuda test seed %llu\n", static_cast<unsigned long long>(s));
    return s;
  }();
  static uint64_t calls = 0;
  return seed + 7919 * calls++;
}

inline std::vector<float> random_floats(size_t n, float scale = 1.0f) {
  Rng rng(fresh_seed());
  std::vector<float> v(n);
  for (float& x : v) x = scale * rng.normal();
  return v;
}

inline double relative_error(const std::vector<float>& ours, const std::vector<float>& ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    if (!std::isfinite(ours[i])) return INFINITY;  // an unwritten (poisoned) or broken element
    num += (static_cast<double>(ours[i]) - ref[i]) * (static_cast<double>(ours[i]) - ref[i]);
    den += static_cast<double>(ref[i]) * ref[i];
  }
  return std::sqrt(num / std::max(den, 1e-300));
}

// A device buffer holding `values` in fp32 or bf16.
inline Tensor upload(const std::vector<float>& values, cuda::Precision precision) {
  const bool bf16 = precision == cuda::Precision::BF16;
  Tensor t = Tensor::empty({static_cast<int64_t>(values.size())}, bf16 ? DType::BF16 : DType::F32, Device::CUDA);
  if (bf16) {
    std::vector<uint16_t> bits(values.size());
    for (size_t i = 0; i < values.size(); ++i) bits[i] = f32_to_bf16(values[i]);
    cuda::copy_to_device(t.raw(), bits.data(), bits.size() * 2);
  } else {
    cuda::copy_to_device(t.raw(), values.data(), values.size() * 4);
  }
  return t;
}

inline std::vector<float> download(const Tensor& t) {
  std::vector<float> out(t.numel());
  if (t.dtype() == DType::BF16) {
    std::vector<uint16_t> bits(t.numel());
    cuda::copy_to_host(bits.data(), t.raw(), bits.size() * 2);
    for (size_t i = 0; i < bits.size(); ++i) out[i] = bf16_to_f32(bits[i]);
  } else {
    cuda::copy_to_host(out.data(), t.raw(), out.size() * 4);
  }
  return out;
}

// What the GPU sees when activations are bf16: the inputs rounded to bf16.
inline std::vector<float> as_stored(std::vector<float> v, cuda::Precision precision) {
  if (precision == cuda::Precision::BF16)
    for (float& x : v) x = bf16_to_f32(f32_to_bf16(x));
  return v;
}

struct GpuSetup {
  GpuSetup() { cuda::init_device(0); }
};

}  // namespace slime::cuda_test
