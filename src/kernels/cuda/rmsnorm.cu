// RMSNorm forward and backward on the GPU; fp32 statistics whatever the activation type. The weight gradient is a
// column reduction in two passes (row chunks, then the chunks) in a fixed order, so it is deterministic (no atomics).
//
// Rows of up to 8192 bf16 (4096 fp32) elements in multiples of 16 bytes take the vector kernels: each thread holds
// 16 bytes of a row in registers, so x and dy are read once. The backward is one pass over a chunk of
// kVecRowsPerChunk rows per block: per row the dot product (a block reduction), dx (plus an optional residual gradient, saving the
// separate add) and this thread's columns' weight-gradient partials, written per chunk at the end. Other shapes
// take the scalar kernels (a block per row; a column pass for the weight gradient).
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

// 16 bytes of T as floats, and back.
template <class T>
constexpr int kVec = 16 / static_cast<int>(sizeof(T));
template <class T>
__device__ __forceinline__ void load_vec(const T* p, float (&v)[kVec<T>]) {
  const uint4 raw = *reinterpret_cast<const uint4*>(p);
  const T* e = reinterpret_cast<const T*>(&raw);
#pragma unroll
  for (int i = 0; i < kVec<T>; ++i) v[i] = to_float(e[i]);
}
template <class T>
__device__ __forceinline__ void store_vec(T* p, const float (&v)[kVec<T>]) {
  uint4 raw;
  T* e = reinterpret_cast<T*>(&raw);
#pragma unroll
  for (int i = 0; i < kVec<T>; ++i) e[i] = from_float<T>(v[i]);
  *reinterpret_cast<uint4*>(p) = raw;
}

// Sum over the block (blockDim.x a multiple of 32) in a fixed order, for a loop of reductions: red is [2][32] shared
// floats used alternately by consecutive calls (parity), so one barrier per call suffices (common.cuh's block_sum
// takes two).
__device__ __forceinline__ float block_sum_alternating(float v, float (*red)[32], int parity) {
  v = warp_sum(v);
  if ((threadIdx.x & 31) == 0) red[parity][threadIdx.x >> 5] = v;
  __syncthreads();
  float total = 0.0f;
  for (int w = 0; w < static_cast<int>(blockDim.x >> 5); ++w) total += red[parity][w];
  return total;
}

// One row per block; thread t holds columns [t kVec, (t + 1) kVec) (threads past the row hold none).
template <class T>
__global__ void rmsnorm_forward_vec_kernel(const T* __restrict__ x, const float* __restrict__ weight, float eps,
                                           T* __restrict__ y, float* __restrict__ rstd, int64_t n) {
  constexpr int V = kVec<T>;
  const int64_t row = blockIdx.x, c0 = static_cast<int64_t>(threadIdx.x) * V;
  const bool active = c0 < n;
  float xv[V] = {};
  if (active) load_vec(x + row * n + c0, xv);
  float sum_sq = 0.0f;
#pragma unroll
  for (int i = 0; i < V; ++i) sum_sq += xv[i] * xv[i];
  const float inv = rsqrtf(block_sum(sum_sq) / static_cast<float>(n) + eps);
  if (threadIdx.x == 0) rstd[row] = inv;
  if (!active) return;
  float out[V];
#pragma unroll
  for (int i = 0; i < V; ++i) out[i] = weight[c0 + i] * (xv[i] * inv);
  store_vec(y + row * n + c0, out);
}

constexpr int64_t kVecRowsPerChunk = 8;

// Rows [blockIdx.x kVecRowsPerChunk, ...): dx = rstd w dy - (rstd^3 / n) (sum_j w dy x) x (+ residual), and the
// weight-gradient partial of this chunk, partial[blockIdx.x, j] = sum over its rows of dy x rstd (row order).
template <class T>
__global__ void rmsnorm_backward_vec_kernel(const T* __restrict__ x, const float* __restrict__ weight,
                                            const float* __restrict__ rstd, const T* __restrict__ dy,
                                            const T* __restrict__ residual, T* __restrict__ dx,
                                            float* __restrict__ partial, int64_t rows, int64_t n) {
  constexpr int V = kVec<T>;
  __shared__ float red[2][32];
  const int64_t c0 = static_cast<int64_t>(threadIdx.x) * V;
  const bool active = c0 < n;
  float w[V] = {}, dw[V] = {};
  if (active)
#pragma unroll
    for (int i = 0; i < V; ++i) w[i] = weight[c0 + i];
  const int64_t r0 = static_cast<int64_t>(blockIdx.x) * kVecRowsPerChunk;
  const int64_t r1 = r0 + kVecRowsPerChunk < rows ? r0 + kVecRowsPerChunk : rows;
  int parity = 0;
  float next_x[V] = {}, next_dy[V] = {};  // the next row's values, loaded one row ahead
  if (active && r0 < r1) {
    load_vec(x + r0 * n + c0, next_x);
    load_vec(dy + r0 * n + c0, next_dy);
  }
  for (int64_t r = r0; r < r1; ++r, parity ^= 1) {
    float xv[V], dyv[V];
#pragma unroll
    for (int i = 0; i < V; ++i) {
      xv[i] = next_x[i];
      dyv[i] = next_dy[i];
    }
    if (active && r + 1 < r1) {
      load_vec(x + (r + 1) * n + c0, next_x);
      load_vec(dy + (r + 1) * n + c0, next_dy);
    }
    float dot = 0.0f;
#pragma unroll
    for (int i = 0; i < V; ++i) dot += w[i] * dyv[i] * xv[i];
    dot = block_sum_alternating(dot, red, parity);
    const float inv = rstd[r];
    const float coef = dot * inv * inv * inv / static_cast<float>(n);
    if (!active) continue;
    float out[V];
#pragma unroll
    for (int i = 0; i < V; ++i) {
      out[i] = inv * w[i] * dyv[i] - coef * xv[i];
      dw[i] += dyv[i] * xv[i] * inv;
    }
    if (residual != nullptr) {
      float res[V];
      load_vec(residual + r * n + c0, res);
#pragma unroll
      for (int i = 0; i < V; ++i) out[i] += res[i];
    }
    store_vec(dx + r * n + c0, out);
  }
  if (partial != nullptr && active)
#pragma unroll
    for (int i = 0; i < V; ++i) partial[blockIdx.x * n + c0 + i] = dw[i];
}

template <class T>
__global__ void rmsnorm_backward_dx_kernel(const T* __restrict__ x, const float* __restrict__ weight,
                                           const float* __restrict__ rstd, const T* __restrict__ dy,
                                           const T* __restrict__ residual, T* __restrict__ dx, int64_t n) {
  const int64_t row = blockIdx.x;
  const T* xr = x + row * n;
  const T* dyr = dy + row * n;
  float dot = 0.0f;
  for (int64_t j = threadIdx.x; j < n; j += blockDim.x) dot += weight[j] * to_float(dyr[j]) * to_float(xr[j]);
  dot = block_sum(dot);
  const float inv = rstd[row];
  const float coef = dot * inv * inv * inv / static_cast<float>(n);
  for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
    float out = inv * weight[j] * to_float(dyr[j]) - coef * to_float(xr[j]);
    if (residual != nullptr) out += to_float(residual[row * n + j]);
    dx[row * n + j] = from_float<T>(out);
  }
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

// dweight[j] += sum over chunks c of partial[c, j]: a block per 32 columns (lane = column, coalesced), warp w taking
// chunks w, w + 8, ... into four interleaved accumulators (independent loads in flight), then the warps in order.
constexpr int kReduceWarps = 8;
__global__ void __launch_bounds__(kReduceWarps * 32)
    rmsnorm_backward_dweight_reduce(const float* __restrict__ partial, int64_t chunks, int64_t n,
                                    float* __restrict__ dweight) {
  __shared__ float sums[kReduceWarps][32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int64_t j = static_cast<int64_t>(blockIdx.x) * 32 + lane;
  float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  if (j < n) {
    int64_t c = warp;
    for (; c + 3 * kReduceWarps < chunks; c += 4 * kReduceWarps)
#pragma unroll
      for (int k = 0; k < 4; ++k) acc[k] += partial[(c + k * kReduceWarps) * n + j];
    for (int k = 0; c < chunks; c += kReduceWarps, ++k) acc[k] += partial[c * n + j];
  }
  sums[warp][lane] = (acc[0] + acc[1]) + (acc[2] + acc[3]);
  __syncthreads();
  if (warp == 0 && j < n) {
    float total = 0.0f;
    for (int w = 0; w < kReduceWarps; ++w) total += sums[w][lane];
    dweight[j] += total;
  }
}

// Threads of the vector kernels for rows of n elements, or 0 when they do not apply.
template <class T>
int vec_threads(const void* x, const void* y, int64_t n) {
  if (n % kVec<T> != 0 || n / kVec<T> > 1024 || !is_aligned(x, 16) || !is_aligned(y, 16)) return 0;
  return static_cast<int>((n / kVec<T> + 31) / 32 * 32);
}

template <class T>
void forward(const void* x, const float* weight, float eps, void* y, float* rstd, int64_t rows, int64_t n,
             cudaStream_t stream) {
  if (rows == 0) return;
  if (const int threads = vec_threads<T>(x, y, n)) {
    rmsnorm_forward_vec_kernel<T><<<static_cast<unsigned>(rows), threads, 0, stream>>>(
        static_cast<const T*>(x), weight, eps, static_cast<T*>(y), rstd, n);
    cudaCheckLaunch("rmsnorm_forward_vec_kernel");
    return;
  }
  rmsnorm_forward_kernel<T><<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(
      static_cast<const T*>(x), weight, eps, static_cast<T*>(y), rstd, n);
  cudaCheckLaunch("rmsnorm_forward_kernel");
}

template <class T>
void backward(const void* x, const float* weight, const float* rstd, const void* dy, const void* residual, void* dx,
              float* dweight, int64_t rows, int64_t n, cudaStream_t stream) {
  if (rows == 0) return;
  const unsigned column_blocks = static_cast<unsigned>((n + kThreads - 1) / kThreads);
  const int threads = is_aligned(dy, 16) && is_aligned(residual, 16) ? vec_threads<T>(x, dx, n) : 0;
  const int64_t chunks = (rows + (threads ? kVecRowsPerChunk : kRowsPerChunk) - 1) /
                         (threads ? kVecRowsPerChunk : kRowsPerChunk);
  float* partial = nullptr;  // stream-ordered scratch from the device's memory pool
  if (dweight) cudaCheck(cudaMallocAsync(reinterpret_cast<void**>(&partial), chunks * n * sizeof(float), stream));
  if (threads) {
    rmsnorm_backward_vec_kernel<T><<<static_cast<unsigned>(chunks), threads, 0, stream>>>(
        static_cast<const T*>(x), weight, rstd, static_cast<const T*>(dy), static_cast<const T*>(residual),
        static_cast<T*>(dx), partial, rows, n);
    cudaCheckLaunch("rmsnorm_backward_vec_kernel");
  } else {
    rmsnorm_backward_dx_kernel<T><<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(
        static_cast<const T*>(x), weight, rstd, static_cast<const T*>(dy), static_cast<const T*>(residual),
        static_cast<T*>(dx), n);
    cudaCheckLaunch("rmsnorm_backward_dx_kernel");
    if (dweight) {
      rmsnorm_backward_dweight_partial<T><<<dim3(column_blocks, static_cast<unsigned>(chunks)), kThreads, 0,
                                            stream>>>(static_cast<const T*>(x), rstd, static_cast<const T*>(dy),
                                                      partial, rows, n);
      cudaCheckLaunch("rmsnorm_backward_dweight_partial");
    }
  }
  if (dweight) {
    rmsnorm_backward_dweight_reduce<<<static_cast<unsigned>((n + 31) / 32), kReduceWarps * 32, 0, stream>>>(
        partial, chunks, n, dweight);
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
                      const void* residual, void* dx, float* dweight, int64_t rows, int64_t n, cudaStream_t stream) {
  SLIME_CHECK(rows >= 0 && n > 0, "rmsnorm_backward: bad shape [", rows, ", ", n, "]");
  if (precision == Precision::F32) backward<float>(x, weight, rstd, dy, residual, dx, dweight, rows, n, stream);
  else backward<__nv_bfloat16>(x, weight, rstd, dy, residual, dx, dweight, rows, n, stream);
}

}  // namespace slime::cuda
