#include "model/params.h"

#include "core/error.h"

namespace slime::model {

Param& ParamRegistry::add(const std::string& name, const Shape& shape, int partition_dim) {
  SLIME_ASSERT(index_.count(name) == 0, "parameter '", name, "' registered twice");
  index_[name] = params_.size();
  Param& p = params_.emplace_back();
  p.name = name;
  p.value = Tensor::zeros(shape, DType::F32);
  p.grad = Tensor::zeros(shape, DType::F32);
  p.partition_dim = partition_dim;
  return p;
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
  for (Param& p : params_) p.grad.fill_zero();
}

int64_t ParamRegistry::numel() const {
  int64_t n = 0;
  for (const Param& p : params_) n += p.value.numel();
  return n;
}

}  // namespace slime::model
