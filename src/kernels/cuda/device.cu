#include "kernels/cuda/device.h"

#include <cstdint>

#include "core/tensor.h"
#include "kernels/cuda/common.cuh"

namespace slime::cuda {

int device_count() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no device" error
    return 0;
  }
  return count;
}

void init_device(int device) {
  const int count = device_count();
  SLIME_CHECK(count > 0, "no CUDA device visible (cudaGetDeviceCount found none)");
  SLIME_CHECK(device >= 0 && device < count, "CUDA device ", device, " requested, ", count, " visible");
  cudaCheck(cudaSetDevice(device));
  // Stream-ordered scratch (cudaMallocAsync in the ops) stays in the pool across synchronisations instead of going
  // back to the driver at each one, so steady-state steps do not map memory.
  cudaMemPool_t pool;
  cudaCheck(cudaDeviceGetDefaultMemPool(&pool, device));
  uint64_t threshold = UINT64_MAX;
  cudaCheck(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &threshold));
  register_device_allocator(Device::CUDA, DeviceAllocator{
                                              [](size_t bytes) {
                                                void* p = nullptr;
                                                cudaCheck(cudaMalloc(&p, bytes));
                                                return p;
                                              },
                                              [](void* p) { cudaFree(p); },
                                              [](void* p, size_t bytes) { cudaCheck(cudaMemset(p, 0, bytes)); },
                                          });
}

std::string device_name(int device) {
  cudaDeviceProp prop{};
  cudaCheck(cudaGetDeviceProperties(&prop, device));
  return prop.name;
}

void synchronize() { cudaCheck(cudaDeviceSynchronize()); }

void copy_to_device(void* dst, const void* src, size_t bytes) {
  cudaCheck(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice));
}

void copy_to_host(void* dst, const void* src, size_t bytes) {
  cudaCheck(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost));
}

void copy_async(void* dst, const void* src, size_t bytes, cudaStream_t stream) {
  cudaCheck(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream));
}

size_t memory_used() {
  size_t free = 0, total = 0;
  cudaCheck(cudaMemGetInfo(&free, &total));
  return total - free;
}

size_t memory_total() {
  size_t free = 0, total = 0;
  cudaCheck(cudaMemGetInfo(&free, &total));
  return total;
}

void fill_bytes(void* dst, int byte, size_t bytes) { cudaCheck(cudaMemset(dst, byte, bytes)); }

}  // namespace slime::cuda
