// A model's weights as the GPU buffers its kernels read, for weight sync on the GPU (sync/device_weight_sync.h):
// the trainer's side is read (train::GpuActor), an engine's is written (rollout::CudaModelRunner). Registry order
// (Megatron's module order) throughout. Plain pointers: no CUDA types.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

namespace slime::model {

class ParamRegistry;

struct DeviceWeights {
  bool bf16 = false;              // `flat` holds bf16 values, else fp32
  void* flat = nullptr;           // [numel]: every parameter, at its registry offset
  const float* master = nullptr;  // trainer: the fp32 master weights [numel]; null on an engine
  float* vectors = nullptr;       // bf16 engine: the 1-D parameters (norm weights, biases) in fp32, back to back
  int64_t numel = 0;
  int64_t vector_numel = 0;       // elements of the 1-D parameters (bf16 only; 0 with fp32)
  std::vector<std::pair<int64_t, int64_t>> vector_runs;  // trainer, bf16: [offset, count) of each 1-D parameter
  // The registry the buffers follow (names, tensor-parallel shards, flat offsets; its 1-D parameters in order make up
  // `vectors`). A tensor-parallel model's buffers hold its shards: weight sync cuts them out of the full tensors.
  const ParamRegistry* layout = nullptr;
};

}  // namespace slime::model
