// Megatron's distributed optimizer on the GPU (--backend cuda). The fp32 master weights and gradients are
// model::CudaDecoder's registry in GPU memory; the Adam moments of this rank's shard live there too. One step:
//   1. reduce-scatter the gradients over the data-parallel group (comm::DeviceComm: NCCL, or host-staged MPI for
//      ranks sharing a GPU), in place: rank r's block of the flat gradient buffer holds the sum;
//   2. the global gradient norm of the owned, trainable elements (double partial sums on the GPU, then summed over
//      the trainer pool; with tensor parallelism a replicated parameter counts on TP rank 0 only) -> Megatron's
//      clip, or skip the step on a non-finite norm;
//   3. AdamW on the owned elements in one multi-tensor launch (kernels/cuda/optimizer.cu: train/adamw.h's
//      arithmetic bit for bit), no weight decay on biases and norm weights, refreshing the bf16 compute copy;
//   4. all-gather the updated master weights over the group, and re-derive the bf16 copy of the other blocks.
// The blocks are equal (NCCL's collectives want that): the registry is padded to dp blocks of shard elements
// (CudaDecoderOptions::param_padding = padding(dp)), each a multiple of 64 so every block starts 256-byte aligned.
// A rank owns [rank * shard, min((rank + 1) * shard, numel)). With one rank nothing is exchanged. Each TP rank runs
// its own instance over its registry (its TP shard of the model) and its data-parallel group.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "comm/device_comm.h"
#include "comm/parallel.h"
#include "core/tensor.h"
#include "model/params.h"
#include "train/adamw.h"
#include "train/optimizer.h"

namespace slime::train {

class CudaDistributedOptimizer final : public Optimizer {
 public:
  // params: the GPU registry. compute_copy_bf16: the flat bf16 copy to keep current (null with fp32 activations).
  // dp: the data-parallel collectives (null when groups.dp is one rank). host: the host registry of the same model,
  // whose Params name the checkpoint slices of owned_ranges() (null when no checkpoint is involved, e.g. benchmarks).
  // The Adam moments start at zero.
  CudaDistributedOptimizer(model::ParamRegistry& params, void* compute_copy_bf16, AdamWConfig config, double clip_grad,
                           const comm::ParallelGroups& groups = comm::ParallelGroups::single(),
                           comm::DeviceComm* dp = nullptr, model::ParamRegistry* host = nullptr);

  // The padding a registry needs for `dp` data-parallel ranks (CudaDecoderOptions::param_padding).
  static int64_t padding(int dp) { return int64_t{64} * dp; }

  OptimizerStepResult step(double lr, double weight_decay) override;
  void set_frozen(const std::function<bool(const model::Param&)>& frozen) override;
  int64_t step_count() const override { return step_count_; }
  void set_step_count(int64_t steps) override { step_count_ = steps; }
  void reset_state() override;
  std::vector<OwnedRange> owned_ranges() override;
  void host_state_done(bool written) override;

 private:
  // The owned elements of each trainable parameter (flat coordinates) and the contiguous runs they make.
  void plan_pieces();

  struct Piece {
    int64_t begin, end;  // flat elements
    bool no_decay;
    bool in_norm;        // counted by this rank's gradient norm (not a TP replica of rank 0's parameter)
  };
  model::ParamRegistry& params_;
  void* compute_copy_;
  AdamWConfig config_;
  double clip_grad_;
  comm::ParallelGroups groups_;
  comm::DeviceComm* dp_;
  model::ParamRegistry* host_;
  int64_t shard_ = 0, lo_ = 0, hi_ = 0;
  Tensor exp_avg_, exp_avg_sq_, norm_sum_;  // [hi - lo] fp32, [1] double; on the GPU
  std::vector<bool> frozen_;                // per parameter, registration order
  std::vector<Piece> pieces_;
  std::vector<std::pair<int64_t, int64_t>> norm_runs_;  // [begin, end) flat runs the gradient norm sums (each
                                                        // element once across the TP group)
  Tensor host_exp_avg_, host_exp_avg_sq_;  // owned_ranges()' host copy of the moments, until host_state_done()
  int64_t step_count_ = 0;
};

}  // namespace slime::train
