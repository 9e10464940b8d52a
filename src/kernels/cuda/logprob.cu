// Token log-probabilities and entropy from fp32 logits, vocab-parallel (cpu/logprob.h's semantics), in two
// memory-bound passes over the logits: one read for the forward statistics, one read and one write for the backward.
//
// Statistics: one block per row; each thread keeps an online (max, sum exp(z - max), sum exp(z - max) (z - max)) over
// its columns (float4 loads, four vectors in flight per thread), rescaling and re-centring when the max grows; the
// threads merge the same way through warp shuffles and shared memory (a fixed tree: deterministic). The third sum is
// centred on the max so that the entropy, log sum - E[z - max], never subtracts two large numbers: a peaked row (an
// entropy of 1e-3 next to logits of 10) keeps its relative precision in fp32. Only valid columns
// (token id < vocab) count; a rank holding none gives (-inf, 0, 0, 0). The merge of the ranks' statistics is done in
// double, one thread per row. Backward: one block per row writes every column (padding columns get 0).
#include <cmath>
#include <cstdint>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/ops.h"

namespace slime::cuda {
namespace {

constexpr int kUnroll = 4;  // float4 loads in flight per thread

struct Online {
  float m, s, sz;  // running max of z, sum exp(z - m), sum exp(z - m) (z - m)
};

// (s, sz) of a side with max m, moved to the larger max `to`: the terms shrink by exp(m - to) and their offsets
// from the max grow by (m - to). An empty side (s = 0, m = -inf) stays (0, 0).
__device__ __forceinline__ void recentre(float m, float to, float& s, float& sz) {
  if (s == 0.0f) {
    sz = 0.0f;
    return;
  }
  const float scale = expf(m - to);
  sz = (sz + (m - to) * s) * scale;
  s *= scale;
}

__device__ __forceinline__ void online_merge(Online& a, Online b) {
  const float m = fmaxf(a.m, b.m);
  if (m == -INFINITY) return;  // both empty
  recentre(a.m, m, a.s, a.sz);
  recentre(b.m, m, b.s, b.sz);
  a.s += b.s;
  a.sz += b.sz;
  a.m = m;
}

__device__ __forceinline__ void online_add(Online& a, float z) {
  if (z > a.m) {
    recentre(a.m, z, a.s, a.sz);
    a.s += 1.0f;  // the new max's own term: exp(0), offset 0
    a.m = z;
  } else if (z != -INFINITY) {
    const float e = expf(z - a.m);
    a.s += e;
    a.sz += e * (z - a.m);
  }
}

// Four consecutive columns col .. col + 3 (those >= valid are skipped): one rescale, then four exponentials.
__device__ __forceinline__ void online_add4(Online& a, float4 v, int64_t col, int64_t valid, float inv_temperature) {
  float z[4] = {v.x * inv_temperature, v.y * inv_temperature, v.z * inv_temperature, v.w * inv_temperature};
  bool ok[4];
  float zmax = -INFINITY;
#pragma unroll
  for (int k = 0; k < 4; ++k) {
    ok[k] = col + k < valid && z[k] != -INFINITY;
    if (ok[k]) zmax = fmaxf(zmax, z[k]);
  }
  if (zmax > a.m) {
    recentre(a.m, zmax, a.s, a.sz);
    a.m = zmax;
  }
#pragma unroll
  for (int k = 0; k < 4; ++k) {
    if (ok[k]) {
      const float e = expf(z[k] - a.m);
      a.s += e;
      a.sz += e * (z[k] - a.m);
    }
  }
}

// Merge over the block (blockDim.x = kBlock threads, a multiple of 32); thread 0 gets the result.
template <int kBlock>
__device__ __forceinline__ Online block_merge(Online a) {
  __shared__ float sm[32], ss[32], ssz[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) {
    Online b{__shfl_xor_sync(0xffffffffu, a.m, offset), __shfl_xor_sync(0xffffffffu, a.s, offset),
             __shfl_xor_sync(0xffffffffu, a.sz, offset)};
    online_merge(a, b);
  }
  if (lane == 0) {
    sm[warp] = a.m;
    ss[warp] = a.s;
    ssz[warp] = a.sz;
  }
  __syncthreads();
  constexpr int kWarps = kBlock / 32;
  if (warp == 0) {
    a = lane < kWarps ? Online{sm[lane], ss[lane], ssz[lane]} : Online{-INFINITY, 0.0f, 0.0f};
#pragma unroll
    for (int offset = 16; offset > 0; offset >>= 1) {
      Online b{__shfl_xor_sync(0xffffffffu, a.m, offset), __shfl_xor_sync(0xffffffffu, a.s, offset),
               __shfl_xor_sync(0xffffffffu, a.sz, offset)};
      online_merge(a, b);
    }
  }
  return a;
}

// stats [rows, 4] of this rank's slice; one block per row. kVec: cols % 4 == 0 and logits 16-byte aligned.
template <int kBlock, bool kVec>
__global__ void __launch_bounds__(kBlock)
    logprob_stats_kernel(const float* __restrict__ logits, const int* __restrict__ targets, float inv_temperature,
                         int64_t cols, int64_t valid, int64_t vocab_begin, float* __restrict__ stats) {
  const int64_t row = blockIdx.x;
  const float* z = logits + row * cols;
  Online a{-INFINITY, 0.0f, 0.0f};
  if (kVec) {
    const float4* z4 = reinterpret_cast<const float4*>(z);
    const int64_t n4 = (valid + 3) / 4;  // <= cols / 4
    for (int64_t base = threadIdx.x; base < n4; base += static_cast<int64_t>(kUnroll) * kBlock) {
      float4 v[kUnroll];
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const int64_t idx = base + static_cast<int64_t>(u) * kBlock;
        if (idx < n4) v[u] = z4[idx];
      }
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const int64_t idx = base + static_cast<int64_t>(u) * kBlock;
        if (idx < n4) online_add4(a, v[u], 4 * idx, valid, inv_temperature);
      }
    }
  } else {
    for (int64_t j = threadIdx.x; j < valid; j += kBlock) online_add(a, z[j] * inv_temperature);
  }
  a = block_merge<kBlock>(a);
  if (threadIdx.x == 0) {
    const int64_t local = static_cast<int64_t>(targets[row]) - vocab_begin;
    float* out = stats + row * 4;
    out[0] = a.m;
    out[1] = a.s;
    out[2] = a.sz;
    out[3] = (local >= 0 && local < valid) ? z[local] * inv_temperature : 0.0f;
  }
}

// One thread per row; the ranks' statistics merged in double (re-centred on the global max).
__global__ void logprob_combine_kernel(const float* __restrict__ stats, int64_t ranks, int64_t rows,
                                       float* __restrict__ lse, float* __restrict__ mean_z,
                                       float* __restrict__ logprob, float* __restrict__ entropy) {
  const int64_t row = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (row >= rows) return;
  double m = -INFINITY;
  for (int64_t r = 0; r < ranks; ++r) m = fmax(m, static_cast<double>(stats[(r * rows + row) * 4]));
  double s = 0.0, sz = 0.0, tz = 0.0;
  for (int64_t r = 0; r < ranks; ++r) {
    const float* st = stats + (r * rows + row) * 4;
    tz += static_cast<double>(st[3]);  // only the rank holding the target has a nonzero value
    if (st[0] == -INFINITY) continue;  // no valid column there
    const double dm = static_cast<double>(st[0]) - m, scale = exp(dm);
    s += static_cast<double>(st[1]) * scale;
    sz += (static_cast<double>(st[2]) + dm * static_cast<double>(st[1])) * scale;
  }
  const double log_s = log(s), centred_mean = sz / s;  // log sum exp(z - m), E[z - m]
  const double log_z = m + log_s;
  if (lse) lse[row] = static_cast<float>(log_z);
  if (mean_z) mean_z[row] = static_cast<float>(m + centred_mean);
  if (logprob) logprob[row] = static_cast<float>(tz - log_z);
  if (entropy) entropy[row] = static_cast<float>(log_s - centred_mean);
}

template <class TO>
struct Store4;
template <>
struct Store4<float> {
  __device__ __forceinline__ static void store(float* dst, float a, float b, float c, float d) {
    *reinterpret_cast<float4*>(dst) = make_float4(a, b, c, d);
  }
};
template <>
struct Store4<__nv_bfloat16> {
  struct alignas(8) Pack {
    __nv_bfloat162 lo, hi;
  };
  __device__ __forceinline__ static void store(__nv_bfloat16* dst, float a, float b, float c, float d) {
    Pack p;
    p.lo = __floats2bfloat162_rn(a, b);
    p.hi = __floats2bfloat162_rn(c, d);
    *reinterpret_cast<Pack*>(dst) = p;
  }
};

struct RowGrad {
  float lse, g_lp, g_ent, ez, inv_temperature;
  int64_t target, valid;  // target: local column of the target (may lie outside [0, valid))
  __device__ __forceinline__ float at(float x, int64_t col) const {
    if (col >= valid) return 0.0f;
    const float z = x * inv_temperature;
    const float p = expf(z - lse);
    const float onehot = col == target ? 1.0f : 0.0f;
    return ((onehot - p) * g_lp - p * (z - ez) * g_ent) * inv_temperature;
  }
};

// dlogits [rows, cols]; one block per row. kVec: cols % 4 == 0, logits 16-byte and dlogits 4-element aligned.
template <class TO, int kBlock, bool kVec>
__global__ void __launch_bounds__(kBlock)
    logprob_backward_kernel(const float* __restrict__ logits, const int* __restrict__ targets, float inv_temperature,
                            const float* __restrict__ lse, const float* __restrict__ mean_z,
                            const float* __restrict__ dlogprob, const float* __restrict__ dentropy, int64_t cols,
                            int64_t valid, int64_t vocab_begin, TO* __restrict__ dlogits) {
  const int64_t row = blockIdx.x;
  RowGrad rg;
  rg.lse = lse[row];
  rg.g_lp = dlogprob ? dlogprob[row] : 0.0f;
  rg.g_ent = dentropy ? dentropy[row] : 0.0f;
  rg.ez = rg.g_ent != 0.0f ? mean_z[row] : 0.0f;
  rg.inv_temperature = inv_temperature;
  rg.target = static_cast<int64_t>(targets[row]) - vocab_begin;
  rg.valid = valid;
  const float* z = logits + row * cols;
  TO* dz = dlogits + row * cols;
  if (kVec) {
    const float4* z4 = reinterpret_cast<const float4*>(z);
    const int64_t n4 = cols / 4;
    for (int64_t base = threadIdx.x; base < n4; base += static_cast<int64_t>(kUnroll) * kBlock) {
      float4 v[kUnroll];
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const int64_t idx = base + static_cast<int64_t>(u) * kBlock;
        // padding vectors need no load
        if (idx < n4) v[u] = 4 * idx < valid ? z4[idx] : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
      }
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const int64_t idx = base + static_cast<int64_t>(u) * kBlock;
        if (idx < n4) {
          const int64_t col = 4 * idx;
          Store4<TO>::store(dz + col, rg.at(v[u].x, col), rg.at(v[u].y, col + 1), rg.at(v[u].z, col + 2),
                            rg.at(v[u].w, col + 3));
        }
      }
    }
  } else {
    for (int64_t j = threadIdx.x; j < cols; j += kBlock)
      dz[j] = from_float<TO>(j < valid ? rg.at(z[j], j) : 0.0f);
  }
}

int64_t valid_columns(const LogitsShape& s) {
  const int64_t v = s.vocab - s.vocab_begin;
  return v < 0 ? 0 : v > s.cols ? s.cols : v;
}

void check_shape(const LogitsShape& s, const char* op) {
  SLIME_CHECK(s.rows >= 0 && s.cols >= 0, op, ": bad logits shape [", s.rows, ", ", s.cols, "]");
  SLIME_CHECK(s.vocab > 0 && s.vocab_begin >= 0, op, ": bad vocabulary ", s.vocab, " (slice begins at ",
              s.vocab_begin, ")");
}


template <int kBlock>
void stats_launch(bool vec, const LogitsShape& s, int64_t valid, const float* logits, const int* targets,
                  float inv_temperature, float* stats, cudaStream_t stream) {
  if (vec)
    logprob_stats_kernel<kBlock, true><<<static_cast<unsigned>(s.rows), kBlock, 0, stream>>>(
        logits, targets, inv_temperature, s.cols, valid, s.vocab_begin, stats);
  else
    logprob_stats_kernel<kBlock, false><<<static_cast<unsigned>(s.rows), kBlock, 0, stream>>>(
        logits, targets, inv_temperature, s.cols, valid, s.vocab_begin, stats);
  cudaCheckLaunch("logprob_stats_kernel");
}

template <class TO, int kBlock>
void backward_launch(bool vec, const LogitsShape& s, int64_t valid, const float* logits, const int* targets,
                     float inv_temperature, const float* lse, const float* mean_z, const float* dlogprob,
                     const float* dentropy, void* dlogits, cudaStream_t stream) {
  if (vec)
    logprob_backward_kernel<TO, kBlock, true><<<static_cast<unsigned>(s.rows), kBlock, 0, stream>>>(
        logits, targets, inv_temperature, lse, mean_z, dlogprob, dentropy, s.cols, valid, s.vocab_begin,
        static_cast<TO*>(dlogits));
  else
    logprob_backward_kernel<TO, kBlock, false><<<static_cast<unsigned>(s.rows), kBlock, 0, stream>>>(
        logits, targets, inv_temperature, lse, mean_z, dlogprob, dentropy, s.cols, valid, s.vocab_begin,
        static_cast<TO*>(dlogits));
  cudaCheckLaunch("logprob_backward_kernel");
}

// Threads per row block: enough loads in flight for long rows, few idle threads for short ones.
int block_for(int64_t cols) { return cols >= 65536 ? 1024 : cols >= 8192 ? 512 : 256; }

template <class TO>
void backward_typed(bool vec, const LogitsShape& s, int64_t valid, const float* logits, const int* targets,
                    float inv_temperature, const float* lse, const float* mean_z, const float* dlogprob,
                    const float* dentropy, void* dlogits, cudaStream_t stream) {
  switch (block_for(s.cols)) {
    case 1024:
      return backward_launch<TO, 1024>(vec, s, valid, logits, targets, inv_temperature, lse, mean_z, dlogprob,
                                       dentropy, dlogits, stream);
    case 512:
      return backward_launch<TO, 512>(vec, s, valid, logits, targets, inv_temperature, lse, mean_z, dlogprob,
                                      dentropy, dlogits, stream);
    default:
      return backward_launch<TO, 256>(vec, s, valid, logits, targets, inv_temperature, lse, mean_z, dlogprob,
                                      dentropy, dlogits, stream);
  }
}

}  // namespace

// ----------------------------------------------------------------------------------------------------------------
// launchers

void logprob_partial_stats(const LogitsShape& shape, const float* logits, const int* targets, float inv_temperature,
                           float* stats, cudaStream_t stream) {
  check_shape(shape, "logprob_partial_stats");
  if (shape.rows == 0) return;
  SLIME_CHECK(shape.rows <= 0x7fffffffLL, "logprob_partial_stats: ", shape.rows, " rows exceed the grid");
  const int64_t valid = valid_columns(shape);
  const bool vec = shape.cols % 4 == 0 && is_aligned(logits, 16);
  switch (block_for(valid)) {
    case 1024: return stats_launch<1024>(vec, shape, valid, logits, targets, inv_temperature, stats, stream);
    case 512: return stats_launch<512>(vec, shape, valid, logits, targets, inv_temperature, stats, stream);
    default: return stats_launch<256>(vec, shape, valid, logits, targets, inv_temperature, stats, stream);
  }
}

void logprob_combine(const float* stats, int64_t ranks, int64_t rows, float* lse, float* mean_z, float* logprob,
                     float* entropy, cudaStream_t stream) {
  SLIME_CHECK(ranks >= 1 && rows >= 0, "logprob_combine: bad shape: ", ranks, " ranks, ", rows, " rows");
  if (rows == 0) return;
  constexpr int kThreads = 256;
  logprob_combine_kernel<<<static_cast<unsigned>((rows + kThreads - 1) / kThreads), kThreads, 0, stream>>>(
      stats, ranks, rows, lse, mean_z, logprob, entropy);
  cudaCheckLaunch("logprob_combine_kernel");
}

void logprob_backward(Precision out, const LogitsShape& shape, const float* logits, const int* targets,
                      float inv_temperature, const float* lse, const float* mean_z, const float* dlogprob,
                      const float* dentropy, void* dlogits, cudaStream_t stream) {
  check_shape(shape, "logprob_backward");
  if (shape.rows == 0 || shape.cols == 0) return;
  SLIME_CHECK(shape.rows <= 0x7fffffffLL, "logprob_backward: ", shape.rows, " rows exceed the grid");
  const int64_t valid = valid_columns(shape);
  const bool bf16 = out == Precision::BF16;
  const bool vec = shape.cols % 4 == 0 && is_aligned(logits, 16) && is_aligned(dlogits, bf16 ? 8 : 16);
  if (bf16)
    backward_typed<__nv_bfloat16>(vec, shape, valid, logits, targets, inv_temperature, lse, mean_z, dlogprob,
                                  dentropy, dlogits, stream);
  else
    backward_typed<float>(vec, shape, valid, logits, targets, inv_temperature, lse, mean_z, dlogprob, dentropy,
                          dlogits, stream);
}

}  // namespace slime::cuda
