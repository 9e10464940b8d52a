// make bench (GPU): the linear layers of one training step through slime's cuBLASLt GEMM (kernels/cuda/gemm.cu),
// bf16 in and out with fp32 accumulation, for the Qwen2.5-0.5B and 1.5B shapes on 4096 packed tokens. Per layer:
// forward y = x W^T (NT), backward dx = dy W (NN) and dW = dy^T x (TN, fp32 accumulation into an fp32 gradient).
// Prints TFLOP/s per GEMM and the total, to compare with torch.matmul run in the same call
// (regression/bench/bench_torch_gemm.py) and with the GPU's peak.
#include <cuda_runtime.h>

#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "bench_shapes.h"
#include "core/tensor.h"
#include "kernels/cuda/device.h"
#include "kernels/cuda/ops.h"

using namespace slime;

namespace {

struct Linear {
  const char* name;
  int64_t in, out;
};

struct Model {
  const char* name;
  std::vector<Linear> linears;  // one decoder layer's, then the LM head
  int layers;
};

double time_ms(const std::function<void()>& fn, int reps) {
  fn();  // warm-up (and the plan's heuristic)
  return bench::gpu_milliseconds(reps, fn) / reps;
}

}  // namespace

int main() {
  cuda::init_device(0);
  std::printf("device: %s\n", cuda::device_name(0).c_str());
  const int64_t T = 4096;
  const std::vector<Model> models = {
      {"qwen2.5-0.5b", {{"qkv", 896, 1152}, {"o", 896, 896}, {"fc1", 896, 2 * 4864}, {"fc2", 4864, 896},
                        {"lm_head", 896, 151936}}, 24},
      {"qwen2.5-1.5b", {{"qkv", 1536, 2048}, {"o", 1536, 1536}, {"fc1", 1536, 2 * 8960}, {"fc2", 8960, 1536},
                        {"lm_head", 1536, 151936}}, 28},
  };
  const auto bf16 = cuda::Precision::BF16, f32 = cuda::Precision::F32;
  for (const Model& m : models) {
    double step_flops = 0, step_ms = 0;
    for (const Linear& l : m.linears) {
      Tensor x = Tensor::empty({T, l.in}, DType::BF16, Device::CUDA);
      Tensor w = Tensor::empty({l.out, l.in}, DType::BF16, Device::CUDA);
      Tensor y = Tensor::empty({T, l.out}, DType::BF16, Device::CUDA);
      Tensor dw = Tensor::empty({l.out, l.in}, DType::F32, Device::CUDA);
      cuda::fill_bytes(x.raw(), 0x3c, x.nbytes());  // bf16 0x3c3c ~ 0.0115: finite, non-zero
      cuda::fill_bytes(w.raw(), 0x3c, w.nbytes());
      cuda::fill_bytes(y.raw(), 0x3c, y.nbytes());
      cuda::fill_bytes(dw.raw(), 0, dw.nbytes());
      const double flops = 2.0 * T * l.in * l.out;
      const double fwd = time_ms([&] { cuda::gemm(bf16, bf16, false, true, T, l.out, l.in, 1, x.raw(), w.raw(), 0,
                                                  y.raw(), nullptr); }, 20);
      // dx [T, in] = dy [T, out] @ W [out, in]   (y doubles as dy, x as dx)
      const double dgrad = time_ms([&] { cuda::gemm(bf16, bf16, false, false, T, l.in, l.out, 1, y.raw(), w.raw(), 0,
                                                    x.raw(), nullptr); }, 20);
      // dW [out, in] += dy^T [out, T] @ x [T, in], fp32 gradient
      const double wgrad = time_ms([&] { cuda::gemm(bf16, f32, true, false, l.out, l.in, T, 1, y.raw(), x.raw(), 1,
                                                    dw.raw(), nullptr); }, 20);
      auto tf = [&](double ms) { return flops / (ms * 1e-3) / 1e12; };
      std::printf("%s %-8s [%lld x %lld -> %lld]  fwd NT %6.1f TFLOP/s  dgrad NN %6.1f  wgrad TN->fp32 %6.1f\n",
                  m.name, l.name, static_cast<long long>(T), static_cast<long long>(l.in),
                  static_cast<long long>(l.out), tf(fwd), tf(dgrad), tf(wgrad));
      const int count = std::string(l.name) == "lm_head" ? 1 : m.layers;
      step_flops += count * 3 * flops;
      step_ms += count * (fwd + dgrad + wgrad);
    }
    std::printf("%s: all linears of a training step (fwd + bwd, %d layers + head, %lld tokens): %.2f ms, "
                "%.1f TFLOP/s\n", m.name, m.layers, static_cast<long long>(T), step_ms,
                step_flops / (step_ms * 1e-3) / 1e12);
  }
  return 0;
}
