// The actor on a GPU (--backend cuda): model::CudaDecoder runs the forward and backward, and the distributed
// optimizer runs there too (train/cuda_optimizer.h), so the fp32 master weights, gradients and Adam moments stay in
// GPU memory across steps. Data and tensor parallelism go through comm::DeviceComm (NCCL, or host-staged MPI for
// ranks that share a GPU); with tensor parallelism each rank's decoder holds its shard, like the host model.
//
// The host model (model::Decoder) stays the trainer's face to the rest of the program: checkpoints, weight sync and
// the reference model read and write its weights. The two copies are kept coherent lazily:
//   - host_weights_changed(): the host weights were written (checkpoint load, reference update, a caller); they go up
//     before the GPU next uses its weights;
//   - device_weights_changed(): an optimizer step changed the GPU's weights; pull_weights() brings them down when
//     the host copy is next read (weight sync, checkpoint save).
// Both copies go through the host buffer page-locked in place (cudaHostRegister), at the link's speed.
#pragma once

#include <memory>
#include <vector>

#include "comm/parallel.h"
#include "core/args.h"
#include "core/tensor.h"
#include "model/decoder.h"
#include "model/device_weights.h"
#include "train/adamw.h"
#include "train/optimizer.h"

namespace slime::train {

class GpuActor {
 public:
  virtual ~GpuActor() = default;

  // Null unless --backend cuda. Collective over groups.dp and groups.tp (their device communicators). Errors name
  // what is missing: a build without CUDA, no visible GPU. Binds this rank to GPU (local rank mod GPUs).
  static std::unique_ptr<GpuActor> create(const Args& args, model::Decoder& host, const comm::ParallelGroups& groups);

  // The distributed optimizer over the GPU's weights and gradients (call once; it refers to this actor).
  virtual std::unique_ptr<Optimizer> make_optimizer(AdamWConfig config, double clip_grad) = 0;

  virtual void host_weights_changed() = 0;
  virtual void device_weights_changed() = 0;
  // Copies the GPU's weights into the host model if an optimizer step changed them since the last copy.
  virtual void pull_weights() = 0;

  // Runs the next forwards on `host_values` (a flat host copy of the weights, e.g. the reference model's) until
  // restore_weights(); the actor's own weights wait on the GPU meanwhile.
  virtual void use_weights(const Tensor& host_values) = 0;
  virtual void restore_weights() = 0;

  // model::Decoder's forward and backward, on the GPU (host tensors in and out). Gradients accumulate on the GPU
  // until the optimizer's step.
  virtual void forward(const model::PackedBatch& batch, const std::vector<int64_t>& targets, float temperature,
                       Tensor* logprobs, Tensor* entropy) = 0;
  virtual void backward(const Tensor& dlogprobs, const Tensor& dentropy) = 0;
  // Copies the gradients accumulated on the GPU into the host model's (overwriting them) and zeroes them on the GPU
  // (Trainer::compute_gradients).
  virtual void pull_gradients() = 0;

  // The GPU's current weights for weight sync on the GPU (sync/device_weight_sync.h): the bf16 compute copy (or
  // the fp32 master with fp32 activations) and the fp32 master. Uploads the host weights first if they are newer.
  virtual model::DeviceWeights device_weights() = 0;
};

}  // namespace slime::train
