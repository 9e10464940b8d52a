// Tensor: a typed, shaped, contiguous (row-major) block of memory on the host or on a GPU.
//
// Storage is reference counted: copies of a Tensor share memory, views (reshape, row slices) keep the storage
// alive. There is no striding and no autograd; ops live in kernels/cpu and kernels/cuda and take Tensors or raw
// pointers. Device memory comes from an allocator the CUDA backend registers, so core/ never includes CUDA.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"

namespace slime {

enum class Device : uint8_t { CPU, CUDA };

using Shape = std::vector<int64_t>;
std::string shape_str(const Shape& shape);
int64_t shape_numel(const Shape& shape);

// A block of bytes with its release function.
struct Storage {
  void* data = nullptr;
  size_t nbytes = 0;
  Device device = Device::CPU;
  std::function<void(void*)> release;
  ~Storage();
};

// The CUDA backend registers allocate/free (and a memset to zero) for Device::CUDA at start-up.
struct DeviceAllocator {
  std::function<void*(size_t)> allocate;
  std::function<void(void*)> release;
  std::function<void(void*, size_t)> zero;
};
void register_device_allocator(Device device, DeviceAllocator allocator);

class Tensor {
 public:
  Tensor() = default;

  // Uninitialised memory (host memory is 64-byte aligned).
  static Tensor empty(const Shape& shape, DType dtype, Device device = Device::CPU);
  static Tensor zeros(const Shape& shape, DType dtype, Device device = Device::CPU);
  // Wraps memory owned elsewhere; the caller keeps it alive longer than every view of this tensor.
  static Tensor wrap(void* data, const Shape& shape, DType dtype, Device device = Device::CPU);
  // Host fp32 / int tensors from values (handy in tests).
  static Tensor from_vector(const std::vector<float>& values, const Shape& shape);
  static Tensor from_vector(const std::vector<int64_t>& values, const Shape& shape);

  bool defined() const { return storage_ != nullptr; }
  const Shape& shape() const { return shape_; }
  int ndim() const { return static_cast<int>(shape_.size()); }
  int64_t dim(int i) const;  // negative i counts from the end
  int64_t numel() const { return shape_numel(shape_); }
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype_); }
  DType dtype() const { return dtype_; }
  Device device() const { return device_; }

  void* raw() const { return static_cast<char*>(storage_->data) + offset_; }
  template <class T>
  T* data() const {
    SLIME_ASSERT(dtype_ == dtype_of<T>::value, "tensor holds ", dtype_name(dtype_), ", accessed as ",
                 dtype_name(dtype_of<T>::value));
    return static_cast<T*>(raw());
  }

  // Same memory, new shape with the same element count. One dimension may be -1.
  Tensor reshape(const Shape& shape) const;
  // Rows [begin, end) along dimension 0; shares memory.
  Tensor slice_rows(int64_t begin, int64_t end) const;
  // A deep copy on the same device.
  Tensor clone() const;
  // Host copy converted to fp32 (from F32/F64/BF16/F16); used by checkpoints and tests.
  Tensor to_f32() const;
  void fill_zero();

  std::string describe() const;  // "F32[4, 8] cpu"

 private:
  std::shared_ptr<Storage> storage_;
  size_t offset_ = 0;
  Shape shape_;
  DType dtype_ = DType::F32;
  Device device_ = Device::CPU;
};

}  // namespace slime
