#include "core/tensor.h"

#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <vector>

namespace slime {
namespace {

std::mutex g_alloc_mutex;
std::map<Device, DeviceAllocator>& allocators() {
  static std::map<Device, DeviceAllocator> table;
  return table;
}

// Large host blocks are cached by size instead of returned to the OS: a training step allocates the same
// activation shapes every time, and fresh mmap'd memory costs a page fault per 4 KiB on first touch (measured:
// the LM-head GEMM ran at a third of its speed writing into new memory). Small blocks go to malloc directly.
class HostBlockCache {
 public:
  static constexpr size_t kMinCached = size_t{256} << 10;
  static constexpr size_t kMaxCachedBytes = size_t{8} << 30;

  void* take(size_t bytes) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = free_.find(bytes);
    if (it == free_.end() || it->second.empty()) return nullptr;
    void* p = it->second.back();
    it->second.pop_back();
    cached_bytes_ -= bytes;
    return p;
  }
  // Keeps the block for reuse, or frees it when the cache is full.
  void give(void* p, size_t bytes) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (cached_bytes_ + bytes <= kMaxCachedBytes) {
        free_[bytes].push_back(p);
        cached_bytes_ += bytes;
        return;
      }
    }
    std::free(p);
  }

 private:
  std::mutex mutex_;
  std::map<size_t, std::vector<void*>> free_;
  size_t cached_bytes_ = 0;
};

HostBlockCache& host_cache() {
  static HostBlockCache* cache = new HostBlockCache;  // never destroyed: tensors may outlive static destructors
  return *cache;
}

void* allocate_host(size_t bytes, std::function<void(void*)>* release) {
  if (bytes < HostBlockCache::kMinCached) {
    size_t rounded = (bytes + 63) / 64 * 64;
    void* p = std::aligned_alloc(64, rounded);
    *release = [](void* q) { std::free(q); };
    return p;
  }
  size_t rounded = (bytes + 4095) / 4096 * 4096;
  void* p = host_cache().take(rounded);
  if (!p) p = std::aligned_alloc(4096, rounded);
  *release = [rounded](void* q) { host_cache().give(q, rounded); };
  return p;
}

std::shared_ptr<Storage> allocate(size_t nbytes, Device device) {
  auto storage = std::make_shared<Storage>();
  storage->nbytes = nbytes;
  storage->device = device;
  size_t request = nbytes == 0 ? 64 : nbytes;
  if (device == Device::CPU) {
    storage->data = allocate_host(request, &storage->release);
    SLIME_CHECK(storage->data, "out of host memory allocating ", nbytes, " bytes");
  } else {
    DeviceAllocator allocator;
    {
      std::lock_guard<std::mutex> lock(g_alloc_mutex);
      auto it = allocators().find(device);
      SLIME_CHECK(it != allocators().end(), "no allocator registered for the GPU: was slime-hpc built with CUDA?");
      allocator = it->second;
    }
    storage->data = allocator.allocate(request);
    storage->release = allocator.release;
  }
  return storage;
}

}  // namespace

std::string shape_str(const Shape& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

int64_t shape_numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

Storage::~Storage() {
  if (data && release) release(data);
}

void register_device_allocator(Device device, DeviceAllocator allocator) {
  std::lock_guard<std::mutex> lock(g_alloc_mutex);
  allocators()[device] = std::move(allocator);
}

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  for (int64_t d : shape) SLIME_ASSERT(d >= 0, "negative dimension in ", shape_str(shape));
  Tensor t;
  t.shape_ = shape;
  t.dtype_ = dtype;
  t.device_ = device;
  t.storage_ = allocate(t.nbytes(), device);
  return t;
}

Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  t.fill_zero();
  return t;
}

Tensor Tensor::wrap(void* data, const Shape& shape, DType dtype, Device device) {
  Tensor t;
  t.shape_ = shape;
  t.dtype_ = dtype;
  t.device_ = device;
  t.storage_ = std::make_shared<Storage>();
  t.storage_->data = data;
  t.storage_->nbytes = t.nbytes();
  t.storage_->device = device;
  return t;
}

Tensor Tensor::from_vector(const std::vector<float>& values, const Shape& shape) {
  SLIME_ASSERT(static_cast<int64_t>(values.size()) == shape_numel(shape), "from_vector: ", values.size(),
               " values for shape ", shape_str(shape));
  Tensor t = empty(shape, DType::F32);
  std::memcpy(t.raw(), values.data(), t.nbytes());
  return t;
}

Tensor Tensor::from_vector(const std::vector<int64_t>& values, const Shape& shape) {
  SLIME_ASSERT(static_cast<int64_t>(values.size()) == shape_numel(shape), "from_vector: ", values.size(),
               " values for shape ", shape_str(shape));
  Tensor t = empty(shape, DType::I64);
  std::memcpy(t.raw(), values.data(), t.nbytes());
  return t;
}

int64_t Tensor::dim(int i) const {
  int n = ndim();
  if (i < 0) i += n;
  SLIME_ASSERT(i >= 0 && i < n, "dim ", i, " of a ", n, "-d tensor");
  return shape_[i];
}

Tensor Tensor::reshape(const Shape& shape) const {
  Shape resolved = shape;
  int infer = -1;
  int64_t known = 1;
  for (size_t i = 0; i < resolved.size(); ++i) {
    if (resolved[i] == -1) {
      SLIME_ASSERT(infer < 0, "reshape: two -1 dimensions");
      infer = static_cast<int>(i);
    } else {
      known *= resolved[i];
    }
  }
  if (infer >= 0) resolved[infer] = known == 0 ? 0 : numel() / known;
  SLIME_ASSERT(shape_numel(resolved) == numel(), "reshape ", shape_str(shape_), " -> ", shape_str(shape));
  Tensor t = *this;
  t.shape_ = resolved;
  return t;
}

Tensor Tensor::slice_rows(int64_t begin, int64_t end) const {
  SLIME_ASSERT(ndim() >= 1 && begin >= 0 && begin <= end && end <= shape_[0], "slice_rows [", begin, ", ", end,
               ") of ", shape_str(shape_));
  int64_t row = numel() / (shape_[0] ? shape_[0] : 1);
  Tensor t = *this;
  t.shape_[0] = end - begin;
  t.offset_ += static_cast<size_t>(begin * row) * dtype_size(dtype_);
  return t;
}

Tensor Tensor::clone() const {
  SLIME_ASSERT(device_ == Device::CPU, "clone of a GPU tensor goes through the CUDA backend");
  Tensor t = empty(shape_, dtype_, device_);
  std::memcpy(t.raw(), raw(), nbytes());
  return t;
}

Tensor Tensor::to_f32() const {
  SLIME_ASSERT(device_ == Device::CPU, "to_f32 works on host tensors");
  Tensor out = empty(shape_, DType::F32);
  float* dst = out.data<float>();
  int64_t n = numel();
  switch (dtype_) {
    case DType::F32: std::memcpy(dst, raw(), nbytes()); break;
    case DType::F64: {
      const double* src = static_cast<const double*>(raw());
      for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<float>(src[i]);
      break;
    }
    case DType::BF16: {
      const uint16_t* src = static_cast<const uint16_t*>(raw());
      for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(src[i]);
      break;
    }
    case DType::F16: {
      const uint16_t* src = static_cast<const uint16_t*>(raw());
      for (int64_t i = 0; i < n; ++i) dst[i] = f16_to_f32(src[i]);
      break;
    }
    default: SLIME_FAIL("cannot convert a ", dtype_name(dtype_), " tensor to F32");
  }
  return out;
}

void Tensor::fill_zero() {
  if (device_ == Device::CPU) {
    std::memset(raw(), 0, nbytes());
    return;
  }
  DeviceAllocator allocator;
  {
    std::lock_guard<std::mutex> lock(g_alloc_mutex);
    auto it = allocators().find(device_);
    SLIME_CHECK(it != allocators().end() && it->second.zero, "no allocator registered for the GPU");
    allocator = it->second;
  }
  allocator.zero(raw(), nbytes());
}

std::string Tensor::describe() const {
  return cat(dtype_name(dtype_), shape_str(shape_), device_ == Device::CPU ? " cpu" : " cuda");
}

}  // namespace slime
