// The parameter registry: every trainable tensor of a model under its Megatron-core name, with its gradient.
//
// Names follow Megatron-core's GPTModel (`decoder.layers.3.self_attention.linear_qkv.weight`), so checkpoints,
// conversion tools and weight sync all speak one vocabulary. Shapes are the full (unsharded) shapes when TP = 1.
#pragma once

#include <deque>
#include <map>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace slime::model {

struct Param {
  std::string name;  // Megatron-core name
  Tensor value;      // fp32 on the host (CPU backend)
  Tensor grad;       // same shape; backward accumulates into it
  // Tensor-parallel layout: dimension split across TP ranks (0 = column-parallel rows, 1 = row-parallel
  // columns), or -1 when every TP rank holds a full copy.
  int partition_dim = -1;
};

class ParamRegistry {
 public:
  // Adds a zero-initialised parameter (and zero gradient). Names must be unique.
  Param& add(const std::string& name, const Shape& shape, int partition_dim = -1);
  Param& at(const std::string& name);
  const Param& at(const std::string& name) const;
  const Param* find(const std::string& name) const;
  // In registration order (which is Megatron's module order).
  std::deque<Param>& all() { return params_; }
  const std::deque<Param>& all() const { return params_; }
  void zero_grad();
  int64_t numel() const;

 private:
  std::deque<Param> params_;  // deque: references stay valid as parameters are added
  std::map<std::string, size_t> index_;
};

}  // namespace slime::model
