#include "train/gpu_actor.h"

#include <string>

#include "core/error.h"
#include "core/log.h"

#ifdef SLIME_HAVE_CUDA
#include "comm/device_comm.h"
#include "kernels/cuda/device.h"
#include "model/cuda_decoder.h"
#include "train/cuda_optimizer.h"
#endif

namespace slime::train {

#ifdef SLIME_HAVE_CUDA
namespace {

class CudaActor final : public GpuActor {
 public:
  CudaActor(const Args& args, model::Decoder& host, const comm::ParallelGroups& groups)
      : host_(host),
        groups_(groups),
        dp_(comm::DeviceComm::needed(groups.dp) ? std::make_unique<comm::DeviceComm>(groups.dp, "data-parallel")
                                                 : nullptr),
        tp_(groups.tp.single() ? nullptr : std::make_unique<comm::DeviceComm>(groups.tp, "tensor-parallel")),
        gpu_(host.config(), options(args, host.config(), groups.dp.size), groups.tp, tp_.get()) {
    Tensor& values = host_.params().flat_values();
    pinned_ = cuda::pin_host_memory(values.raw(), values.nbytes());
    SLIME_INFO0("--backend cuda: ", gpu_.params().numel(), " parameters per rank on the GPU with the optimizer; data "
                "parallel ", groups.dp.size, dp_ ? std::string(" over ") + dp_->transport_name() : std::string(),
                ", tensor parallel ", groups.tp.size, tp_ ? std::string(" over ") + tp_->transport_name() : std::string());
  }
  ~CudaActor() override {
    if (pinned_) cuda::unpin_host_memory(host_.params().flat_values().raw());
  }

  std::unique_ptr<Optimizer> make_optimizer(AdamWConfig config, double clip_grad) override {
    return std::make_unique<CudaDistributedOptimizer>(gpu_.params(), gpu_.compute_copy(), config, clip_grad, groups_,
                                                      dp_.get(), &host_.params());
  }

  void host_weights_changed() override {
    SLIME_ASSERT(!host_stale_, "the host weights were written while the GPU held newer ones (pull_weights first)");
    gpu_stale_ = true;
  }
  void device_weights_changed() override { host_stale_ = true; }
  void pull_weights() override {
    if (!host_stale_) return;
    gpu_.download(host_.params(), false);
    host_stale_ = false;
  }

  void use_weights(const Tensor& host_values) override {
    SLIME_ASSERT(!swapped_, "use_weights twice without restore_weights");
    SLIME_CHECK(host_values.numel() == gpu_.params().numel(), "use_weights: ", host_values.numel(),
                " values for a model of ", gpu_.params().numel());
    push_if_stale();
    Tensor& master = gpu_.params().flat_values();
    if (!backup_.defined()) backup_ = Tensor::empty({master.numel()}, DType::F32, Device::CUDA);
    cuda::copy_async(backup_.raw(), master.raw(), master.nbytes(), nullptr);
    cuda::copy_to_device(master.raw(), host_values.raw(), master.nbytes());
    gpu_.refresh_compute_copy();
    swapped_ = true;
  }
  void restore_weights() override {
    SLIME_ASSERT(swapped_, "restore_weights without use_weights");
    Tensor& master = gpu_.params().flat_values();
    cuda::copy_async(master.raw(), backup_.raw(), master.nbytes(), nullptr);
    gpu_.refresh_compute_copy();
    swapped_ = false;
  }

  void forward(const model::PackedBatch& batch, const std::vector<int64_t>& targets, float temperature,
               Tensor* logprobs, Tensor* entropy) override {
    push_if_stale();
    gpu_.forward(batch, targets, temperature, logprobs, entropy);
  }
  void backward(const Tensor& dlogprobs, const Tensor& dentropy) override { gpu_.backward(dlogprobs, dentropy); }

  void pull_gradients() override {
    Tensor& grads = host_.params().flat_grads();
    cuda::copy_to_host(grads.raw(), gpu_.params().flat_grads().raw(), grads.nbytes());
    gpu_.zero_grad();
  }

  model::DeviceWeights device_weights() override {
    SLIME_ASSERT(!swapped_, "device_weights while the reference weights are in use");
    push_if_stale();
    return gpu_.device_weights();
  }

 private:
  static model::CudaDecoderOptions options(const Args& args, const model::ModelConfig& config, int dp) {
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
    o.param_padding = CudaDistributedOptimizer::padding(dp);
    return o;
  }

  void push_if_stale() {
    if (!gpu_stale_) return;
    gpu_.upload(host_.params());
    gpu_stale_ = false;
  }

  model::Decoder& host_;
  comm::ParallelGroups groups_;
  std::unique_ptr<comm::DeviceComm> dp_;
  std::unique_ptr<comm::DeviceComm> tp_;  // activations' all-reduces of a tensor-parallel decoder
  model::CudaDecoder gpu_;
  Tensor backup_;           // the actor's master weights while use_weights() holds others
  bool gpu_stale_ = true;   // the host copy is newer
  bool host_stale_ = false; // the GPU copy is newer
  bool swapped_ = false;
  bool pinned_ = false;
};

}  // namespace
#endif

std::unique_ptr<GpuActor> GpuActor::create(const Args& args, model::Decoder& host,
                                           const comm::ParallelGroups& groups) {
  if (args.backend != "cuda") return nullptr;
#ifdef SLIME_HAVE_CUDA
  SLIME_CHECK(cuda::device_count() > 0, "--backend cuda: no CUDA GPU is visible to this rank");
  cuda::init_local_device();
  return std::make_unique<CudaActor>(args, host, groups);
#else
  (void)host;
  (void)groups;
  SLIME_FAIL("--backend cuda: this build of slime-hpc has no CUDA backend (nvcc was not found at configure time)");
#endif
}

}  // namespace slime::train
