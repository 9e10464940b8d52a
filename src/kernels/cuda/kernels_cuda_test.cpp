// GPU tests (label `gpu`, run by `make gpu-test` on a machine with a GPU): every CUDA op against the CPU reference
// on fresh random inputs each run (the seed is printed), with outputs poisoned (NaN) before each launch.
// Tolerances: fp32 paths relative error <= 1e-5, bf16 paths <= 1e-2.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <tuple>
#include <vector>

#include "core/dtype.h"
#include "core/rng.h"
#include "core/tensor.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/rmsnorm.h"
#include "kernels/cpu/rope.h"
#include "kernels/cpu/swiglu.h"
#include "kernels/cuda/device.h"
#include "kernels/cuda/cuda_test_util.h"
#include "kernels/cuda/ops.h"
#include "train/adamw.h"

using namespace slime;

using namespace slime::cuda_test;


TEST_CASE("rmsnorm forward and backward match the CPU reference") {
  static GpuSetup setup;
  // n = 7 and fp32 n = 6000: the scalar kernels; the others the vector ones
  for (cuda::Precision precision : {cuda::Precision::F32, cuda::Precision::BF16}) {
    for (auto [rows, n, with_residual] : std::vector<std::tuple<int64_t, int64_t, bool>>{
             {1, 7, false}, {1, 7, true}, {37, 896, false}, {513, 1536, false}, {513, 1536, true}, {64, 4096, true},
             {33, 6000, true}}) {
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
      const std::vector<float> residual = as_stored(random_floats(rows * n), precision);
      if (with_residual)
        for (int64_t i = 0; i < rows * n; ++i) ref_dx[i] += residual[i];
      Tensor d_residual = upload(residual, precision);

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
                             with_residual ? d_residual.raw() : nullptr, d_dx.raw(), d_dw.data<float>(), rows, n,
                             nullptr);
      cuda::synchronize();
      const double err_y = relative_error(download(d_y), ref_y);
      const double err_rstd = relative_error(download(d_rstd), ref_rstd);
      const double err_dx = relative_error(download(d_dx), ref_dx);
      const double err_dw = relative_error(download(d_dw), ref_dw);
      std::printf("rmsnorm %s [%lld, %lld]%s: y %.2e rstd %.2e dx %.2e dw %.2e\n", bf16 ? "bf16" : "fp32",
                  static_cast<long long>(rows), static_cast<long long>(n), with_residual ? " + residual" : "", err_y,
                  err_rstd, err_dx, err_dw);
      CHECK(err_y <= tol);
      CHECK(err_rstd <= 1e-5);
      CHECK(err_dx <= tol);
      CHECK(err_dw <= tol);
    }
  }
}

TEST_CASE("gemm (cuBLASLt) matches the CPU reference for every transpose and precision") {
  static GpuSetup setup;
  struct Shape {
    int64_t M, N, K;
  };
  // Odd sizes, a Qwen2.5-0.5B linear (896 -> 4864) on 128 tokens, and a skinny K.
  for (Shape s : {Shape{1, 1, 1}, Shape{37, 53, 71}, Shape{128, 4864, 896}, Shape{256, 64, 8}}) {
    for (int variant = 0; variant < 4; ++variant) {
      const bool ta = variant & 1, tb = variant & 2;
      for (auto [in, out] : std::vector<std::pair<cuda::Precision, cuda::Precision>>{
               {cuda::Precision::F32, cuda::Precision::F32},
               {cuda::Precision::BF16, cuda::Precision::BF16},
               {cuda::Precision::BF16, cuda::Precision::F32}}) {
        const bool bf16_out = out == cuda::Precision::BF16;
        const std::vector<float> a = as_stored(random_floats(s.M * s.K), in);
        const std::vector<float> b = as_stored(random_floats(s.K * s.N), in);
        const std::vector<float> c0 = as_stored(random_floats(s.M * s.N), out);
        const float alpha = 0.75f, beta = 0.5f;  // beta != 0: accumulation into C is checked too
        std::vector<float> ref = c0;
        cpu::gemm<float>(ta, tb, s.M, s.N, s.K, alpha, a.data(), b.data(), beta, ref.data());
        Tensor da = upload(a, in), db = upload(b, in), dc = upload(c0, out);
        cuda::gemm(in, out, ta, tb, s.M, s.N, s.K, alpha, da.raw(), db.raw(), beta, dc.raw(), nullptr);
        cuda::synchronize();
        const double err = relative_error(download(dc), ref);
        const double tol = in == cuda::Precision::F32 ? 1e-5 : bf16_out ? 1e-2 : 1e-3;
        INFO("gemm " << (ta ? "T" : "N") << (tb ? "T" : "N") << " " << s.M << "x" << s.N << "x" << s.K << " in "
                     << (in == cuda::Precision::BF16 ? "bf16" : "fp32") << " out " << (bf16_out ? "bf16" : "fp32")
                     << ": rel err " << err);
        CHECK(err <= tol);
        if (variant == 0 && s.M == 128)
          std::printf("gemm NN 128x4864x896 %s->%s: rel err %.2e\n", in == cuda::Precision::BF16 ? "bf16" : "fp32",
                      bf16_out ? "bf16" : "fp32", err);
      }
    }
  }
}

TEST_CASE("swiglu forward and backward match the CPU reference") {
  static GpuSetup setup;
  for (cuda::Precision precision : {cuda::Precision::F32, cuda::Precision::BF16}) {
    for (auto [tokens, ffn] : std::vector<std::pair<int64_t, int64_t>>{{1, 3}, {77, 4864}, {300, 129}}) {
      const bool bf16 = precision == cuda::Precision::BF16;
      const std::vector<float> gu = as_stored(random_floats(tokens * 2 * ffn, 2.0f), precision);
      const std::vector<float> dout = as_stored(random_floats(tokens * ffn), precision);
      std::vector<float> ref_out(tokens * ffn), ref_dgu(tokens * 2 * ffn);
      cpu::swiglu_forward<float>(gu.data(), ref_out.data(), tokens, ffn);
      cpu::swiglu_backward<float>(gu.data(), dout.data(), ref_dgu.data(), tokens, ffn);
      Tensor d_gu = upload(gu, precision), d_dout = upload(dout, precision);
      Tensor d_out = upload(std::vector<float>(tokens * ffn), precision);
      Tensor d_dgu = upload(std::vector<float>(tokens * 2 * ffn), precision);
      cuda::fill_bytes(d_out.raw(), 0xff, d_out.nbytes());
      cuda::fill_bytes(d_dgu.raw(), 0xff, d_dgu.nbytes());
      cuda::swiglu_forward(precision, d_gu.raw(), d_out.raw(), tokens, ffn, nullptr);
      cuda::swiglu_backward(precision, d_gu.raw(), d_dout.raw(), d_dgu.raw(), tokens, ffn, nullptr);
      cuda::synchronize();
      const double err_out = relative_error(download(d_out), ref_out);
      const double err_d = relative_error(download(d_dgu), ref_dgu);
      std::printf("swiglu %s [%lld, %lld]: out %.2e dgate_up %.2e\n", bf16 ? "bf16" : "fp32",
                  static_cast<long long>(tokens), static_cast<long long>(ffn), err_out, err_d);
      CHECK(err_out <= (bf16 ? 1e-2 : 1e-5));
      CHECK(err_d <= (bf16 ? 1e-2 : 1e-5));
    }
  }
}

TEST_CASE("rope forward and inverse match the CPU reference") {
  static GpuSetup setup;
  for (cuda::Precision precision : {cuda::Precision::F32, cuda::Precision::BF16}) {
    for (auto [heads, tokens, head_dim] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{
             {1, 1, 2}, {14, 333, 64}, {2, 4096, 128}}) {
      const bool bf16 = precision == cuda::Precision::BF16;
      const int64_t half = head_dim / 2;
      std::vector<float> inv_freq(half);
      for (int64_t i = 0; i < half; ++i) inv_freq[i] = std::pow(1e6f, -2.0f * i / head_dim);
      std::vector<int64_t> positions(tokens);
      Rng rng(fresh_seed());
      for (int64_t t = 0; t < tokens; ++t) positions[t] = static_cast<int64_t>(rng.uniform() * 32768);  // packed
      std::vector<float> cos(tokens * half), sin(tokens * half);
      cpu::rope_tables<float>(inv_freq.data(), half, positions.data(), tokens, cos.data(), sin.data());
      const std::vector<float> x = as_stored(random_floats(heads * tokens * head_dim), precision);
      for (bool inverse : {false, true}) {
        std::vector<float> ref = x;
        cpu::rope_apply<float>(ref.data(), cos.data(), sin.data(), heads, tokens, head_dim, inverse);
        Tensor dx = upload(x, precision), dcos = upload(cos, cuda::Precision::F32),
               dsin = upload(sin, cuda::Precision::F32);
        cuda::rope_apply(precision, dx.raw(), dcos.data<float>(), dsin.data<float>(), heads, tokens, head_dim,
                         inverse, nullptr);
        cuda::synchronize();
        const double err = relative_error(download(dx), ref);
        std::printf("rope %s%s [%lld, %lld, %lld]: %.2e\n", bf16 ? "bf16" : "fp32", inverse ? " inverse" : "",
                    static_cast<long long>(heads), static_cast<long long>(tokens), static_cast<long long>(head_dim),
                    err);
        CHECK(err <= (bf16 ? 1e-2 : 1e-5));
      }
    }
  }
}

TEST_CASE("AdamW (multi-tensor) equals the CPU step bit for bit; sum of squares matches") {
  static GpuSetup setup;
  // whole 2048-element blocks, partial last blocks, tensors smaller than a block
  const std::vector<int64_t> sizes = {1, 333, 40000, 16384, 2048, 4099};
  const std::vector<double> decays = {0.1, 0.0, 0.1, 0.05, 0.1, 0.0};
  train::AdamWConfig config;
  config.beta1 = 0.9;
  config.beta2 = 0.98;
  config.eps = 1e-8;
  struct Host {
    std::vector<float> param, m, v;
  };
  std::vector<Host> host(sizes.size());
  std::vector<Tensor> d_param, d_grad, d_m, d_v, d_bf16;
  for (size_t k = 0; k < sizes.size(); ++k) {
    host[k].param = random_floats(sizes[k]);
    host[k].m.assign(sizes[k], 0.0f);
    host[k].v.assign(sizes[k], 0.0f);
    d_param.push_back(upload(host[k].param, cuda::Precision::F32));
    d_m.push_back(upload(host[k].m, cuda::Precision::F32));
    d_v.push_back(upload(host[k].v, cuda::Precision::F32));
    d_bf16.push_back(upload(std::vector<float>(sizes[k]), cuda::Precision::BF16));
    d_grad.push_back(upload(std::vector<float>(sizes[k]), cuda::Precision::F32));
  }
  int64_t total = 0;
  for (int64_t n : sizes) total += n;
  for (int64_t step = 1; step <= 3; ++step) {
    const double lr = 1e-3 * step;
    const double clip = step == 2 ? 0.37 : 1.0;  // step 2 clips: the CPU scales the gradients first
    std::vector<std::vector<float>> grads;
    std::vector<cuda::AdamWTensor> tensors;
    double ref_sum = 0;
    Tensor d_sum = upload(std::vector<float>(2, 0.0f), cuda::Precision::F32);  // 8 zero bytes: one double
    for (size_t k = 0; k < sizes.size(); ++k) {
      grads.push_back(random_floats(sizes[k], 0.01f));
      cuda::copy_to_device(d_grad[k].raw(), grads[k].data(), grads[k].size() * 4);
      ref_sum += train::sum_of_squares(grads[k].data(), sizes[k]);
      cuda::sum_of_squares_accumulate(d_grad[k].data<float>(), sizes[k], static_cast<double*>(d_sum.raw()), nullptr);
      std::vector<float> clipped = grads[k];
      if (clip < 1.0) train::scale_in_place(clipped.data(), sizes[k], clip);
      train::adamw_step(host[k].param.data(), clipped.data(), host[k].m.data(), host[k].v.data(), sizes[k], step,
                        config, lr, decays[k]);
      tensors.push_back(cuda::AdamWTensor{d_param[k].data<float>(), d_grad[k].data<float>(), d_m[k].data<float>(),
                                          d_v[k].data<float>(), d_bf16[k].raw(), sizes[k], decays[k]});
    }
    cuda::adamw_step(tensors, step, config.beta1, config.beta2, config.eps, lr, nullptr, static_cast<float>(clip));
    cuda::synchronize();
    double gpu_sum = 0;
    cuda::copy_to_host(&gpu_sum, d_sum.raw(), sizeof gpu_sum);
    CHECK(std::abs(gpu_sum - ref_sum) <= 1e-12 * ref_sum);
    int64_t mismatches = 0;
    for (size_t k = 0; k < sizes.size(); ++k) {
      const std::vector<float> p = download(d_param[k]), m = download(d_m[k]), v = download(d_v[k]);
      const std::vector<float> pb = download(d_bf16[k]);
      for (int64_t i = 0; i < sizes[k]; ++i) {
        mismatches += std::memcmp(&p[i], &host[k].param[i], 4) != 0 || std::memcmp(&m[i], &host[k].m[i], 4) != 0 ||
                      std::memcmp(&v[i], &host[k].v[i], 4) != 0 ||
                      pb[i] != bf16_to_f32(f32_to_bf16(host[k].param[i]));
      }
    }
    std::printf("adamw step %lld: %lld of %lld elements differ from the CPU; sum of squares %.17g vs %.17g\n",
                static_cast<long long>(step), static_cast<long long>(mismatches), static_cast<long long>(total), gpu_sum,
                ref_sum);
    CHECK(mismatches == 0);
  }
}
