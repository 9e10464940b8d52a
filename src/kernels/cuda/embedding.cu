// Vocab-parallel token embedding: forward lookup of this rank's rows [vocab_begin, vocab_begin + vocab_rows) (rows of
// other ranks' tokens are zero; the TP group sums), and a deterministic backward. cpu::embedding_forward/backward
// and the slice logic of model/decoder.cpp are the reference.
//
// Forward: one block per token copies the row as raw bytes (16-byte vectors when the row size and pointers allow).
// Backward: the host sorts token indices by id (embedding_sort_tokens); one block per distinct id (and per slice of
// the hidden dimension) adds that id's dx rows to its dweight row one token after another, in token order, starting
// from the row's current value: the same fp32 additions in the same order as the CPU loop, so the result equals it
// bit for bit, with no atomics.
#include <algorithm>
#include <cstdint>
#include <numeric>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/ops.h"

namespace slime::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kColumnsPerThread = 4;
constexpr int64_t kColumnsPerBlock = static_cast<int64_t>(kThreads) * kColumnsPerThread;

// x [T, row_vecs] (in units of V) = weight[token - vocab_begin] or zeros.
template <class V>
__global__ void embedding_forward_kernel(const int* __restrict__ tokens, const V* __restrict__ weight,
                                         int64_t vocab_begin, int64_t vocab_rows, int64_t row_vecs,
                                         V* __restrict__ x) {
  const int64_t t = blockIdx.x;
  const int64_t local = static_cast<int64_t>(tokens[t]) - vocab_begin;
  V* dst = x + t * row_vecs;
  if (local >= 0 && local < vocab_rows) {
    const V* src = weight + local * row_vecs;
    for (int64_t j = threadIdx.x; j < row_vecs; j += blockDim.x) dst[j] = src[j];
  } else {
    const V zero{};
    for (int64_t j = threadIdx.x; j < row_vecs; j += blockDim.x) dst[j] = zero;
  }
}

// Block (distinct id u = blockIdx.x, column slice blockIdx.y). dweight[local, j] += dx[order[r], j] for r in the
// id's run, in order.
template <class T>
__global__ void embedding_backward_kernel(const int* __restrict__ tokens, const int* __restrict__ order,
                                          const int* __restrict__ unique_starts, const T* __restrict__ dx,
                                          int64_t vocab_begin, int64_t vocab_rows, int64_t hidden,
                                          float* __restrict__ dweight) {
  const int64_t u = blockIdx.x;
  const int begin = unique_starts[u], end = unique_starts[u + 1];
  if (begin >= end) return;
  const int64_t local = static_cast<int64_t>(tokens[order[begin]]) - vocab_begin;
  if (local < 0 || local >= vocab_rows) return;  // another rank's token
  float* row = dweight + local * hidden;
  const int64_t base = static_cast<int64_t>(blockIdx.y) * kColumnsPerBlock + threadIdx.x;
  float acc[kColumnsPerThread];
#pragma unroll
  for (int c = 0; c < kColumnsPerThread; ++c) {
    const int64_t j = base + c * kThreads;
    acc[c] = j < hidden ? row[j] : 0.0f;
  }
  for (int r = begin; r < end; ++r) {
    const T* src = dx + static_cast<int64_t>(order[r]) * hidden;
#pragma unroll
    for (int c = 0; c < kColumnsPerThread; ++c) {
      const int64_t j = base + c * kThreads;
      if (j < hidden) acc[c] += to_float(src[j]);
    }
  }
#pragma unroll
  for (int c = 0; c < kColumnsPerThread; ++c) {
    const int64_t j = base + c * kThreads;
    if (j < hidden) row[j] = acc[c];
  }
}

template <class V>
void forward_launch(const int* tokens, int64_t num_tokens, const void* weight, int64_t vocab_begin,
                    int64_t vocab_rows, int64_t row_bytes, void* x, cudaStream_t stream) {
  embedding_forward_kernel<V><<<static_cast<unsigned>(num_tokens), kThreads, 0, stream>>>(
      tokens, static_cast<const V*>(weight), vocab_begin, vocab_rows, row_bytes / static_cast<int64_t>(sizeof(V)),
      static_cast<V*>(x));
  cudaCheckLaunch("embedding_forward_kernel");
}

template <class T>
void backward_launch(const int* tokens, const int* order, const int* unique_starts, int64_t num_unique,
                     const void* dx, int64_t vocab_begin, int64_t vocab_rows, int64_t hidden, float* dweight,
                     cudaStream_t stream) {
  const dim3 grid(static_cast<unsigned>(num_unique),
                  static_cast<unsigned>((hidden + kColumnsPerBlock - 1) / kColumnsPerBlock));
  embedding_backward_kernel<T><<<grid, kThreads, 0, stream>>>(tokens, order, unique_starts, static_cast<const T*>(dx),
                                                              vocab_begin, vocab_rows, hidden, dweight);
  cudaCheckLaunch("embedding_backward_kernel");
}

}  // namespace

// ----------------------------------------------------------------------------------------------------------------
// launchers

void embedding_forward(Precision precision, const int* tokens, int64_t num_tokens, const void* weight,
                       int64_t vocab_begin, int64_t vocab_rows, int64_t hidden, void* x, cudaStream_t stream) {
  SLIME_CHECK(num_tokens >= 0 && hidden > 0 && vocab_rows >= 0, "embedding_forward: bad shape: ", num_tokens,
              " tokens, hidden ", hidden, ", ", vocab_rows, " vocabulary rows");
  if (num_tokens == 0) return;
  const int64_t elem = precision == Precision::F32 ? 4 : 2;
  const int64_t row_bytes = hidden * elem;
  const bool vec16 = row_bytes % 16 == 0 && is_aligned(weight, 16) && is_aligned(x, 16);
  if (vec16) forward_launch<uint4>(tokens, num_tokens, weight, vocab_begin, vocab_rows, row_bytes, x, stream);
  else if (elem == 4)
    forward_launch<uint32_t>(tokens, num_tokens, weight, vocab_begin, vocab_rows, row_bytes, x, stream);
  else forward_launch<uint16_t>(tokens, num_tokens, weight, vocab_begin, vocab_rows, row_bytes, x, stream);
}

void embedding_backward(Precision precision, const int* tokens, const int* order, const int* unique_starts,
                        int64_t num_unique, const void* dx, int64_t vocab_begin, int64_t vocab_rows, int64_t hidden,
                        float* dweight, cudaStream_t stream) {
  SLIME_CHECK(num_unique >= 0 && hidden > 0 && vocab_rows >= 0, "embedding_backward: bad shape: ", num_unique,
              " distinct tokens, hidden ", hidden, ", ", vocab_rows, " vocabulary rows");
  SLIME_CHECK((hidden + kColumnsPerBlock - 1) / kColumnsPerBlock <= 65535, "embedding_backward: hidden ", hidden,
              " too large");
  if (num_unique == 0) return;
  if (precision == Precision::F32)
    backward_launch<float>(tokens, order, unique_starts, num_unique, dx, vocab_begin, vocab_rows, hidden, dweight,
                           stream);
  else
    backward_launch<__nv_bfloat16>(tokens, order, unique_starts, num_unique, dx, vocab_begin, vocab_rows, hidden,
                                   dweight, stream);
}

void embedding_sort_tokens(const std::vector<int>& tokens, std::vector<int>* order, std::vector<int>* unique_starts) {
  const int n = static_cast<int>(tokens.size());
  order->resize(tokens.size());
  std::iota(order->begin(), order->end(), 0);
  std::stable_sort(order->begin(), order->end(), [&](int a, int b) { return tokens[a] < tokens[b]; });
  unique_starts->clear();
  for (int r = 0; r < n; ++r)
    if (r == 0 || tokens[(*order)[r]] != tokens[(*order)[r - 1]]) unique_starts->push_back(r);
  unique_starts->push_back(n);
}

}  // namespace slime::cuda
