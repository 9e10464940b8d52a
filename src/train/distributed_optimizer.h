// Megatron's distributed optimizer on the CPU backend: optimizer state sharded across data-parallel ranks.
//
// The registry keeps all parameters in one flat buffer and all gradients in another. Data-parallel rank r owns the
// elements [offsets[r], offsets[r+1]) of the flat buffer (an even split that may cut through parameters). A step:
//   1. reduce-scatter the gradients over the DP group (a sum: losses are already scaled to the global batch),
//   2. global gradient norm over the whole trainer pool, counting tensor-parallel replicas once (TP rank 0 owns
//      the replicated parameters, e.g. norm weights) -> clip,
//   3. AdamW on the owned elements (fp32 master = the parameter itself on the CPU backend),
//   4. all-gather the updated parameters over the DP group.
#pragma once

#include <cstdint>
#include <functional>
#include <set>
#include <vector>

#include "comm/parallel.h"
#include "core/tensor.h"
#include "model/params.h"
#include "train/adamw.h"

namespace slime::train {

struct OptimizerStepResult {
  double grad_norm = 0;    // before clipping
  bool skipped = false;    // non-finite gradients: parameters untouched, step count not advanced
  double clip_coefficient = 1;
};

class DistributedOptimizer {
 public:
  DistributedOptimizer(model::ParamRegistry& params, const comm::ParallelGroups& groups, AdamWConfig config,
                       double clip_grad);

  // Runs steps 1-4 above and zeroes the gradients.
  OptimizerStepResult step(double lr, double weight_decay);

  // Parameters for which `frozen` is true get no update at all (no AdamW step, no weight decay) and stay out of the
  // gradient norm (--only-train-params-name-list / --freeze-params-name-list).
  void set_frozen(const std::function<bool(const model::Param&)>& frozen);

  int64_t step_count() const { return step_count_; }
  void set_step_count(int64_t steps) { step_count_ = steps; }
  // Zeroes the Adam moments and the step count (--reset-optimizer-states).
  void reset_state();

  // The elements of one parameter this rank owns: [begin, end) in the parameter's local (TP-shard) flat
  // coordinates, and the matching slices of the Adam moments. Used to save and load optimizer state.
  struct OwnedRange {
    model::Param* param;
    int64_t begin, end;
    float* exp_avg;
    float* exp_avg_sq;
  };
  std::vector<OwnedRange> owned_ranges();
  const std::vector<int64_t>& dp_offsets() const { return offsets_; }

 private:
  model::ParamRegistry& params_;
  comm::ParallelGroups groups_;
  AdamWConfig config_;
  double clip_grad_;
  std::vector<int64_t> offsets_;  // [dp + 1]
  Tensor grad_shard_, exp_avg_, exp_avg_sq_;  // [owned]
  int64_t step_count_ = 0;
  std::set<const model::Param*> frozen_;
};

}  // namespace slime::train
