#include "train/gpu_mirror.h"

#include <cstdlib>
#include <string>

#include "core/error.h"
#include "core/log.h"

#ifdef SLIME_HAVE_CUDA
#include "kernels/cuda/device.h"
#include "model/cuda_decoder.h"
#endif

namespace slime::train {

#ifdef SLIME_HAVE_CUDA
namespace {

class CudaMirror final : public GpuMirror {
 public:
  CudaMirror(const Args& args, const model::Decoder& host) : host_(host), gpu_(host.config(), options(args, host.config())) {}

  void weights_changed() override { stale_ = true; }

  void forward(const model::PackedBatch& batch, const std::vector<int64_t>& targets, float temperature,
               Tensor* logprobs, Tensor* entropy) override {
    if (stale_) {
      gpu_.upload(host_.params());
      stale_ = false;
    }
    gpu_.forward(batch, targets, temperature, logprobs, entropy);
  }

  void backward(const Tensor& dlogprobs, const Tensor& dentropy) override { gpu_.backward(dlogprobs, dentropy); }

  void collect_gradients(model::ParamRegistry& host) override {
    const int64_t n = host.numel();
    if (!scratch_.defined()) scratch_ = Tensor::empty({n}, DType::F32);
    cuda::copy_to_host(scratch_.raw(), gpu_.params().flat_grads().raw(), n * sizeof(float));
    float* g = host.flat_grads().data<float>();
    const float* d = scratch_.data<float>();
    for (int64_t i = 0; i < n; ++i) g[i] += d[i];
    gpu_.zero_grad();
  }

 private:
  static model::CudaDecoderOptions options(const Args& args, const model::ModelConfig& config) {
    model::CudaDecoderOptions o;
    // bf16 (slime's default). fp32 where there is no bf16 kernel: --fp16, or a head_dim the tensor-core attention
    // does not take (it handles 64 and 128; the fp32 path any up to 256).
    const bool bf16_ok = !args.fp16 && (config.head_dim == 64 || config.head_dim == 128);
    if (!bf16_ok)
      SLIME_INFO0("--backend cuda: fp32 activations (", args.fp16 ? "--fp16 has no kernels" : "head_dim ",
                  args.fp16 ? "" : std::to_string(config.head_dim), args.fp16 ? "" : " has no bf16 attention kernel",
                  ")");
    o.precision = bf16_ok ? cuda::Precision::BF16 : cuda::Precision::F32;
    o.lm_head_chunk_rows = args.log_probs_chunk_size > 0 ? args.log_probs_chunk_size : 0;
    o.recompute_granularity = args.recompute_granularity.value_or("");
    return o;
  }

  const model::Decoder& host_;
  model::CudaDecoder gpu_;
  Tensor scratch_;  // host copy of the GPU gradients
  bool stale_ = true;
};

}  // namespace
#endif

std::unique_ptr<GpuMirror> GpuMirror::create(const Args& args, const model::Decoder& host) {
  if (args.backend != "cuda") return nullptr;
#ifdef SLIME_HAVE_CUDA
  SLIME_CHECK(cuda::device_count() > 0, "--backend cuda: no CUDA GPU is visible to this rank");
  SLIME_CHECK(host.tp().single(), "--backend cuda: the GPU trainer has no tensor parallelism yet (use "
              "--tensor-model-parallel-size 1 or --backend cpu)");
  cuda::init_local_device();
  return std::make_unique<CudaMirror>(args, host);
#else
  (void)host;
  SLIME_FAIL("--backend cuda: this build of slime-hpc has no CUDA backend (nvcc was not found at configure time)");
#endif
}

}  // namespace slime::train
