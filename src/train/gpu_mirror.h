// The actor's forward and backward on a GPU (--backend cuda) while the trainer keeps the parameters, the
// distributed optimizer, checkpoints and weight sync in host memory: the weights go up to the GPU when they have
// changed, the gradients come down after each optimizer step's micro-batches. This runs slime-train on the CUDA
// decoder with everything else unchanged; the GPU-resident optimizer with NCCL data parallelism replaces the two
// copies later (issue #7). Tensor parallelism stays on the CPU path for now (refused with --backend cuda).
#pragma once

#include <memory>
#include <vector>

#include "core/args.h"
#include "core/tensor.h"
#include "model/decoder.h"

namespace slime::train {

class GpuMirror {
 public:
  virtual ~GpuMirror() = default;

  // Null unless --backend cuda. Errors name what is missing: a build without CUDA, no visible GPU, a
  // tensor-parallel trainer. Binds this rank to GPU (local rank mod GPUs).
  static std::unique_ptr<GpuMirror> create(const Args& args, const model::Decoder& host);

  // The host weights changed (optimizer step, load, reference swap): upload them before the next forward.
  virtual void weights_changed() = 0;
  // model::Decoder's forward and backward, on the GPU (host tensors in and out).
  virtual void forward(const model::PackedBatch& batch, const std::vector<int64_t>& targets, float temperature,
                       Tensor* logprobs, Tensor* entropy) = 0;
  virtual void backward(const Tensor& dlogprobs, const Tensor& dentropy) = 0;
  // Adds the gradients accumulated on the GPU into `host` (the same model's registry) and zeroes them there.
  virtual void collect_gradients(model::ParamRegistry& host) = 0;
};

}  // namespace slime::train
