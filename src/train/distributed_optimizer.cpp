#include "train/distributed_optimizer.h"

#include <algorithm>
#include <cmath>

#include "comm/mpi_utils.h"
#include "core/error.h"

namespace slime::train {

DistributedOptimizer::DistributedOptimizer(model::ParamRegistry& params, const comm::ParallelGroups& groups,
                                           AdamWConfig config, double clip_grad)
    : params_(params), groups_(groups), config_(config), clip_grad_(clip_grad) {
  check_adamw_config(config_);
  SLIME_ASSERT(params_.allocated(), "optimizer built before the parameters were allocated");
  const int64_t n = params_.numel(), dp = groups_.dp.size;
  offsets_.resize(dp + 1);
  for (int64_t r = 0; r <= dp; ++r) offsets_[r] = n * r / dp;
  const int64_t owned = offsets_[groups_.dp.rank + 1] - offsets_[groups_.dp.rank];
  grad_shard_ = Tensor::zeros({owned}, DType::F32);
  exp_avg_ = Tensor::zeros({owned}, DType::F32);
  exp_avg_sq_ = Tensor::zeros({owned}, DType::F32);
}

void DistributedOptimizer::reset_state() {
  exp_avg_.fill_zero();
  exp_avg_sq_.fill_zero();
  step_count_ = 0;
}

void DistributedOptimizer::set_frozen(const std::function<bool(const model::Param&)>& frozen) {
  frozen_.clear();
  for (const model::Param& p : params_.all())
    if (frozen(p)) frozen_.insert(&p);
}

std::vector<DistributedOptimizer::OwnedRange> DistributedOptimizer::owned_ranges() {
  const int64_t lo = offsets_[groups_.dp.rank], hi = offsets_[groups_.dp.rank + 1];
  std::vector<OwnedRange> ranges;
  for (model::Param& p : params_.all()) {
    const int64_t a = std::max(lo, p.flat_offset), b = std::min(hi, p.flat_offset + p.value.numel());
    if (a >= b) continue;
    ranges.push_back({&p, a - p.flat_offset, b - p.flat_offset, exp_avg_.data<float>() + (a - lo),
                      exp_avg_sq_.data<float>() + (a - lo)});
  }
  return ranges;
}

OptimizerStepResult DistributedOptimizer::step(double lr, double weight_decay) {
  const int64_t lo = offsets_[groups_.dp.rank];
  float* grads = grad_shard_.data<float>();
  if (groups_.dp.single()) {
    std::copy(params_.flat_grads().data<float>(), params_.flat_grads().data<float>() + params_.numel(), grads);
  } else {
    comm::reduce_scatter_sum(params_.flat_grads().data<float>(), grads, offsets_, groups_.dp.comm);
  }

  // Global norm: every element once across the pool (TP replicas of replicated parameters count on TP rank 0).
  std::vector<OwnedRange> ranges = owned_ranges();
  double local_sq = 0;
  for (const OwnedRange& r : ranges) {
    if (frozen_.count(r.param) || (r.param->replicated() && groups_.tp.rank != 0)) continue;
    local_sq += sum_of_squares(grads + (r.param->flat_offset + r.begin - lo), r.end - r.begin);
  }
  const GradClipDecision clip = decide_grad_clip(groups_.pool.sum(local_sq), clip_grad_);
  OptimizerStepResult result{clip.grad_norm, !clip.finite, clip.coefficient};
  if (clip.finite) {
    if (clip.coefficient < 1.0) scale_in_place(grads, grad_shard_.numel(), clip.coefficient);
    ++step_count_;
    float* values = params_.flat_values().data<float>();
    for (const OwnedRange& r : ranges) {
      if (frozen_.count(r.param)) continue;
      const int64_t offset = r.param->flat_offset + r.begin;
      const bool no_decay = megatron_no_weight_decay(r.param->name, static_cast<int>(r.param->global_shape.size()));
      adamw_step(values + offset, grads + (offset - lo), r.exp_avg, r.exp_avg_sq, r.end - r.begin, step_count_,
                 config_, lr, no_decay ? 0.0 : weight_decay);
    }
    if (!groups_.dp.single()) comm::allgather_inplace(values, offsets_, groups_.dp.comm);
  }
  params_.zero_grad();
  return result;
}

}  // namespace slime::train
