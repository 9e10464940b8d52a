// The optimizer step on the GPU: AdamW over many tensors in one launch (multi-tensor apply), an optional bf16 copy
// of the updated parameters for the next forward pass, and the gradients' sum of squares for the norm and clipping.
//
// AdamW is train/adamw.h's arithmetic (after the gradient clipping's scale, folded into the same pass), operation by
// operation with round-to-nearest intrinsics and no FMA contraction, so the fp32 parameters and moments equal the CPU
// reference (compiled with -ffp-contract=off) bit for bit. The sum of squares is accumulated in double in a fixed order
// (a fixed grid, a fixed tree per block, one block for the final sum): the same gradients give the same bits on every
// run.
#include <cmath>
#include <cstdint>
#include <vector>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/ops.h"

namespace slime::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kUnroll = 2;                                 // float4 groups per thread of an AdamW block
constexpr int64_t kBlockElems = 4 * kThreads * kUnroll;  // elements per block of the AdamW launch

struct TensorArgs {
  float* param;
  const float* grad;
  float* exp_avg;
  float* exp_avg_sq;
  __nv_bfloat16* param_bf16;  // may be null
  int64_t n;
  int64_t first_block;  // the tensor's blocks are first_block, first_block + 1, ... (ceil(n / kBlockElems) of them)
  float decay;
};

struct Scalars {
  float beta1, beta2, one_minus_beta1, one_minus_beta2, eps, lr, beta1_correction, beta2_correction, grad_scale;
};

// One element's update; returns the new parameter and writes the new moments into m, v. The gradient is first
// multiplied by grad_scale (the clipping coefficient; 1 leaves it exact), as the CPU path scales it in place.
__device__ __forceinline__ float adamw_element(const Scalars& s, float decay, float p, float g, float& m, float& v) {
  g = __fmul_rn(g, s.grad_scale);
  m = __fadd_rn(__fmul_rn(s.beta1, m), __fmul_rn(s.one_minus_beta1, g));
  v = __fadd_rn(__fmul_rn(s.beta2, v), __fmul_rn(__fmul_rn(s.one_minus_beta2, g), g));
  const float m_unbiased = __fdiv_rn(m, s.beta1_correction);
  const float v_unbiased = __fdiv_rn(v, s.beta2_correction);
  const float denom = __fadd_rn(__fsqrt_rn(v_unbiased), s.eps);
  const float update = __fadd_rn(__fdiv_rn(m_unbiased, denom), __fmul_rn(decay, p));
  return __fsub_rn(p, __fmul_rn(s.lr, update));
}

__device__ __forceinline__ void adamw_float4(const Scalars& s, float decay, float4& p, const float4& g, float4& m,
                                             float4& v) {
  p.x = adamw_element(s, decay, p.x, g.x, m.x, v.x);
  p.y = adamw_element(s, decay, p.y, g.y, m.y, v.y);
  p.z = adamw_element(s, decay, p.z, g.z, m.z, v.z);
  p.w = adamw_element(s, decay, p.w, g.w, m.w, v.w);
}

// Each block updates kBlockElems elements of one tensor (found by binary search over first_block). A whole block of
// a tensor whose arrays are 16-byte aligned (the usual case: the registry's parameters are multiples of 4 elements)
// loads all its float4 groups before computing (kUnroll per thread), with streaming cache hints: every byte is
// touched once. A tensor's last, partial block goes element by element.
__global__ void __launch_bounds__(kThreads) adamw_kernel(const TensorArgs* __restrict__ tensors, int count,
                                                         Scalars s) {
  const int64_t block = blockIdx.x;
  int lo = 0, hi = count - 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (tensors[mid].first_block <= block) lo = mid;
    else hi = mid - 1;
  }
  const TensorArgs t = tensors[lo];
  const int64_t start = (block - t.first_block) * kBlockElems, end = min(start + kBlockElems, t.n);
  const bool vector = end - start == kBlockElems && is_aligned(t.param, 16) && is_aligned(t.grad, 16) &&
                      is_aligned(t.exp_avg, 16) && is_aligned(t.exp_avg_sq, 16) && is_aligned(t.param_bf16, 8);
  if (vector) {
    float4 p[kUnroll], g[kUnroll], m[kUnroll], v[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int64_t i = start + 4 * (threadIdx.x + u * kThreads);
      g[u] = __ldcs(reinterpret_cast<const float4*>(t.grad + i));
      p[u] = __ldcs(reinterpret_cast<const float4*>(t.param + i));
      m[u] = __ldcs(reinterpret_cast<const float4*>(t.exp_avg + i));
      v[u] = __ldcs(reinterpret_cast<const float4*>(t.exp_avg_sq + i));
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int64_t i = start + 4 * (threadIdx.x + u * kThreads);
      adamw_float4(s, t.decay, p[u], g[u], m[u], v[u]);
      __stcs(reinterpret_cast<float4*>(t.param + i), p[u]);
      __stcs(reinterpret_cast<float4*>(t.exp_avg + i), m[u]);
      __stcs(reinterpret_cast<float4*>(t.exp_avg_sq + i), v[u]);
      if (t.param_bf16 != nullptr) {
        __nv_bfloat162 lo2 = __floats2bfloat162_rn(p[u].x, p[u].y), hi2 = __floats2bfloat162_rn(p[u].z, p[u].w);
        __stcs(reinterpret_cast<uint2*>(t.param_bf16 + i),
               make_uint2(*reinterpret_cast<uint32_t*>(&lo2), *reinterpret_cast<uint32_t*>(&hi2)));
      }
    }
    return;
  }
  for (int64_t i = start + threadIdx.x; i < end; i += kThreads) {
    float m = t.exp_avg[i], v = t.exp_avg_sq[i];
    const float updated = adamw_element(s, t.decay, t.param[i], t.grad[i], m, v);
    t.param[i] = updated;
    t.exp_avg[i] = m;
    t.exp_avg_sq[i] = v;
    if (t.param_bf16 != nullptr) t.param_bf16[i] = __float2bfloat16(updated);
  }
}

// Block-wide sum of doubles in a fixed tree (blockDim.x = kThreads, a power of two).
__device__ double block_sum_double(double v) {
  __shared__ double partial[kThreads];
  partial[threadIdx.x] = v;
  __syncthreads();
  for (int stride = kThreads / 2; stride > 0; stride >>= 1) {
    if (threadIdx.x < stride) partial[threadIdx.x] += partial[threadIdx.x + stride];
    __syncthreads();
  }
  return partial[0];
}

constexpr int kSumBlocks = 1024;

__global__ void sum_of_squares_partial(const float* __restrict__ x, int64_t n, double* __restrict__ partial) {
  double acc = 0.0;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const double v = x[i];
    acc += v * v;
  }
  const double total = block_sum_double(acc);
  if (threadIdx.x == 0) partial[blockIdx.x] = total;
}

__global__ void sum_partials(const double* __restrict__ partial, int count, double* __restrict__ out) {
  double acc = 0.0;
  for (int i = threadIdx.x; i < count; i += blockDim.x) acc += partial[i];
  const double total = block_sum_double(acc);
  if (threadIdx.x == 0) *out += total;  // accumulates over calls (several spans)
}

}  // namespace

void adamw_step(const std::vector<AdamWTensor>& tensors, int64_t step, double beta1, double beta2, double eps,
                double lr, cudaStream_t stream, float grad_scale) {
  SLIME_CHECK(step >= 1, "adamw_step: step counts updates from 1, got ", step);
  std::vector<TensorArgs> args;
  int64_t blocks = 0;
  for (const AdamWTensor& t : tensors) {
    if (t.n == 0) continue;
    args.push_back(TensorArgs{t.param, t.grad, t.exp_avg, t.exp_avg_sq, static_cast<__nv_bfloat16*>(t.param_bf16),
                              t.n, blocks, static_cast<float>(t.weight_decay)});
    blocks += (t.n + kBlockElems - 1) / kBlockElems;
  }
  if (args.empty()) return;
  SLIME_CHECK(blocks < (int64_t{1} << 31), "adamw_step: ", blocks, " blocks exceed one launch");
  // The scalars exactly as train::adamw_step forms them (fp32 arguments, bias corrections from a double pow).
  Scalars s;
  s.beta1 = static_cast<float>(beta1);
  s.beta2 = static_cast<float>(beta2);
  s.eps = static_cast<float>(eps);
  s.lr = static_cast<float>(lr);
  s.one_minus_beta1 = 1.0f - s.beta1;
  s.one_minus_beta2 = 1.0f - s.beta2;
  s.beta1_correction = static_cast<float>(1.0 - std::pow(static_cast<double>(s.beta1), step));
  s.beta2_correction = static_cast<float>(1.0 - std::pow(static_cast<double>(s.beta2), step));
  s.grad_scale = grad_scale;

  // The table goes to the device with the launch (stream-ordered); freed after the stream has used it.
  TensorArgs* d_args = nullptr;
  cudaCheck(cudaMallocAsync(reinterpret_cast<void**>(&d_args), args.size() * sizeof(TensorArgs), stream));
  cudaCheck(cudaMemcpyAsync(d_args, args.data(), args.size() * sizeof(TensorArgs), cudaMemcpyHostToDevice, stream));
  adamw_kernel<<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(d_args, static_cast<int>(args.size()), s);
  cudaCheckLaunch("adamw_kernel");
  cudaCheck(cudaFreeAsync(d_args, stream));
  // No synchronization: a copy from pageable host memory returns once the host data is staged, so `args` may go
  // now.
}

void sum_of_squares_accumulate(const float* x, int64_t n, double* total, cudaStream_t stream) {
  if (n == 0) return;
  double* partial = nullptr;
  cudaCheck(cudaMallocAsync(reinterpret_cast<void**>(&partial), kSumBlocks * sizeof(double), stream));
  sum_of_squares_partial<<<kSumBlocks, kThreads, 0, stream>>>(x, n, partial);
  cudaCheckLaunch("sum_of_squares_partial");
  sum_partials<<<1, kThreads, 0, stream>>>(partial, kSumBlocks, total);
  cudaCheckLaunch("sum_partials");
  cudaCheck(cudaFreeAsync(partial, stream));
}

}  // namespace slime::cuda
