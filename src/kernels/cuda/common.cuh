// Shared CUDA helpers: checked calls that name the failing call, warp reductions, bf16 conversions.
#pragma once

#include <cuda_bf16.h>
#include <cstddef>
#include <cstdint>
#include <cuda_runtime.h>

#include "core/error.h"

#define cudaCheck(call)                                                                                    \
  do {                                                                                                     \
    cudaError_t err_ = (call);                                                                             \
    if (err_ != cudaSuccess)                                                                               \
      ::slime::throw_error(::slime::cat("CUDA error in ", #call, " at ", __FILE__, ":", __LINE__, ": ",  \
                                        cudaGetErrorString(err_)));                                        \
  } while (0)

// After a launch: catches bad launch configurations immediately.
#define cudaCheckLaunch(name) cudaCheck(cudaGetLastError())

namespace slime::cuda {

// Whether p is a multiple of `bytes` (a power of two); null counts as aligned. For choosing vectorised paths.
__host__ __device__ __forceinline__ bool is_aligned(const void* p, size_t bytes) {
  return (reinterpret_cast<uintptr_t>(p) & (bytes - 1)) == 0;
}

__device__ __forceinline__ float warp_sum(float v) {
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

// Sum over a block of blockDim.x threads (a multiple of 32, at most 1024); every thread gets the result.
__device__ __forceinline__ float block_sum(float v) {
  __shared__ float partial[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  v = warp_sum(v);
  __syncthreads();  // partial[] may still be read by a previous call
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  const int warps = blockDim.x >> 5;
  float total = lane < warps ? partial[lane] : 0.0f;
  return warp_sum(total);
}

template <class T> __device__ __forceinline__ float to_float(T v);
template <> __device__ __forceinline__ float to_float<float>(float v) { return v; }
template <> __device__ __forceinline__ float to_float<__nv_bfloat16>(__nv_bfloat16 v) { return __bfloat162float(v); }
template <class T> __device__ __forceinline__ T from_float(float v);
template <> __device__ __forceinline__ float from_float<float>(float v) { return v; }
template <> __device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float v) { return __float2bfloat16(v); }

}  // namespace slime::cuda
