#include "train/cuda_optimizer.h"

#include <algorithm>

#include "core/error.h"
#include "kernels/cuda/device.h"
#include "kernels/cuda/ops.h"

namespace slime::train {

CudaDistributedOptimizer::CudaDistributedOptimizer(model::ParamRegistry& params, void* compute_copy_bf16,
                                                   AdamWConfig config, double clip_grad,
                                                   const comm::ParallelGroups& groups, comm::DeviceComm* dp,
                                                   model::ParamRegistry* host)
    : params_(params),
      compute_copy_(compute_copy_bf16),
      config_(config),
      clip_grad_(clip_grad),
      groups_(groups),
      dp_(dp),
      host_(host) {
  check_adamw_config(config_);
  SLIME_CHECK(params_.allocated() && params_.flat_values().device() == Device::CUDA,
              "the GPU optimizer needs a parameter registry allocated on the GPU");
  SLIME_CHECK(dp_ ? dp_->size() == groups_.dp.size : groups_.dp.single(),
              "the GPU optimizer over ", groups_.dp.size, " data-parallel ranks needs their device communicator");
  SLIME_CHECK(!host_ || host_->numel() == params_.numel(), "the host model has ", host_ ? host_->numel() : 0,
              " parameters, the GPU's ", params_.numel());
  const int64_t n = params_.numel(), ranks = groups_.dp.size;
  if (ranks == 1) {
    shard_ = n;
  } else {
    const int64_t block = padding(ranks);
    shard_ = (n + block - 1) / block * 64;
    SLIME_CHECK(params_.capacity() >= shard_ * ranks, "the GPU registry holds ", params_.capacity(),
                " elements; ", ranks, " data-parallel blocks of ", shard_, " need padding(", ranks, ")");
  }
  lo_ = std::min(n, shard_ * groups_.dp.rank);
  hi_ = std::min(n, lo_ + shard_);
  exp_avg_ = Tensor::zeros({std::max<int64_t>(hi_ - lo_, 1)}, DType::F32, Device::CUDA);
  exp_avg_sq_ = Tensor::zeros({std::max<int64_t>(hi_ - lo_, 1)}, DType::F32, Device::CUDA);
  norm_sum_ = Tensor::zeros({1}, DType::F64, Device::CUDA);
  frozen_.assign(params_.all().size(), false);
  plan_pieces();
}

void CudaDistributedOptimizer::plan_pieces() {
  pieces_.clear();
  norm_runs_.clear();
  size_t i = 0;
  for (const model::Param& p : params_.all()) {
    const int64_t a = std::max(lo_, p.flat_offset), b = std::min(hi_, p.flat_offset + p.value.numel());
    if (a < b && !frozen_[i])
      pieces_.push_back({a, b, megatron_no_weight_decay(p.name, static_cast<int>(p.global_shape.size())),
                         !p.replicated() || groups_.tp.rank == 0});
    ++i;
  }
  for (const Piece& piece : pieces_) {
    if (!piece.in_norm) continue;
    if (!norm_runs_.empty() && norm_runs_.back().second == piece.begin)
      norm_runs_.back().second = piece.end;
    else
      norm_runs_.push_back({piece.begin, piece.end});
  }
}

void CudaDistributedOptimizer::set_frozen(const std::function<bool(const model::Param&)>& frozen) {
  size_t i = 0;
  for (const model::Param& p : params_.all()) frozen_[i++] = frozen(p);
  plan_pieces();
}

void CudaDistributedOptimizer::reset_state() {
  exp_avg_.fill_zero();
  exp_avg_sq_.fill_zero();
  step_count_ = 0;
}

OptimizerStepResult CudaDistributedOptimizer::step(double lr, double weight_decay) {
  const int64_t n = params_.numel();
  float* grads = params_.flat_grads().data<float>();
  float* values = params_.flat_values().data<float>();
  if (dp_) {
    dp_->reduce_scatter_sum_inplace(grads, shard_);
    cuda::profile_mark("optimizer: reduce-scatter");
  }

  norm_sum_.fill_zero();
  for (const auto& [a, b] : norm_runs_)
    cuda::sum_of_squares_accumulate(grads + a, b - a, norm_sum_.data<double>(), nullptr);
  double local = 0;
  cuda::copy_to_host(&local, norm_sum_.raw(), sizeof local);
  cuda::profile_mark("optimizer: grad norm");
  const GradClipDecision clip = decide_grad_clip(groups_.pool.sum(local), clip_grad_);
  OptimizerStepResult result{clip.grad_norm, !clip.finite, clip.coefficient};
  if (clip.finite) {
    // The clipping scale is folded into AdamW's pass (the CPU path scales the gradients in place first: the same
    // fp32 product), which saves a read and a write of every gradient.
    const float grad_scale = clip.coefficient < 1.0 ? static_cast<float>(clip.coefficient) : 1.0f;
    ++step_count_;
    std::vector<cuda::AdamWTensor> tensors;
    tensors.reserve(pieces_.size());
    char* bf16 = static_cast<char*>(compute_copy_);
    for (const Piece& p : pieces_)
      tensors.push_back(cuda::AdamWTensor{values + p.begin, grads + p.begin, exp_avg_.data<float>() + (p.begin - lo_),
                                          exp_avg_sq_.data<float>() + (p.begin - lo_),
                                          bf16 ? bf16 + p.begin * 2 : nullptr, p.end - p.begin,
                                          p.no_decay ? 0.0 : weight_decay});
    if (!tensors.empty())
      cuda::adamw_step(tensors, step_count_, config_.beta1, config_.beta2, config_.eps, lr, nullptr, grad_scale);
    cuda::profile_mark("optimizer: adamw");
    if (dp_) {
      dp_->all_gather_inplace(values, shard_);
      if (bf16) {  // the blocks other ranks updated
        if (lo_ > 0) cuda::cast_from_f32(cuda::Precision::BF16, values, bf16, lo_, nullptr);
        if (hi_ < n) cuda::cast_from_f32(cuda::Precision::BF16, values + hi_, bf16 + hi_ * 2, n - hi_, nullptr);
      }
      cuda::profile_mark("optimizer: all-gather");
    }
  }
  params_.discard_grads();  // the next backward overwrites them: no pass over memory here
  return result;
}

std::vector<Optimizer::OwnedRange> CudaDistributedOptimizer::owned_ranges() {
  SLIME_CHECK(host_, "the GPU optimizer was built without the host model: it cannot name checkpoint slices");
  const int64_t owned = hi_ - lo_;
  if (!host_exp_avg_.defined()) {
    host_exp_avg_ = Tensor::empty({std::max<int64_t>(owned, 1)}, DType::F32);
    host_exp_avg_sq_ = Tensor::empty({std::max<int64_t>(owned, 1)}, DType::F32);
  }
  cuda::copy_to_host(host_exp_avg_.raw(), exp_avg_.raw(), static_cast<size_t>(owned) * sizeof(float));
  cuda::copy_to_host(host_exp_avg_sq_.raw(), exp_avg_sq_.raw(), static_cast<size_t>(owned) * sizeof(float));
  std::vector<OwnedRange> ranges;
  for (model::Param& p : host_->all()) {
    const int64_t a = std::max(lo_, p.flat_offset), b = std::min(hi_, p.flat_offset + p.value.numel());
    if (a >= b) continue;
    ranges.push_back({&p, a - p.flat_offset, b - p.flat_offset, host_exp_avg_.data<float>() + (a - lo_),
                      host_exp_avg_sq_.data<float>() + (a - lo_)});
  }
  return ranges;
}

void CudaDistributedOptimizer::host_state_done(bool written) {
  if (!host_exp_avg_.defined()) return;
  if (written) {
    const size_t bytes = static_cast<size_t>(hi_ - lo_) * sizeof(float);
    cuda::copy_to_device(exp_avg_.raw(), host_exp_avg_.raw(), bytes);
    cuda::copy_to_device(exp_avg_sq_.raw(), host_exp_avg_sq_.raw(), bytes);
  }
  host_exp_avg_ = Tensor();
  host_exp_avg_sq_ = Tensor();
}

}  // namespace slime::train
