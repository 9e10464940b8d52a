// Elementwise ops: SwiGLU (forward, backward), rotary position embedding (applied in place, forward or inverse), and
// the small ones of a training step (residual adds, fp32 -> bf16 casts, scaling, random fills). fp32 arithmetic
// whatever the storage precision; the CPU versions (kernels/cpu/swiglu.h, rope.h) are the reference.
#include <algorithm>
#include <cstdint>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/ops.h"

namespace slime::cuda {
namespace {

constexpr int kThreads = 256;

int blocks_for(int64_t n) { return static_cast<int>((n + kThreads - 1) / kThreads); }

// silu(g) * u, and its gradients (dg, du) given d = dloss/dout: the arithmetic every SwiGLU kernel shares.
__device__ __forceinline__ float swiglu_value(float g, float u) {
  const float sig = 1.0f / (1.0f + __expf(-g));
  return g * sig * u;
}
__device__ __forceinline__ void swiglu_grads(float g, float u, float d, float& dg, float& du) {
  const float sig = 1.0f / (1.0f + __expf(-g));
  dg = d * u * sig * (1.0f + g * (1.0f - sig));  // d silu / d g
  du = d * (g * sig);
}

template <class T>
__global__ void swiglu_forward_kernel(const T* __restrict__ gate_up, T* __restrict__ out, int64_t tokens,
                                      int64_t ffn) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= tokens * ffn) return;
  const int64_t t = i / ffn, j = i - t * ffn;
  out[i] = from_float<T>(swiglu_value(to_float(gate_up[t * 2 * ffn + j]), to_float(gate_up[t * 2 * ffn + ffn + j])));
}

template <class T>
__global__ void swiglu_backward_kernel(const T* __restrict__ gate_up, const T* __restrict__ dout,
                                       T* __restrict__ dgate_up, int64_t tokens, int64_t ffn) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= tokens * ffn) return;
  const int64_t t = i / ffn, j = i - t * ffn;
  float dg, du;
  swiglu_grads(to_float(gate_up[t * 2 * ffn + j]), to_float(gate_up[t * 2 * ffn + ffn + j]), to_float(dout[i]), dg,
               du);
  dgate_up[t * 2 * ffn + j] = from_float<T>(dg);
  dgate_up[t * 2 * ffn + ffn + j] = from_float<T>(du);
}

// bf16 with ffn % 8 == 0 (every model we train): 8 elements per thread through 16-byte loads and stores; the
// arithmetic per element is the scalar kernels'.
union Bf16x8 {
  uint4 raw;
  __nv_bfloat16 v[8];
};

__global__ void swiglu_forward_bf16x8(const uint4* __restrict__ gate_up, uint4* __restrict__ out, int64_t tokens,
                                      int64_t ffn8) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= tokens * ffn8) return;
  const int64_t t = i / ffn8, j = i - t * ffn8;
  Bf16x8 g, u, o;
  g.raw = gate_up[t * 2 * ffn8 + j];
  u.raw = gate_up[t * 2 * ffn8 + ffn8 + j];
#pragma unroll
  for (int k = 0; k < 8; ++k) o.v[k] = __float2bfloat16(swiglu_value(__bfloat162float(g.v[k]), __bfloat162float(u.v[k])));
  out[i] = o.raw;
}

__global__ void swiglu_backward_bf16x8(const uint4* __restrict__ gate_up, const uint4* __restrict__ dout,
                                       uint4* __restrict__ dgate_up, int64_t tokens, int64_t ffn8) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= tokens * ffn8) return;
  const int64_t t = i / ffn8, j = i - t * ffn8;
  Bf16x8 g, u, d, dg, du;
  g.raw = gate_up[t * 2 * ffn8 + j];
  u.raw = gate_up[t * 2 * ffn8 + ffn8 + j];
  d.raw = dout[i];
#pragma unroll
  for (int k = 0; k < 8; ++k) {
    float dgk, duk;
    swiglu_grads(__bfloat162float(g.v[k]), __bfloat162float(u.v[k]), __bfloat162float(d.v[k]), dgk, duk);
    dg.v[k] = __float2bfloat16(dgk);
    du.v[k] = __float2bfloat16(duk);
  }
  dgate_up[t * 2 * ffn8 + j] = dg.raw;
  dgate_up[t * 2 * ffn8 + ffn8 + j] = du.raw;
}

__global__ void gather_rows_kernel(const float* __restrict__ table, const int* __restrict__ rows, int64_t n,
                                   int64_t width, float* __restrict__ out) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n * width) return;
  const int64_t r = i / width;
  out[i] = table[static_cast<int64_t>(rows[r]) * width + (i - r * width)];
}

// x [heads, tokens, head_dim]: one thread per (head, token, i < half) rotates the pair (i, i + half).
template <class T>
__global__ void rope_kernel(T* __restrict__ x, const float* __restrict__ cos, const float* __restrict__ sin,
                            int64_t heads, int64_t tokens, int64_t head_dim, float sign) {
  const int64_t half = head_dim / 2;
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= heads * tokens * half) return;
  const int64_t k = i % half, row = i / half, t = row % tokens;
  T* v = x + row * head_dim;
  const float c = cos[t * half + k], s = sign * sin[t * half + k];
  const float x1 = to_float(v[k]), x2 = to_float(v[k + half]);
  v[k] = from_float<T>(x1 * c - x2 * s);
  v[k + half] = from_float<T>(x2 * c + x1 * s);
}

template <class T>
__global__ void add_kernel(T* __restrict__ y, const T* __restrict__ x, int64_t n) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    y[i] = from_float<T>(to_float(y[i]) + to_float(x[i]));
}

template <class T>
__global__ void cast_kernel(const float* __restrict__ x, T* __restrict__ y, int64_t n) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    y[i] = from_float<T>(x[i]);
}

__global__ void scale_kernel(float* __restrict__ x, float scale, int64_t n) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    x[i] *= scale;
}

__device__ __forceinline__ uint64_t splitmix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// x[i] = mean + stddev * N(0, 1) from a counter-based hash of (seed, i) (Box-Muller); stddev 0 gives the constant.
__global__ void fill_normal_kernel(float* __restrict__ x, int64_t n, uint64_t seed, float mean, float stddev) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    if (stddev == 0.0f) {
      x[i] = mean;
      continue;
    }
    const uint64_t r = splitmix64(seed ^ splitmix64(static_cast<uint64_t>(i)));
    const float u1 = (static_cast<float>(r >> 40) + 1.0f) * (1.0f / 16777217.0f);  // (0, 1]
    const float u2 = static_cast<float>(r & 0xffffff) * (1.0f / 16777216.0f);
    x[i] = mean + stddev * sqrtf(-2.0f * logf(u1)) * cospif(2.0f * u2);
  }
}

int grid_stride_blocks(int64_t n) { return static_cast<int>(std::min<int64_t>((n + kThreads - 1) / kThreads, 65536)); }

}  // namespace

void add_inplace(Precision precision, void* y, const void* x, int64_t n, cudaStream_t stream) {
  if (n == 0) return;
  if (precision == Precision::BF16)
    add_kernel<<<grid_stride_blocks(n), kThreads, 0, stream>>>(static_cast<__nv_bfloat16*>(y),
                                                               static_cast<const __nv_bfloat16*>(x), n);
  else
    add_kernel<<<grid_stride_blocks(n), kThreads, 0, stream>>>(static_cast<float*>(y), static_cast<const float*>(x),
                                                               n);
  cudaCheckLaunch("add_inplace");
}

void cast_from_f32(Precision out, const float* x, void* y, int64_t n, cudaStream_t stream) {
  if (n == 0) return;
  if (out == Precision::BF16)
    cast_kernel<<<grid_stride_blocks(n), kThreads, 0, stream>>>(x, static_cast<__nv_bfloat16*>(y), n);
  else
    cast_kernel<<<grid_stride_blocks(n), kThreads, 0, stream>>>(x, static_cast<float*>(y), n);
  cudaCheckLaunch("cast_from_f32");
}

void scale_inplace(float* x, float scale, int64_t n, cudaStream_t stream) {
  if (n == 0) return;
  scale_kernel<<<grid_stride_blocks(n), kThreads, 0, stream>>>(x, scale, n);
  cudaCheckLaunch("scale_inplace");
}

void gather_rows(const float* table, const int* rows, int64_t n, int64_t width, float* out, cudaStream_t stream) {
  if (n * width == 0) return;
  gather_rows_kernel<<<blocks_for(n * width), kThreads, 0, stream>>>(table, rows, n, width, out);
  cudaCheckLaunch("gather_rows");
}

void fill_normal(float* x, int64_t n, uint64_t seed, float mean, float stddev, cudaStream_t stream) {
  if (n == 0) return;
  fill_normal_kernel<<<grid_stride_blocks(n), kThreads, 0, stream>>>(x, n, seed, mean, stddev);
  cudaCheckLaunch("fill_normal");
}

void swiglu_forward(Precision precision, const void* gate_up, void* out, int64_t tokens, int64_t ffn,
                    cudaStream_t stream) {
  if (tokens * ffn == 0) return;
  if (precision == Precision::BF16 && ffn % 8 == 0 && is_aligned(gate_up, 16) && is_aligned(out, 16)) {
    swiglu_forward_bf16x8<<<blocks_for(tokens * ffn / 8), kThreads, 0, stream>>>(
        static_cast<const uint4*>(gate_up), static_cast<uint4*>(out), tokens, ffn / 8);
  } else if (precision == Precision::BF16)
    swiglu_forward_kernel<<<blocks_for(tokens * ffn), kThreads, 0, stream>>>(
        static_cast<const __nv_bfloat16*>(gate_up), static_cast<__nv_bfloat16*>(out), tokens, ffn);
  else
    swiglu_forward_kernel<<<blocks_for(tokens * ffn), kThreads, 0, stream>>>(static_cast<const float*>(gate_up),
                                                                             static_cast<float*>(out), tokens, ffn);
  cudaCheckLaunch("swiglu_forward");
}

void swiglu_backward(Precision precision, const void* gate_up, const void* dout, void* dgate_up, int64_t tokens,
                     int64_t ffn, cudaStream_t stream) {
  if (tokens * ffn == 0) return;
  if (precision == Precision::BF16 && ffn % 8 == 0 && is_aligned(gate_up, 16) && is_aligned(dout, 16) &&
      is_aligned(dgate_up, 16)) {
    swiglu_backward_bf16x8<<<blocks_for(tokens * ffn / 8), kThreads, 0, stream>>>(
        static_cast<const uint4*>(gate_up), static_cast<const uint4*>(dout), static_cast<uint4*>(dgate_up), tokens,
        ffn / 8);
  } else if (precision == Precision::BF16)
    swiglu_backward_kernel<<<blocks_for(tokens * ffn), kThreads, 0, stream>>>(
        static_cast<const __nv_bfloat16*>(gate_up), static_cast<const __nv_bfloat16*>(dout),
        static_cast<__nv_bfloat16*>(dgate_up), tokens, ffn);
  else
    swiglu_backward_kernel<<<blocks_for(tokens * ffn), kThreads, 0, stream>>>(
        static_cast<const float*>(gate_up), static_cast<const float*>(dout), static_cast<float*>(dgate_up), tokens,
        ffn);
  cudaCheckLaunch("swiglu_backward");
}

void rope_apply(Precision precision, void* x, const float* cos, const float* sin, int64_t heads, int64_t tokens,
                int64_t head_dim, bool inverse, cudaStream_t stream) {
  SLIME_CHECK(head_dim % 2 == 0, "rope_apply: head_dim ", head_dim, " is odd");
  const int64_t n = heads * tokens * (head_dim / 2);
  if (n == 0) return;
  const float sign = inverse ? -1.0f : 1.0f;
  if (precision == Precision::BF16)
    rope_kernel<<<blocks_for(n), kThreads, 0, stream>>>(static_cast<__nv_bfloat16*>(x), cos, sin, heads, tokens,
                                                        head_dim, sign);
  else
    rope_kernel<<<blocks_for(n), kThreads, 0, stream>>>(static_cast<float*>(x), cos, sin, heads, tokens, head_dim,
                                                        sign);
  cudaCheckLaunch("rope_apply");
}

}  // namespace slime::cuda
