// The optimizer step on the GPU: AdamW over many tensors in one launch (multi-tensor apply), an optional bf16 copy
// of the updated parameters for the next forward pass, and the gradients' sum of squares for the norm and clipping.
//
// AdamW is train/adamw.h's arithmetic, operation by operation with round-to-nearest intrinsics and no FMA
// contraction, so the fp32 parameters and moments equal the CPU reference (compiled with -ffp-contract=off) bit
// for bit. The sum of squares is accumulated in double in a fixed order (a fixed grid, a fixed tree per block,
// one block for the final sum): the same gradients give the same bits on every run.
#include <cmath>
#include <cstdint>
#include <vector>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/ops.h"

namespace slime::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kChunk = 16 * 1024;  // elements per block of the AdamW launch

struct TensorArgs {
  float* param;
  const float* grad;
  float* exp_avg;
  float* exp_avg_sq;
  __nv_bfloat16* param_bf16;  // may be null
  int64_t n;
  float decay;
};

struct Chunk {
  int tensor;
  int64_t start;
};

struct Scalars {
  float beta1, beta2, one_minus_beta1, one_minus_beta2, eps, lr, beta1_correction, beta2_correction;
};

// One element's update; returns the new parameter and writes the new moments into m, v.
__device__ __forceinline__ float adamw_element(const Scalars& s, float decay, float p, float g, float& m, float& v) {
  m = __fadd_rn(__fmul_rn(s.beta1, m), __fmul_rn(s.one_minus_beta1, g));
  v = __fadd_rn(__fmul_rn(s.beta2, v), __fmul_rn(__fmul_rn(s.one_minus_beta2, g), g));
  const float m_unbiased = __fdiv_rn(m, s.beta1_correction);
  const float v_unbiased = __fdiv_rn(v, s.beta2_correction);
  const float denom = __fadd_rn(__fsqrt_rn(v_unbiased), s.eps);
  const float update = __fadd_rn(__fdiv_rn(m_unbiased, denom), __fmul_rn(decay, p));
  return __fsub_rn(p, __fmul_rn(s.lr, update));
}

// Each block updates one chunk. When the tensor's arrays are 16-byte aligned (the usual case: the registry's
// parameters are multiples of 4 elements), threads move 4 elements per access (float4, and 8 bytes of bf16).
__global__ void adamw_kernel(const TensorArgs* __restrict__ tensors, const Chunk* __restrict__ chunks, Scalars s) {
  const Chunk chunk = chunks[blockIdx.x];
  const TensorArgs t = tensors[chunk.tensor];
  const int64_t end = min(chunk.start + kChunk, t.n);
  int64_t scalar_from = chunk.start;
  const bool vector = is_aligned(t.param, 16) && is_aligned(t.grad, 16) && is_aligned(t.exp_avg, 16) &&
                      is_aligned(t.exp_avg_sq, 16) && is_aligned(t.param_bf16, 8);
  if (vector) {
    const int64_t vector_end = chunk.start + (end - chunk.start) / 4 * 4;
    for (int64_t i = chunk.start + 4 * threadIdx.x; i < vector_end; i += 4 * blockDim.x) {
      const float4 g = *reinterpret_cast<const float4*>(t.grad + i);
      float4 p = *reinterpret_cast<const float4*>(t.param + i);
      float4 m = *reinterpret_cast<const float4*>(t.exp_avg + i);
      float4 v = *reinterpret_cast<const float4*>(t.exp_avg_sq + i);
      p.x = adamw_element(s, t.decay, p.x, g.x, m.x, v.x);
      p.y = adamw_element(s, t.decay, p.y, g.y, m.y, v.y);
      p.z = adamw_element(s, t.decay, p.z, g.z, m.z, v.z);
      p.w = adamw_element(s, t.decay, p.w, g.w, m.w, v.w);
      *reinterpret_cast<float4*>(t.param + i) = p;
      *reinterpret_cast<float4*>(t.exp_avg + i) = m;
      *reinterpret_cast<float4*>(t.exp_avg_sq + i) = v;
      if (t.param_bf16 != nullptr) {
        __nv_bfloat162* out = reinterpret_cast<__nv_bfloat162*>(t.param_bf16 + i);
        out[0] = __floats2bfloat162_rn(p.x, p.y);
        out[1] = __floats2bfloat162_rn(p.z, p.w);
      }
    }
    scalar_from = vector_end;
  }
  for (int64_t i = scalar_from + threadIdx.x; i < end; i += blockDim.x) {
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
                double lr, cudaStream_t stream) {
  SLIME_CHECK(step >= 1, "adamw_step: step counts updates from 1, got ", step);
  if (tensors.empty()) return;
  std::vector<TensorArgs> args;
  std::vector<Chunk> chunks;
  for (size_t k = 0; k < tensors.size(); ++k) {
    const AdamWTensor& t = tensors[k];
    args.push_back(TensorArgs{t.param, t.grad, t.exp_avg, t.exp_avg_sq, static_cast<__nv_bfloat16*>(t.param_bf16),
                              t.n, static_cast<float>(t.weight_decay)});
    for (int64_t start = 0; start < t.n; start += kChunk) chunks.push_back(Chunk{static_cast<int>(k), start});
  }
  if (chunks.empty()) return;
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

  // The tables go to the device with the launch (stream-ordered); freed after the stream has used them.
  TensorArgs* d_args = nullptr;
  Chunk* d_chunks = nullptr;
  cudaCheck(cudaMallocAsync(reinterpret_cast<void**>(&d_args), args.size() * sizeof(TensorArgs), stream));
  cudaCheck(cudaMallocAsync(reinterpret_cast<void**>(&d_chunks), chunks.size() * sizeof(Chunk), stream));
  cudaCheck(cudaMemcpyAsync(d_args, args.data(), args.size() * sizeof(TensorArgs), cudaMemcpyHostToDevice, stream));
  cudaCheck(cudaMemcpyAsync(d_chunks, chunks.data(), chunks.size() * sizeof(Chunk), cudaMemcpyHostToDevice, stream));
  adamw_kernel<<<static_cast<unsigned>(chunks.size()), kThreads, 0, stream>>>(d_args, d_chunks, s);
  cudaCheckLaunch("adamw_kernel");
  cudaCheck(cudaFreeAsync(d_chunks, stream));
  cudaCheck(cudaFreeAsync(d_args, stream));
  // No synchronization: a copy from pageable host memory returns once the host data is staged, so `args` and
  // `chunks` may go now.
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
