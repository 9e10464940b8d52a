// AdamW on the GPU for a parameter registry whose fp32 values and gradients live there (model::CudaDecoder): one
// multi-tensor kernel launch (kernels/cuda/optimizer.cu, train/adamw.h's arithmetic bit for bit), Megatron's
// global-norm gradient clipping (train/adamw.h: decide_grad_clip), and the bf16 compute copy of the weights
// refreshed in the same pass. One data-parallel rank: the NCCL distributed optimizer builds on this.
#pragma once

#include <cstdint>
#include <vector>

#include "core/tensor.h"
#include "kernels/cuda/ops.h"
#include "model/params.h"
#include "train/adamw.h"
#include "train/distributed_optimizer.h"

namespace slime::train {

class CudaAdamW {
 public:
  // params: values and grads on the GPU. compute_copy_bf16: the flat bf16 copy (registry offsets) to refresh, or
  // null. The Adam moments start at zero.
  CudaAdamW(model::ParamRegistry& params, void* compute_copy_bf16, AdamWConfig config, double clip_grad);

  // Gradient norm -> clip (or skip the step on a non-finite norm) -> AdamW with weight decay off for biases and
  // norm weights (megatron_no_weight_decay) -> zero the gradients. The norm needs one device-to-host copy.
  OptimizerStepResult step(double lr, double weight_decay);
  int64_t step_count() const { return step_count_; }

 private:
  model::ParamRegistry& params_;
  void* compute_copy_;
  AdamWConfig config_;
  double clip_grad_;
  Tensor exp_avg_, exp_avg_sq_, norm_sum_;  // [numel], [numel] fp32; one double
  std::vector<bool> no_decay_;              // per parameter, registration order
  int64_t step_count_ = 0;
};

}  // namespace slime::train
