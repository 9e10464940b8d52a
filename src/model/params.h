// The parameter registry: every trainable tensor of a model under its Megatron-core name, with its gradient and
// how this rank's copy relates to the full tensor.
//
// Names follow Megatron-core's GPTModel (`decoder.layers.3.self_attention.linear_qkv.weight`), so checkpoints,
// conversion tools and weight sync speak one vocabulary. With tensor parallelism a rank holds a shard: the rows
// (partition_dim 0, column-parallel) or columns (partition_dim 1, row-parallel) listed in `blocks`. All values live
// in one flat fp32 buffer and all gradients in another (Megatron's param/grad buffers), so data-parallel
// reduce-scatter and all-gather work on contiguous memory.
#pragma once

#include <deque>
#include <map>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace slime::model {

// Local slice [local_start, local_start + size) along partition_dim is the global slice [global_start, ...).
struct ShardBlock {
  int64_t global_start;
  int64_t local_start;
  int64_t size;
};

struct Param {
  std::string name;          // Megatron-core name
  Tensor value;              // local shard, fp32, a view into the registry's flat value buffer
  Tensor grad;               // same shape, a view into the flat gradient buffer; backward accumulates into it
  bool grad_discarded = false;  // ParamRegistry::discard_grads: logically zero, the memory not yet cleared
  Shape global_shape;        // the full tensor (tensor-parallel size 1)
  int partition_dim = -1;    // -1: every tensor-parallel rank holds the whole tensor (e.g. norm weights)
  std::vector<ShardBlock> blocks;  // slices held along partition_dim (empty when partition_dim == -1)
  int64_t flat_offset = 0;   // first element in the flat buffers

  Shape local_shape() const { return value.shape(); }
  bool replicated() const { return partition_dim < 0; }
};

class ParamRegistry {
 public:
  // Registers a parameter; its local shape follows from the global shape and the blocks. Call allocate() once all
  // parameters are registered; values and gradients start at zero, in host memory or (the CUDA backend: fp32
  // master weights and gradients) on the GPU.
  Param& add(const std::string& name, const Shape& global_shape, int partition_dim = -1,
             std::vector<ShardBlock> blocks = {});
  // `capacity` (at least numel) pads both flat buffers with zeros behind the last parameter: the GPU's data-parallel
  // collectives need equal blocks per rank.
  void allocate(Device device = Device::CPU, int64_t capacity = 0);
  bool allocated() const { return values_.defined(); }

  Param& at(const std::string& name);
  const Param& at(const std::string& name) const;
  const Param* find(const std::string& name) const;
  std::deque<Param>& all() { return params_; }  // registration order (Megatron's module order)
  const std::deque<Param>& all() const { return params_; }

  Tensor& flat_values() { return values_; }  // [numel] fp32
  // The gradients, every discarded one (below) zeroed first.
  Tensor& flat_grads();
  const Tensor& flat_values() const { return values_; }
  void zero_grad();
  // Lazy zeroing (the GPU optimizer's step ends with it): every gradient counts as zero without a pass over memory.
  // The next backward's first writer of a gradient then overwrites it instead of adding to it: a GEMM takes
  // grad_beta(p) as its beta (0 once, then 1); a kernel that can only add takes grad_zeroed(p), which clears that one
  // gradient first. flat_grads() clears whatever nobody wrote. Saves a pass over the gradients per step, and the
  // weight-gradient GEMMs' reads of the old values.
  void discard_grads();
  float grad_beta(Param& p);
  float* grad_zeroed(Param* p);  // p's fp32 gradient (zeroed first if discarded); null for a null p
  int64_t numel() const { return numel_; }  // local elements
  // Elements the flat buffers hold: numel() plus the zero padding allocate() was asked for.
  int64_t capacity() const { return capacity_; }

 private:
  std::deque<Param> params_;  // deque: references stay valid as parameters are added
  std::vector<Shape> local_shapes_;
  std::map<std::string, size_t> index_;
  Tensor values_, grads_;
  int64_t numel_ = 0, capacity_ = 0;
  bool any_discarded_ = false;
};

// Shards of a global dimension of size `n` over `parts` ranks: rank r holds [r n/parts, (r+1) n/parts).
// Errors name `what` when n is not divisible.
std::vector<ShardBlock> contiguous_shard(int64_t n, int rank, int parts, const std::string& what);

// The contiguous runs of a parameter's shard: elements [global, global + count) of the full tensor (row-major) sit
// at [local, local + count) of the local tensor. Increasing in both global and local order.
struct ShardRun {
  int64_t global;
  int64_t local;
  int64_t count;
};
std::vector<ShardRun> shard_runs(const Param& param);

// Weight sync's "stream": the full (TP=1) tensors of a model's parameters in registration order, back to back. A
// stream run says that elements [stream, stream + count) of it sit at [local, local + count) of this rank's buffer.
// StreamPart::All covers every parameter, local being the registry's flat offsets; StreamPart::Vectors only the 1-D
// parameters (norm weights, biases), the stream being their full tensors back to back and local their shards back to
// back (the GPU engines' fp32 vector buffer). Runs come in stream order; adjacent ones merge.
struct StreamRun {
  int64_t stream;
  int64_t local;
  int64_t count;
};
enum class StreamPart { All, Vectors };
// The runs of this rank's shards; replicated parameters only when include_replicated.
std::vector<StreamRun> stream_runs(const ParamRegistry& params, bool include_replicated,
                                   StreamPart part = StreamPart::All);
// Elements of the stream.
int64_t stream_numel(const ParamRegistry& params, StreamPart part = StreamPart::All);

// Copies this rank's shard out of a full tensor (fp32, global shape) and back.
void extract_shard(const Param& param, const Tensor& global, Tensor& local);
void insert_shard(const Param& param, const Tensor& local, Tensor& global);

}  // namespace slime::model
