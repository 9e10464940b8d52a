#include "kernels/cuda/device.h"

#include <algorithm>
#include <cstdio>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <string>
#include <utility>
#include <vector>

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

int init_local_device() {
  const int count = device_count();
  SLIME_CHECK(count > 0, "no CUDA GPU is visible to this process");
  int local_rank = 0;
  for (const char* name : {"OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID", "MPI_LOCALRANKID"}) {
    if (const char* v = std::getenv(name)) {
      local_rank = std::atoi(v);
      break;
    }
  }
  init_device(local_rank % count);
  return local_rank % count;
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

bool pin_host_memory(void* host, size_t bytes) {
  if (cudaHostRegister(host, bytes, cudaHostRegisterDefault) == cudaSuccess) return true;
  cudaGetLastError();  // a refused registration only costs speed
  return false;
}

void unpin_host_memory(void* host) {
  if (cudaHostUnregister(host) != cudaSuccess) cudaGetLastError();
}

void copy_async(void* dst, const void* src, size_t bytes, cudaStream_t stream) {
  cudaCheck(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream));
}

void copy_2d_async(void* dst, size_t dst_pitch, const void* src, size_t src_pitch, size_t width_bytes, size_t height,
                   cudaStream_t stream) {
  cudaCheck(cudaMemcpy2DAsync(dst, dst_pitch, src, src_pitch, width_bytes, height, cudaMemcpyDeviceToDevice, stream));
}

size_t memory_used() {
  size_t free = 0, total = 0;
  cudaCheck(cudaMemGetInfo(&free, &total));
  return total - free;
}

void fill_bytes(void* dst, int byte, size_t bytes) { cudaCheck(cudaMemset(dst, byte, bytes)); }

namespace {

struct Profile {
  std::vector<cudaEvent_t> pool;                         // reused across reports
  std::vector<std::pair<const char*, size_t>> marks;     // (section, event index)
};

Profile& profile() {
  static Profile p;
  return p;
}

}  // namespace

bool profile_enabled() {
  static const bool enabled = [] {
    const char* v = std::getenv("SLIME_CUDA_PROFILE");
    return v != nullptr && std::string(v) != "0";
  }();
  return enabled;
}

void profile_mark(const char* name) {
  if (!profile_enabled()) return;
  Profile& p = profile();
  const size_t i = p.marks.size();
  if (i == p.pool.size()) {
    cudaEvent_t e;
    cudaCheck(cudaEventCreate(&e));
    p.pool.push_back(e);
  }
  cudaCheck(cudaEventRecord(p.pool[i], nullptr));
  p.marks.emplace_back(name, i);
}

void profile_reset() { profile().marks.clear(); }

void profile_report(const char* title) {
  if (!profile_enabled()) return;
  Profile& p = profile();
  cudaCheck(cudaDeviceSynchronize());
  std::map<std::string, double> ms;
  double total = 0;
  for (size_t k = 1; k < p.marks.size(); ++k) {
    float e = 0;
    cudaCheck(cudaEventElapsedTime(&e, p.pool[p.marks[k - 1].second], p.pool[p.marks[k].second]));
    ms[p.marks[k].first] += e;
    total += e;
  }
  std::vector<std::pair<double, std::string>> rows;
  for (const auto& [name, t] : ms) rows.emplace_back(t, name);
  std::sort(rows.rbegin(), rows.rend());
  std::printf("profile %s: %.2f ms of GPU time between the first and last mark\n", title, total);
  for (const auto& [t, name] : rows) std::printf("  %-28s %8.2f ms %5.1f%%\n", name.c_str(), t, 100.0 * t / total);
  p.marks.clear();
}

}  // namespace slime::cuda
