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
#include "train/optimizer.h"

namespace slime::train {

class DistributedOptimizer final : public Optimizer {
 public:
  DistributedOptimizer(model::ParamRegistry& params, const comm::ParallelGroups& groups, AdamWConfig config,
                       double clip_grad);

  // Runs steps 1-4 above and zeroes the gradients.
  OptimizerStepResult step(double lr, double weight_decay) override;
  void set_frozen(const std::function<bool(const model::Param&)>& frozen) override;
  int64_t step_count() const override { return step_count_; }
  void set_step_count(int64_t steps) override { step_count_ = steps; }
  void reset_state() override;
  // The moments live in host memory: the slices point straight into them.
  std::vector<OwnedRange> owned_ranges() override;
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
