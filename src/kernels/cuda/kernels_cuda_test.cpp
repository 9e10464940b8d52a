// GPU tests (label `gpu`, run by `make gpu-test` on a machine with a GPU): every CUDA op against the CPU reference
// on fresh random inputs each run (the seed is printed), with outputs poisoned (NaN) before each launch.
// Tolerances: fp32 paths relative error <= 1e-5, bf16 paths <= 1e-2.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "core/dtype.h"
#include "core/rng.h"
#include "core/tensor.h"
#include "kernels/cpu/rmsnorm.h"
#include "kernels/cuda/device.h"
#include "kernels/cuda/ops.h"

using namespace slime;

namespace {

uint64_t fresh_seed() {
  static const uint64_t seed = [] {
    uint64_t s = (static_cast<uint64_t>(std::random_device{}()) << 32) | std::random_device{}();
    std::printf("kernels_cuda_test seed %llu\n", static_cast<unsigned long long>(s));
    return s;
  }();
  static uint64_t calls = 0;
  return seed + 7919 * calls++;
}

std::vector<float> random_floats(size_t n, float scale = 1.0f) {
  Rng rng(fresh_seed());
  std::vector<float> v(n);
  for (float& x : v) x = scale * rng.normal();
  return v;
}

double relative_error(const std::vector<float>& ours, const std::vector<float>& ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    if (!std::isfinite(ours[i])) return INFINITY;  // an unwritten (poisoned) or broken element
    num += (static_cast<double>(ours[i]) - ref[i]) * (static_cast<double>(ours[i]) - ref[i]);
    den += static_cast<double>(ref[i]) * ref[i];
  }
  return std::sqrt(num / std::max(den, 1e-300));
}

// A device buffer holding `values` in fp32 or bf16.
Tensor upload(const std::vector<float>& values, cuda::Precision precision) {
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

std::vector<float> download(const Tensor& t) {
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
std::vector<float> as_stored(std::vector<float> v, cuda::Precision precision) {
  if (precision == cuda::Precision::BF16)
    for (float& x : v) x = bf16_to_f32(f32_to_bf16(x));
  return v;
}

struct GpuSetup {
  GpuSetup() { cuda::init_device(0); }
};

}  // namespace

TEST_CASE("rmsnorm forward and backward match the CPU reference") {
  static GpuSetup setup;
  for (cuda::Precision precision : {cuda::Precision::F32, cuda::Precision::BF16}) {
    for (auto [rows, n] : std::vector<std::pair<int64_t, int64_t>>{{1, 7}, {37, 896}, {513, 1536}, {64, 4096}}) {
      const bool bf16 = precision == cuda::Precision::BF16;
      const double tol = bf16 ? 1e-2 : 1e-5;
      std::vector<float> x = as_stored(random_floats(rows * n, 2.0f), precision);
      std::vector<float> w = random_floats(n);
      std::vector<float> dy = as_stored(random_floats(rows * n), precision);
      const float eps = 1e-6f;

      std::vector<float> ref_y(rows * n), ref_rstd(rows), ref_dx(rows * n), ref_dw(n, 0.5f);
      cpu::rmsnorm_forward<float>(x.data(), w.data(), eps, ref_y.data(), ref_rstd.data(), rows, n);
      cpu::rmsnorm_backward<float>(x.data(), w.data(), ref_rstd.data(), dy.data(), ref_dx.data(), ref_dw.data(), rows,
                                   n);

      Tensor dx_in = upload(x, precision), dw_in = upload(w, cuda::Precision::F32);
      Tensor d_y = upload(std::vector<float>(rows * n), precision), d_dy = upload(dy, precision);
      Tensor d_rstd = upload(std::vector<float>(rows), cuda::Precision::F32);
      Tensor d_dx = upload(std::vector<float>(rows * n), precision);
      Tensor d_dw = upload(std::vector<float>(n, 0.5f), cuda::Precision::F32);  // accumulates onto 0.5
      cuda::fill_bytes(d_y.raw(), 0xff, d_y.nbytes());
      cuda::fill_bytes(d_rstd.raw(), 0xff, d_rstd.nbytes());
      cuda::fill_bytes(d_dx.raw(), 0xff, d_dx.nbytes());
      cuda::rmsnorm_forward(precision, dx_in.raw(), dw_in.data<float>(), eps, d_y.raw(), d_rstd.data<float>(), rows,
                            n, nullptr);
      cuda::rmsnorm_backward(precision, dx_in.raw(), dw_in.data<float>(), d_rstd.data<float>(), d_dy.raw(),
                             d_dx.raw(), d_dw.data<float>(), rows, n, nullptr);
      cuda::synchronize();
      const double err_y = relative_error(download(d_y), ref_y);
      const double err_rstd = relative_error(download(d_rstd), ref_rstd);
      const double err_dx = relative_error(download(d_dx), ref_dx);
      const double err_dw = relative_error(download(d_dw), ref_dw);
      std::printf("rmsnorm %s [%lld, %lld]: y %.2e rstd %.2e dx %.2e dw %.2e\n", bf16 ? "bf16" : "fp32",
                  static_cast<long long>(rows), static_cast<long long>(n), err_y, err_rstd, err_dx, err_dw);
      CHECK(err_y <= tol);
      CHECK(err_rstd <= 1e-5);
      CHECK(err_dx <= tol);
      CHECK(err_dw <= tol);
    }
  }
}
