#include "train/cuda_adamw.h"

#include "kernels/cuda/device.h"

namespace slime::train {

CudaAdamW::CudaAdamW(model::ParamRegistry& params, void* compute_copy_bf16, AdamWConfig config, double clip_grad)
    : params_(params), compute_copy_(compute_copy_bf16), config_(config), clip_grad_(clip_grad) {
  check_adamw_config(config_);
  SLIME_CHECK(params_.allocated() && params_.flat_values().device() == Device::CUDA,
              "CudaAdamW needs a parameter registry allocated on the GPU");
  exp_avg_ = Tensor::zeros({params_.numel()}, DType::F32, Device::CUDA);
  exp_avg_sq_ = Tensor::zeros({params_.numel()}, DType::F32, Device::CUDA);
  norm_sum_ = Tensor::zeros({1}, DType::F64, Device::CUDA);
  for (const model::Param& p : params_.all())
    no_decay_.push_back(megatron_no_weight_decay(p.name, static_cast<int>(p.global_shape.size())));
}

OptimizerStepResult CudaAdamW::step(double lr, double weight_decay) {
  const int64_t n = params_.numel();
  float* grads = params_.flat_grads().data<float>();
  norm_sum_.fill_zero();
  cuda::sum_of_squares_accumulate(grads, n, norm_sum_.data<double>(), nullptr);
  double total = 0;
  cuda::copy_to_host(&total, norm_sum_.raw(), sizeof total);
  cuda::profile_mark("optimizer: grad norm");
  const GradClipDecision clip = decide_grad_clip(total, clip_grad_);
  OptimizerStepResult result{clip.grad_norm, !clip.finite, clip.coefficient};
  if (clip.finite) {
    if (clip.coefficient < 1.0) cuda::scale_inplace(grads, static_cast<float>(clip.coefficient), n, nullptr);
    ++step_count_;
    std::vector<cuda::AdamWTensor> tensors;
    size_t i = 0;
    for (model::Param& p : params_.all()) {
      const int64_t off = p.flat_offset;
      tensors.push_back(cuda::AdamWTensor{
          p.value.data<float>(), p.grad.data<float>(), exp_avg_.data<float>() + off, exp_avg_sq_.data<float>() + off,
          compute_copy_ ? static_cast<char*>(compute_copy_) + off * 2 : nullptr, p.value.numel(),
          no_decay_[i++] ? 0.0 : weight_decay});
    }
    cuda::adamw_step(tensors, step_count_, config_.beta1, config_.beta2, config_.eps, lr, nullptr);
    cuda::profile_mark("optimizer: adamw");
  }
  params_.zero_grad();
  cuda::profile_mark("optimizer: zero grads");
  return result;
}

}  // namespace slime::train
