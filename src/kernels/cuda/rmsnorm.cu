// RMSNorm forward and backward on the GPU. One block per row; fp32 statistics whatever the activation type.
// The weight gradient is a column reduction in two passes (row chunks, then the chunks) in a fixed order, so it is
// deterministic (no atomics).
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/ops.h"

namespace slime::cuda {
namespace {

constexpr int kThreads = 256;

template <class T>
__global__ void rmsnorm_forward_kernel(const T* __restrict__ x, const float* __restrict__ weight, float eps,
                                       T* __restrict__ y, float* __restrict__ rstd, int64_t n) {
  const int64_t row = blockIdx.x;
  const T* xr = x + row * n;
  T* yr = y + row * n;
  float sum_sq = 0.0f;
  for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
    float v = to_float(xr[j]);
    sum_sq += v * v;
  }
  const float inv = rsqrtf(block_sum(sum_sq) / static_cast<float>(n) + eps);
  if (threadIdx.x == 0) rstd[row] = inv;
  for (int64_t j = threadIdx.x; j < n; j += blockDim.x) yr[j] = from_float<T>(weight[j] * (to_float(xr[j]) * inv));
}

template <class T>
__global__ void rmsnorm_backward_dx_kernel(const T* __restrict__ x, const float* __restrict__ weight,
                                           const float* __restrict__ rstd, const T* __restrict__ dy,
                                           T* __restrict__ dx, int64_t n) {
  const int64_t row = blockIdx.x;
  const T* xr = x + row * n;
  const T* dyr = dy + row * n;
  float dot = 0.0f;
  for (int64_t j = threadIdx.x; j < n; j += blockDim.x) dot += weight[j] * to_float(dyr[j]) * to_float(xr[j]);
  dot = block_sum(dot);
  const float inv = rstd[row];
  const float coef = dot * inv * inv * inv / static_cast<float>(n);
  for (int64_t j = threadIdx.x; j < n; j += blockDim.x)
    dx[row * n + j] = from_float<T>(inv * weight[j] * to_float(dyr[j]) - coef * to_float(xr[j]));
}

// dweight in two deterministic passes: partial[c, j] sums rows [c * kRowsPerChunk, ...) of column j (row order),
// then every column adds its chunk partials in chunk order. Many blocks share the rows, so the pass is bandwidth-
// bound rather than one serial loop over all rows per column.
constexpr int64_t kRowsPerChunk = 64;

template <class T>
__global__ void rmsnorm_backward_dweight_partial(const T* __restrict__ x, const float* __restrict__ rstd,
                                                 const T* __restrict__ dy, float* __restrict__ partial, int64_t rows,
                                                 int64_t n) {
  const int64_t j = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j >= n) return;
  const int64_t r0 = static_cast<int64_t>(blockIdx.y) * kRowsPerChunk;
  const int64_t r1 = r0 + kRowsPerChunk < rows ? r0 + kRowsPerChunk : rows;
  float acc = 0.0f;
#pragma unroll 8
  for (int64_t r = r0; r < r1; ++r) acc += to_float(dy[r * n + j]) * to_float(x[r * n + j]) * rstd[r];
  partial[blockIdx.y * n + j] = acc;
}

__global__ void rmsnorm_backward_dweight_reduce(const float* __restrict__ partial, int64_t chunks, int64_t n,
                                                float* __restrict__ dweight) {
  const int64_t j = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j >= n) return;
  float acc = 0.0f;
  for (int64_t c = 0; c < chunks; ++c) acc += partial[c * n + j];
  dweight[j] += acc;
}

template <class T>
void forward(const void* x, const float* weight, float eps, void* y, float* rstd, int64_t rows, int64_t n,
             cudaStream_t stream) {
  if (rows == 0) return;
  rmsnorm_forward_kernel<T><<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(
      static_cast<const T*>(x), weight, eps, static_cast<T*>(y), rstd, n);
  cudaCheckLaunch("rmsnorm_forward_kernel");
}

template <class T>
void backward(const void* x, const float* weight, const float* rstd, const void* dy, void* dx, float* dweight,
              int64_t rows, int64_t n, cudaStream_t stream) {
  if (rows == 0) return;
  rmsnorm_backward_dx_kernel<T><<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(
      static_cast<const T*>(x), weight, rstd, static_cast<const T*>(dy), static_cast<T*>(dx), n);
  cudaCheckLaunch("rmsnorm_backward_dx_kernel");
  if (dweight) {
    const int64_t chunks = (rows + kRowsPerChunk - 1) / kRowsPerChunk;
    const unsigned column_blocks = static_cast<unsigned>((n + kThreads - 1) / kThreads);
    float* partial = nullptr;  // stream-ordered scratch from the device's memory pool
    cudaCheck(cudaMallocAsync(reinterpret_cast<void**>(&partial), chunks * n * sizeof(float), stream));
    rmsnorm_backward_dweight_partial<T><<<dim3(column_blocks, static_cast<unsigned>(chunks)), kThreads, 0, stream>>>(
        static_cast<const T*>(x), rstd, static_cast<const T*>(dy), partial, rows, n);
    cudaCheckLaunch("rmsnorm_backward_dweight_partial");
    rmsnorm_backward_dweight_reduce<<<column_blocks, kThreads, 0, stream>>>(partial, chunks, n, dweight);
    cudaCheckLaunch("rmsnorm_backward_dweight_reduce");
    cudaCheck(cudaFreeAsync(partial, stream));
  }
}

}  // namespace

// ----------------------------------------------------------------------------------------------------------------
// launchers

void rmsnorm_forward(Precision precision, const void* x, const float* weight, float eps, void* y, float* rstd,
                     int64_t rows, int64_t n, cudaStream_t stream) {
  SLIME_CHECK(rows >= 0 && n > 0, "rmsnorm_forward: bad shape [", rows, ", ", n, "]");
  if (precision == Precision::F32) forward<float>(x, weight, eps, y, rstd, rows, n, stream);
  else forward<__nv_bfloat16>(x, weight, eps, y, rstd, rows, n, stream);
}

void rmsnorm_backward(Precision precision, const void* x, const float* weight, const float* rstd, const void* dy,
                      void* dx, float* dweight, int64_t rows, int64_t n, cudaStream_t stream) {
  SLIME_CHECK(rows >= 0 && n > 0, "rmsnorm_backward: bad shape [", rows, ", ", n, "]");
  if (precision == Precision::F32) backward<float>(x, weight, rstd, dy, dx, dweight, rows, n, stream);
  else backward<__nv_bfloat16>(x, weight, rstd, dy, dx, dweight, rows, n, stream);
}

}  // namespace slime::cuda
