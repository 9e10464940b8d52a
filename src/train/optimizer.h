// The optimizer as the trainer drives it: Megatron's distributed optimizer (gradients reduce-scattered over the
// data-parallel group, AdamW on the owned shard, parameters all-gathered), on the CPU (distributed_optimizer.h)
// or on the GPU (cuda_optimizer.h). Both do the same arithmetic in the same order per element.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "model/params.h"

namespace slime::train {

struct OptimizerStepResult {
  double grad_norm = 0;    // before clipping
  bool skipped = false;    // non-finite gradients: parameters untouched, step count not advanced
  double clip_coefficient = 1;
};

class Optimizer {
 public:
  virtual ~Optimizer() = default;

  // Collective over the trainer pool. Reduce-scatter the gradients, global norm and clip, AdamW with weight decay
  // off for biases and norm weights, all-gather the parameters; zeroes the gradients.
  virtual OptimizerStepResult step(double lr, double weight_decay) = 0;

  // Parameters for which `frozen` is true get no update at all (no AdamW step, no weight decay) and stay out of the
  // gradient norm (--only-train-params-name-list / --freeze-params-name-list).
  virtual void set_frozen(const std::function<bool(const model::Param&)>& frozen) = 0;

  virtual int64_t step_count() const = 0;
  virtual void set_step_count(int64_t steps) = 0;
  // Zeroes the Adam moments and the step count (--reset-optimizer-states).
  virtual void reset_state() = 0;

  // Checkpoint I/O. The elements of one parameter this rank owns: [begin, end) in the parameter's local (TP-shard)
  // flat coordinates, and the matching slices of the Adam moments in host memory. `param` is the host model's.
  // A GPU optimizer copies its moments down on this call and keeps that copy until host_state_done(); after
  // writing into the slices (loading a checkpoint) call host_state_done(true) to make them the optimizer's state.
  struct OwnedRange {
    model::Param* param;
    int64_t begin, end;
    float* exp_avg;
    float* exp_avg_sq;
  };
  virtual std::vector<OwnedRange> owned_ranges() = 0;
  virtual void host_state_done(bool written) { (void)written; }
};

}  // namespace slime::train
