// The model shapes the GPU benchmarks run (bench_cuda_train, bench_cuda_decode, bench_gpu_trainer): Qwen2.5's
// configuration at a given size (vocabulary 151,936 padded to a multiple of 128, two KV heads, tied embeddings, QKV
// bias), the GPU timer of every GPU benchmark (bench_cuda_gemm too), and the bf16 GEMM rate MFU is measured against.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "core/tensor.h"
#include "kernels/cuda/device.h"
#include "kernels/cuda/ops.h"
#include "model/config.h"

namespace slime::bench {

inline model::ModelConfig qwen25(int64_t hidden, int64_t ffn, int64_t layers, int64_t heads) {
  json j = {{"architectures", {"Qwen2ForCausalLM"}}, {"model_type", "qwen2"}, {"vocab_size", 151936},
            {"hidden_size", hidden}, {"intermediate_size", ffn}, {"num_hidden_layers", layers},
            {"num_attention_heads", heads}, {"num_key_value_heads", 2}, {"rms_norm_eps", 1e-6},
            {"rope_theta", 1000000.0}, {"tie_word_embeddings", true}, {"hidden_act", "silu"},
            {"max_position_embeddings", 32768}, {"use_sliding_window", false}};
  model::ModelConfig c = model::ModelConfig::from_hf_json(j, "qwen2.5 shape");
  c.pad_vocab(128);
  return c;
}

// Milliseconds of GPU time of `reps` calls of run() on the default stream (after the caller's warm-up).
template <class F>
float gpu_milliseconds(int reps, F&& run) {
  cudaEvent_t start, stop;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  cudaEventRecord(start);
  for (int i = 0; i < reps; ++i) run();
  cudaEventRecord(stop);
  cudaEventSynchronize(stop);
  float ms = 0;
  cudaEventElapsedTime(&ms, start, stop);
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  return ms;
}

// The bf16 GEMM rate of this GPU in TFLOP/s: an 8192^3 cuBLASLt GEMM (constant inputs), best of 20 after warm-up.
inline double measured_gemm_tflops() {
  const int64_t n = 8192;
  Tensor a = Tensor::empty({n, n}, DType::BF16, Device::CUDA), b = Tensor::empty({n, n}, DType::BF16, Device::CUDA);
  Tensor c = Tensor::empty({n, n}, DType::BF16, Device::CUDA);
  cuda::fill_bytes(a.raw(), 0x3c, a.nbytes());  // bf16 0x3c3c = 0.0115
  cuda::fill_bytes(b.raw(), 0x3c, b.nbytes());
  auto run = [&] {
    cuda::gemm(cuda::Precision::BF16, cuda::Precision::BF16, false, true, n, n, n, 1.0f, a.raw(), b.raw(), 0.0f,
               c.raw(), nullptr);
  };
  for (int i = 0; i < 3; ++i) run();
  const int reps = 20;
  const float ms = gpu_milliseconds(reps, run);
  return 2.0 * n * n * n * reps / (ms * 1e-3) / 1e12;
}

}  // namespace slime::bench
