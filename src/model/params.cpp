#include "model/params.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"

namespace slime::model {

Param& ParamRegistry::add(const std::string& name, const Shape& global_shape, int partition_dim,
                          std::vector<ShardBlock> blocks) {
  SLIME_ASSERT(!allocated(), "parameter '", name, "' added after allocate()");
  SLIME_ASSERT(index_.count(name) == 0, "parameter '", name, "' registered twice");
  SLIME_ASSERT(partition_dim < static_cast<int>(global_shape.size()), name, ": partition dim out of range");
  SLIME_ASSERT((partition_dim < 0) == blocks.empty(), name, ": blocks go with a partition dim");
  Shape local = global_shape;
  if (partition_dim >= 0) {
    int64_t held = 0;
    for (const ShardBlock& b : blocks) {
      SLIME_ASSERT(b.global_start >= 0 && b.global_start + b.size <= global_shape[partition_dim], name,
                   ": shard block outside the tensor");
      held += b.size;
    }
    local[partition_dim] = held;
  }
  index_[name] = params_.size();
  Param& p = params_.emplace_back();
  p.name = name;
  p.global_shape = global_shape;
  p.partition_dim = partition_dim;
  p.blocks = std::move(blocks);
  p.flat_offset = numel_;
  local_shapes_.push_back(local);
  numel_ += shape_numel(local);
  return p;
}

void ParamRegistry::allocate(Device device, int64_t capacity) {
  SLIME_ASSERT(!allocated(), "allocate() called twice");
  capacity_ = std::max(capacity, numel_);
  values_ = Tensor::zeros({capacity_}, DType::F32, device);
  grads_ = Tensor::zeros({capacity_}, DType::F32, device);
  if (capacity_ > numel_) {  // the padding stays behind the views: flat_values() has numel() elements
    values_ = values_.slice_rows(0, numel_);
    grads_ = grads_.slice_rows(0, numel_);
  }
  for (size_t i = 0; i < params_.size(); ++i) {
    Param& p = params_[i];
    const int64_t n = shape_numel(local_shapes_[i]);
    p.value = values_.slice_rows(p.flat_offset, p.flat_offset + n).reshape(local_shapes_[i]);
    p.grad = grads_.slice_rows(p.flat_offset, p.flat_offset + n).reshape(local_shapes_[i]);
  }
}

Param& ParamRegistry::at(const std::string& name) {
  auto it = index_.find(name);
  SLIME_CHECK(it != index_.end(), "no parameter named '", name, "'");
  return params_[it->second];
}

const Param& ParamRegistry::at(const std::string& name) const {
  auto it = index_.find(name);
  SLIME_CHECK(it != index_.end(), "no parameter named '", name, "'");
  return params_[it->second];
}

const Param* ParamRegistry::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &params_[it->second];
}

void ParamRegistry::zero_grad() {
  if (allocated()) grads_.fill_zero();
  for (Param& p : params_) p.grad_discarded = false;
  any_discarded_ = false;
}

void ParamRegistry::discard_grads() {
  for (Param& p : params_) p.grad_discarded = true;
  any_discarded_ = !params_.empty();
}

float ParamRegistry::grad_beta(Param& p) {
  if (!p.grad_discarded) return 1.0f;
  p.grad_discarded = false;
  return 0.0f;
}

float* ParamRegistry::grad_zeroed(Param* p) {
  if (p == nullptr) return nullptr;
  if (p->grad_discarded) {
    p->grad.fill_zero();
    p->grad_discarded = false;
  }
  return p->grad.data<float>();
}

Tensor& ParamRegistry::flat_grads() {
  if (any_discarded_) {
    for (Param& p : params_) grad_zeroed(&p);
    any_discarded_ = false;
  }
  return grads_;
}

std::vector<ShardBlock> contiguous_shard(int64_t n, int rank, int parts, const std::string& what) {
  SLIME_CHECK(parts >= 1 && n % parts == 0, what, " (", n, ") is not divisible by the tensor-parallel size ", parts);
  const int64_t each = n / parts;
  return {{rank * each, 0, each}};
}

std::vector<ShardRun> shard_runs(const Param& p) {
  const Shape& g = p.global_shape;
  const Shape local = p.local_shape();
  if (p.partition_dim < 0) return {{0, 0, shape_numel(g)}};
  // Collapse to [outer, dim, inner] around the partition dim.
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < p.partition_dim; ++d) outer *= g[d];
  for (size_t d = p.partition_dim + 1; d < g.size(); ++d) inner *= g[d];
  const int64_t global_dim = g[p.partition_dim], local_dim = local[p.partition_dim];
  std::vector<ShardRun> runs;
  for (int64_t o = 0; o < outer; ++o)
    for (const ShardBlock& b : p.blocks)
      runs.push_back({(o * global_dim + b.global_start) * inner, (o * local_dim + b.local_start) * inner, b.size * inner});
  return runs;
}

void extract_shard(const Param& p, const Tensor& global, Tensor& local) {
  SLIME_ASSERT(global.shape() == p.global_shape && local.shape() == p.local_shape(), p.name, ": shard shapes");
  const float* src = global.data<float>();
  float* dst = local.data<float>();
  for (const ShardRun& r : shard_runs(p)) std::memcpy(dst + r.local, src + r.global, r.count * sizeof(float));
}

void insert_shard(const Param& p, const Tensor& local, Tensor& global) {
  SLIME_ASSERT(global.shape() == p.global_shape && local.shape() == p.local_shape(), p.name, ": shard shapes");
  const float* src = local.data<float>();
  float* dst = global.data<float>();
  for (const ShardRun& r : shard_runs(p)) std::memcpy(dst + r.global, src + r.local, r.count * sizeof(float));
}

std::vector<StreamRun> stream_runs(const ParamRegistry& params, bool include_replicated, StreamPart part) {
  std::vector<StreamRun> runs;
  int64_t stream = 0, packed = 0;  // packed: the 1-D parameters' local elements so far (StreamPart::Vectors)
  for (const Param& p : params.all()) {
    if (part == StreamPart::Vectors && p.global_shape.size() != 1) continue;
    const int64_t base = part == StreamPart::Vectors ? packed : p.flat_offset;
    for (const ShardRun& r : shard_runs(p)) {
      packed += r.count;
      if ((p.replicated() && !include_replicated) || r.count == 0) continue;
      const StreamRun run{stream + r.global, base + r.local, r.count};
      if (!runs.empty() && runs.back().stream + runs.back().count == run.stream &&
          runs.back().local + runs.back().count == run.local)
        runs.back().count += run.count;
      else
        runs.push_back(run);
    }
    stream += shape_numel(p.global_shape);
  }
  return runs;
}

int64_t stream_numel(const ParamRegistry& params, StreamPart part) {
  int64_t n = 0;
  for (const Param& p : params.all())
    if (part == StreamPart::All || p.global_shape.size() == 1) n += shape_numel(p.global_shape);
  return n;
}

}  // namespace slime::model
