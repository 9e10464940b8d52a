// GPU tests of attention.cu (label `gpu`): causal packed-sequence GQA attention, forward and backward, against the
// CPU reference (kernels/cpu/attention.h, head-major; operands are transposed on the host) on fresh random inputs,
// with every output poisoned (NaN) before the launches. Tolerances: fp32 relative error <= 1e-5; bf16 <= 1e-2 for
// out, dq, dk, dv, and 1e-5 for lse, which the bf16 kernel computes in fp32 from the same bf16 operands.
// With SLIME_ATTENTION_BENCH=1 a last case times the bf16 kernels on a 4096-token sequence (Qwen2.5 shapes).
#include <catch2/catch.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <tuple>
#include <vector>

#include <cuda_runtime.h>

#include "core/error.h"
#include "core/tensor.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/heads.h"
#include "kernels/cuda/cuda_test_util.h"
#include "kernels/cuda/device.h"
#include "kernels/cuda/ops.h"

using namespace slime;
using namespace slime::cuda_test;

namespace {

// x [T, N, d] (token-major) -> [N, T, d] (head-major), and back (kernels/cpu/heads.h).
std::vector<float> to_heads(const std::vector<float>& x, int64_t T, int64_t N, int64_t d) {
  std::vector<float> y(x.size());
  cpu::tokens_to_heads<float>(x.data(), y.data(), T, N, d);
  return y;
}
std::vector<float> to_tokens(const std::vector<float>& x, int64_t T, int64_t N, int64_t d) {
  std::vector<float> y(x.size());
  cpu::heads_to_tokens<float>(x.data(), y.data(), T, N, d);
  return y;
}

Tensor upload_ints(const std::vector<int>& values) {
  Tensor t = Tensor::empty({static_cast<int64_t>(values.size())}, DType::I32, Device::CUDA);
  cuda::copy_to_device(t.raw(), values.data(), values.size() * sizeof(int));
  return t;
}

Tensor poisoned(int64_t n, cuda::Precision precision) {
  Tensor t = upload(std::vector<float>(static_cast<size_t>(n), 1.0f), precision);
  cuda::fill_bytes(t.raw(), 0xff, t.nbytes());
  return t;
}

struct Case {
  int64_t heads, groups, head_dim;
  std::vector<int64_t> lengths;
  float q_scale;  // > 1 sharpens the softmax
};

// The bf16 kernel sets this GPU runs: the portable ones, and the Hopper ones where Auto picks them.
std::vector<cuda::AttentionKernels> kernel_sets() {
  cuda::set_attention_kernels(cuda::AttentionKernels::Auto);
  std::vector<cuda::AttentionKernels> sets = {cuda::AttentionKernels::Portable};
  if (cuda::attention_kernels_in_use() == cuda::AttentionKernels::Hopper) sets.push_back(cuda::AttentionKernels::Hopper);
  return sets;
}
const char* kernel_name(cuda::AttentionKernels kernels) {
  return kernels == cuda::AttentionKernels::Hopper ? "hopper" : "portable";
}

void run_case(cuda::Precision precision, const Case& c) {
  const bool bf16 = precision == cuda::Precision::BF16;
  const int64_t H = c.heads, G = c.groups, d = c.head_dim, B = static_cast<int64_t>(c.lengths.size());
  std::vector<int64_t> cu64(B + 1, 0);
  for (int64_t b = 0; b < B; ++b) cu64[b + 1] = cu64[b] + c.lengths[b];
  const int64_t T = cu64[B];
  const int64_t max_seqlen = *std::max_element(c.lengths.begin(), c.lengths.end());
  const std::vector<int> cu32(cu64.begin(), cu64.end());
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));

  const std::vector<float> q = as_stored(random_floats(T * H * d, c.q_scale), precision);
  const std::vector<float> k = as_stored(random_floats(T * G * d), precision);
  const std::vector<float> v = as_stored(random_floats(T * G * d), precision);
  const std::vector<float> dout = as_stored(random_floats(T * H * d), precision);

  // CPU reference, head-major
  const cpu::AttentionShape shape{T, H, G, d, B};
  const std::vector<float> qh = to_heads(q, T, H, d), kh = to_heads(k, T, G, d), vh = to_heads(v, T, G, d);
  const std::vector<float> douth = to_heads(dout, T, H, d);
  std::vector<float> outh(T * H * d), ref_lse(H * T), dqh(T * H * d), dkh(T * G * d), dvh(T * G * d);
  cpu::attention_forward<float>(shape, cu64.data(), qh.data(), kh.data(), vh.data(), scale, outh.data(),
                                ref_lse.data());
  cpu::attention_backward<float>(shape, cu64.data(), qh.data(), kh.data(), vh.data(), outh.data(), ref_lse.data(),
                                 douth.data(), scale, dqh.data(), dkh.data(), dvh.data());
  const std::vector<float> ref_out = to_tokens(outh, T, H, d), ref_dq = to_tokens(dqh, T, H, d);
  const std::vector<float> ref_dk = to_tokens(dkh, T, G, d), ref_dv = to_tokens(dvh, T, G, d);

  // GPU, token-major; the backward reads the GPU's own out and lse
  Tensor d_q = upload(q, precision), d_k = upload(k, precision), d_v = upload(v, precision);
  Tensor d_dout = upload(dout, precision), d_cu = upload_ints(cu32);
  Tensor d_out = poisoned(T * H * d, precision), d_lse = poisoned(H * T, cuda::Precision::F32);
  Tensor d_dq = poisoned(T * H * d, precision), d_dk = poisoned(T * G * d, precision);
  Tensor d_dv = poisoned(T * G * d, precision);
  cuda::attention_forward(precision, d_q.raw(), d_k.raw(), d_v.raw(), d_cu.data<int>(), T, B, max_seqlen, H, G, d,
                          scale, d_out.raw(), d_lse.data<float>(), nullptr);
  cuda::attention_backward(precision, d_q.raw(), d_k.raw(), d_v.raw(), d_out.raw(), d_lse.data<float>(),
                           d_dout.raw(), d_cu.data<int>(), T, B, max_seqlen, H, G, d, scale, d_dq.raw(), d_dk.raw(),
                           d_dv.raw(), nullptr);
  cuda::synchronize();
  const double err_out = relative_error(download(d_out), ref_out);
  const double err_lse = relative_error(download(d_lse), ref_lse);
  const double err_dq = relative_error(download(d_dq), ref_dq);
  const double err_dk = relative_error(download(d_dk), ref_dk);
  const double err_dv = relative_error(download(d_dv), ref_dv);
  std::string lengths;
  for (int64_t len : c.lengths) lengths += (lengths.empty() ? "" : ",") + std::to_string(len);
  const char* kernels = bf16 ? kernel_name(cuda::attention_kernels_in_use()) : "reference";
  std::printf("attention %s (%s) H=%lld G=%lld d=%lld lengths {%s}: out %.2e lse %.2e dq %.2e dk %.2e dv %.2e\n",
              bf16 ? "bf16" : "fp32", kernels, static_cast<long long>(H), static_cast<long long>(G),
              static_cast<long long>(d), lengths.c_str(), err_out, err_lse, err_dq, err_dk, err_dv);
  const double tol = bf16 ? 1e-2 : 1e-5;
  INFO("attention " << (bf16 ? "bf16" : "fp32") << " (" << kernels << ") H=" << H << " G=" << G << " d=" << d << " lengths {"
                    << lengths << "}");
  CHECK(err_out <= tol);
  CHECK(err_lse <= 1e-5);
  CHECK(err_dq <= tol);
  CHECK(err_dk <= tol);
  CHECK(err_dv <= tol);
}

}  // namespace

TEST_CASE("attention forward and backward match the CPU reference (packed causal GQA)") {
  static GpuSetup setup;
  const std::vector<Case> cases = {
      {14, 2, 64, {1, 37, 0, 200, 64, 513}, 1.0f},   // Qwen2.5-0.5B heads, ragged packed sequences
      {12, 2, 128, {1, 37, 200, 0, 64, 513}, 1.0f},  // Qwen2.5-1.5B heads
      {14, 2, 64, {1024}, 2.0f},                     // one long sequence, sharper softmax
      {12, 2, 128, {1000}, 2.0f},
      {4, 4, 64, {130, 7, 65}, 3.0f},  // plain multi-head
      {2, 1, 128, {129, 63}, 1.0f},    // multi-query
      {6, 2, 128, {384, 255, 129}, 1.0f},  // whole and partial 128-row blocks
  };
  for (const Case& c : cases) run_case(cuda::Precision::F32, c);
  for (cuda::AttentionKernels kernels : kernel_sets()) {
    cuda::set_attention_kernels(kernels);
    for (const Case& c : cases) run_case(cuda::Precision::BF16, c);
  }
  cuda::set_attention_kernels(cuda::AttentionKernels::Auto);
  // head dims only the fp32 kernel takes
  for (const Case& c : std::vector<Case>{{3, 1, 40, {17, 0, 70}, 1.0f}, {2, 2, 256, {33, 5}, 1.0f}, {1, 1, 1, {9}, 1.0f}})
    run_case(cuda::Precision::F32, c);
}

TEST_CASE("SLIME_ATTENTION_KERNELS takes portable or hopper and names a bad value") {
  CHECK(cuda::parse_attention_kernels("") == cuda::AttentionKernels::Auto);
  CHECK(cuda::parse_attention_kernels("portable") == cuda::AttentionKernels::Portable);
  CHECK(cuda::parse_attention_kernels("hopper") == cuda::AttentionKernels::Hopper);
  CHECK_THROWS_WITH(cuda::parse_attention_kernels("wgmma"),
                    Catch::Contains("SLIME_ATTENTION_KERNELS=wgmma: expected portable or hopper"));
}

TEST_CASE("attention rejects shapes its kernels do not take") {
  static GpuSetup setup;
  const int* cu = nullptr;  // never read: the checks come first
  CHECK_THROWS_WITH(cuda::attention_forward(cuda::Precision::BF16, nullptr, nullptr, nullptr, cu, 4, 1, 4, 2, 1, 96,
                                            0.1f, nullptr, nullptr, nullptr),
                    Catch::Contains("head_dim 96"));
  CHECK_THROWS_WITH(cuda::attention_backward(cuda::Precision::BF16, nullptr, nullptr, nullptr, nullptr, nullptr,
                                             nullptr, cu, 4, 1, 4, 2, 1, 80, 0.1f, nullptr, nullptr, nullptr,
                                             nullptr),
                    Catch::Contains("head_dim 80"));
  CHECK_THROWS_WITH(cuda::attention_forward(cuda::Precision::F32, nullptr, nullptr, nullptr, cu, 4, 1, 4, 3, 2, 64,
                                            0.1f, nullptr, nullptr, nullptr),
                    Catch::Contains("heads 3"));
  CHECK_THROWS_WITH(cuda::attention_forward(cuda::Precision::F32, nullptr, nullptr, nullptr, cu, 4, 1, 4, 2, 1, 300,
                                            0.1f, nullptr, nullptr, nullptr),
                    Catch::Contains("head_dim 300"));
}

// SLIME_ATTENTION_BENCH=1: bf16 forward and backward on one 4096-token sequence; causal FLOPs
// fwd = 4 T^2 / 2 d H, bwd = 2.5 x fwd.
TEST_CASE("attention bf16 benchmark (SLIME_ATTENTION_BENCH=1)") {
  const char* env = std::getenv("SLIME_ATTENTION_BENCH");
  if (!env || std::strcmp(env, "1") != 0) return;
  static GpuSetup setup;
  const cuda::Precision bf16 = cuda::Precision::BF16;
  const int64_t T = 4096;
  std::vector<std::tuple<cuda::AttentionKernels, int64_t, int64_t, int64_t>> runs;
  for (cuda::AttentionKernels kernels : kernel_sets())
    for (auto [H, G, d] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{{12, 2, 128}, {14, 2, 64}})
      runs.emplace_back(kernels, H, G, d);
  for (auto [kernels, H, G, d] : runs) {
    cuda::set_attention_kernels(kernels);
    const float scale = 1.0f / std::sqrt(static_cast<float>(d));
    Tensor q = upload(random_floats(T * H * d), bf16), k = upload(random_floats(T * G * d), bf16);
    Tensor v = upload(random_floats(T * G * d), bf16), dout = upload(random_floats(T * H * d), bf16);
    Tensor cu = upload_ints({0, static_cast<int>(T)});
    Tensor out = poisoned(T * H * d, bf16), lse = poisoned(H * T, cuda::Precision::F32);
    Tensor dq = poisoned(T * H * d, bf16), dk = poisoned(T * G * d, bf16), dv = poisoned(T * G * d, bf16);
    auto fwd = [&] {
      cuda::attention_forward(bf16, q.raw(), k.raw(), v.raw(), cu.data<int>(), T, 1, T, H, G, d, scale, out.raw(),
                              lse.data<float>(), nullptr);
    };
    auto bwd = [&] {
      cuda::attention_backward(bf16, q.raw(), k.raw(), v.raw(), out.raw(), lse.data<float>(), dout.raw(),
                               cu.data<int>(), T, 1, T, H, G, d, scale, dq.raw(), dk.raw(), dv.raw(), nullptr);
    };
    cudaEvent_t e0, e1, e2;
    cudaEventCreate(&e0);
    cudaEventCreate(&e1);
    cudaEventCreate(&e2);
    for (int i = 0; i < 3; ++i) {
      fwd();
      bwd();
    }
    const int iters = 20;
    cudaEventRecord(e0, nullptr);
    for (int i = 0; i < iters; ++i) fwd();
    cudaEventRecord(e1, nullptr);
    for (int i = 0; i < iters; ++i) bwd();
    cudaEventRecord(e2, nullptr);
    cudaEventSynchronize(e2);
    float fwd_ms = 0, bwd_ms = 0;
    cudaEventElapsedTime(&fwd_ms, e0, e1);
    cudaEventElapsedTime(&bwd_ms, e1, e2);
    fwd_ms /= iters;
    bwd_ms /= iters;
    const double flops = 4.0 * T * T / 2 * d * H;
    std::printf("attention bf16 (%s) T=%lld H=%lld G=%lld d=%lld: fwd %.3f ms %.1f TFLOP/s, bwd %.3f ms %.1f "
                "TFLOP/s\n",
                kernel_name(kernels), static_cast<long long>(T), static_cast<long long>(H), static_cast<long long>(G),
                static_cast<long long>(d), fwd_ms, flops / fwd_ms * 1e-9, bwd_ms, 2.5 * flops / bwd_ms * 1e-9);
    cudaEventDestroy(e0);
    cudaEventDestroy(e1);
    cudaEventDestroy(e2);
    const std::vector<float> o = download(out);
    CHECK(std::all_of(o.begin(), o.end(), [](float x) { return std::isfinite(x); }));
  }
  cuda::set_attention_kernels(cuda::AttentionKernels::Auto);
}
