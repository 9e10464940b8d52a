// make bench (GPU): one training step (forward + backward + AdamW) of Qwen2.5-0.5B- and 1.5B-shaped models on the
// CUDA backend (model/cuda_decoder.h, train/cuda_optimizer.h): random init, one packed sequence of 4096 tokens, bf16
// activations, fp32 master weights and gradients. Prints tokens/s, MFU and peak GPU memory per shape; the PyTorch
// peer (bench_torch_train.py) is run in the same call by bench_train.sh, which prints the ratio.
//
// MFU = (6 N T + 6 L T^2 H d) / step time / the bf16 GEMM rate measured here (an 8192^3 cuBLASLt GEMM), where N is
// the parameter count and the second term the causal attention FLOPs of forward and backward.
#include <cuda_runtime.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/rng.h"
#include "bench_shapes.h"
#include "kernels/cuda/device.h"
#include "kernels/cuda/ops.h"
#include "model/cuda_decoder.h"
#include "train/cuda_optimizer.h"

using namespace slime;

int main(int argc, char** argv) {
  const int64_t T = argc > 1 ? std::atoll(argv[1]) : 4096;
  const int steps = argc > 2 ? std::atoi(argv[2]) : 10;
  const std::string recompute = std::getenv("SLIME_BENCH_RECOMPUTE") ? std::getenv("SLIME_BENCH_RECOMPUTE") : "";
  cuda::init_device(0);
  const double peak = bench::measured_gemm_tflops();
  std::printf("device: %s, measured bf16 GEMM %.1f TFLOP/s\n", cuda::device_name(0).c_str(), peak);
  struct Shape {
    const char* name;
    model::ModelConfig config;
  };
  const std::vector<Shape> shapes = {{"qwen2.5-0.5b", bench::qwen25(896, 4864, 24, 14)},
                                     {"qwen2.5-1.5b", bench::qwen25(1536, 8960, 28, 12)}};
  for (const Shape& s : shapes) {
    const model::ModelConfig& c = s.config;
    const size_t base = cuda::memory_used();
    model::CudaDecoderOptions options;
    options.recompute_granularity = recompute;
    model::CudaDecoder decoder(c, options);
    decoder.init_random(1234);
    train::CudaDistributedOptimizer optimizer(decoder.params(), decoder.compute_copy(), train::AdamWConfig{}, 1.0);
    Rng rng(7);
    std::vector<int64_t> tokens(T), targets(T);
    for (int64_t t = 0; t < T; ++t) {
      tokens[t] = static_cast<int64_t>(rng.uniform() * c.vocab_size) % c.vocab_size;
      targets[t] = static_cast<int64_t>(rng.uniform() * c.vocab_size) % c.vocab_size;
    }
    const model::PackedBatch batch = model::PackedBatch::from_sequences({tokens});
    Tensor dlp = Tensor::empty({T}, DType::F32);
    for (int64_t t = 0; t < T; ++t) dlp.data<float>()[t] = -1.0f / T;
    double loss = 0;
    using Clock = std::chrono::steady_clock;
    auto since = [](Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); };
    // One step; with `phases` the device is synchronised between forward, backward and optimizer to time each.
    double phase[3] = {0, 0, 0};
    auto step = [&](bool phases) {
      Clock::time_point t = Clock::now();
      Tensor lp;
      decoder.forward(batch, targets, 1.0f, &lp, nullptr);  // ends with the log-probs' copy to the host
      loss = 0;
      for (int64_t i = 0; i < T; ++i) loss -= lp.data<float>()[i] / T;
      if (phases) phase[0] += since(t), t = Clock::now();
      decoder.backward(dlp, Tensor());
      if (phases) cuda::synchronize(), phase[1] += since(t), t = Clock::now();
      optimizer.step(1e-5, 0.01);
      if (phases) cuda::synchronize(), phase[2] += since(t);
    };
    for (int i = 0; i < 2; ++i) step(false);  // warm-up: arena, GEMM plans
    cuda::synchronize();
    const auto t0 = Clock::now();
    for (int i = 0; i < steps; ++i) step(false);
    cuda::synchronize();
    const double sec = since(t0) / steps;
    for (int i = 0; i < 3; ++i) step(true);
    if (cuda::profile_enabled()) {  // one more step, its GPU time by section
      cuda::synchronize();
      cuda::profile_reset();
      cuda::profile_mark("start");
      step(false);
      cuda::profile_report(s.name);
    }
    const double n_params = static_cast<double>(c.num_parameters());
    const double flops = 6.0 * n_params * T + 6.0 * c.num_layers * double(T) * T * c.num_heads * c.head_dim;
    const double mem = static_cast<double>(cuda::memory_used() - base) / (1 << 30);
    std::printf("slime %s: %.1f ms/step, %.0f tokens/s, %.1f TFLOP/s, MFU %.1f%%, peak memory %.2f GiB "
                "(params %.2fB, T %lld, recompute '%s', loss %.4f)\n",
                s.name, sec * 1e3, T / sec, flops / sec / 1e12, 100.0 * flops / sec / 1e12 / peak, mem,
                n_params / 1e9, static_cast<long long>(T), recompute.c_str(), loss);
    std::printf("slime %s phases: forward %.1f ms, backward %.1f ms, optimizer %.1f ms\n", s.name,
                phase[0] / 3 * 1e3, phase[1] / 3 * 1e3, phase[2] / 3 * 1e3);
  }
  return 0;
}
