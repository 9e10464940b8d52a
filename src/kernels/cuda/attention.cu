// Causal self-attention over packed variable-length sequences with grouped-query heads, forward and backward, on
// token-major operands: q [T, H, d], k and v [T, G, d], out [T, H, d], lse [H, T] (kernels/cpu/attention.h is the
// head-major reference). Query head h reads KV group h / (H / G); token i of a sequence sees tokens 0..i of it.
//
// BF16 (head_dim 64 or 128): FlashAttention-2 on mma.sync.m16n8k16 (bf16 in, fp32 accumulation).
//   Forward: one CTA of kFwdWarps warps per (query block of 16 * kFwdWarps rows, head, sequence); each warp owns 16
//   query rows whose Q fragments stay in registers, as do its S/P scores and its O accumulator. K and V tiles of 64
//   keys are staged in shared memory by cp.async (the load of V overlaps Q K^T, the load of the next K overlaps P V)
//   with rows padded by 16 bytes so that ldmatrix is free of bank conflicts. The softmax is online (exp2f with
//   scale * log2 e, the row sums kept per thread and reduced once at the end). Key tiles above the diagonal are never
//   visited; only tiles that straddle it are masked. Query blocks are launched heaviest (last) first.
//   Backward: a preprocess kernel delta[h, t] = sum_i dout * out, which also zeroes the fp32 accumulators; then one CTA
//   of 8 warps (d = 128; 4 for d = 64) per (key block, query head, sequence): each warp owns 16 keys and keeps their
//   dK, dV in registers while the CTA walks the query blocks at and after the key block (Q, dO, lse, delta
//   double-buffered by cp.async). Per query block it recomputes S^T = K Q^T and P^T = exp(scale S^T - lse), dP^T = V
//   dO^T, dS^T = P^T (dP^T - delta), accumulates dV += P^T dO and dK += dS^T Q, and, through dS^T staged in shared
//   memory, adds dQ += scale dS K into an fp32 workspace with atomicAdd. The per-head CTA (rather than one CTA looping
//   over the H/G heads of a group) keeps the grid large when G is small (Qwen2.5: G = 2): the H/G heads' dK, dV are
//   summed by atomicAdd into fp32 workspaces too. A last kernel rounds the fp32 dq, dk, dv to bf16.
//   The workspace is a file-static device buffer grown on demand (cudaMalloc; growing synchronizes the stream once)
//   and used on the caller's stream: use attention_backward from one stream at a time.
//
// On Hopper GPUs the bf16 forward and backward run attention_sm90.cu's warpgroup (wgmma) kernels instead, when the
// build carries them (set_attention_kernels in ops.h chooses).
//
// F32 (any head_dim up to 256): the plain reference path, one warp per (token, head) for the forward and dq, one warp
// per (key token, KV group) for dk and dv; every sum runs in a fixed order (deterministic, no atomics).
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <utility>

#include "kernels/cuda/attention_sm90.h"
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/mma.cuh"
#include "kernels/cuda/ops.h"

namespace slime::cuda {
namespace {

using bf16 = __nv_bfloat16;

constexpr int kKeyTile = 64;      // keys per tile (forward)
constexpr int kFwdWarps = 4;      // forward: 16 query rows per warp, 64 per CTA

// ROWS rows of D bf16 (global row stride `stride` elements, from `src`) into shared memory rows of D + 8 elements
// (the padding keeps ldmatrix free of bank conflicts); rows >= valid are zero-filled.
template <int D, int ROWS, int THREADS>
__device__ __forceinline__ void load_rows_async(bf16* dst, const bf16* base, const bf16* src, int64_t stride,
                                                int valid, int tid) {
  load_tile_async<D, ROWS, THREADS>(
      reinterpret_cast<unsigned char*>(dst), [](int r, int c) { return (r * (D + 8) + c * 8) * 2; }, base, src, stride,
      valid, tid);
}

// ---------------------------------------------------------------------------------------------------------------
// BF16 forward

template <int D, int WARPS>
constexpr int fwd_smem_bytes() {
  return (16 * WARPS + 2 * kKeyTile) * (D + 8) * static_cast<int>(sizeof(bf16));
}

template <int D, int WARPS>
__global__ void __launch_bounds__(WARPS * 32)
    attention_forward_bf16_kernel(const bf16* __restrict__ q, const bf16* __restrict__ k,
                                  const bf16* __restrict__ v, const int* __restrict__ cu_seqlens, int64_t T, int H,
                                  int per_group, float scale, float scale_log2, bf16* __restrict__ out,
                                  float* __restrict__ lse) {
  constexpr int kBr = 16 * WARPS, kBc = kKeyTile, kS = D + 8, kThreads = WARPS * 32;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  bf16* sQ = reinterpret_cast<bf16*>(smem_raw);
  bf16* sK = sQ + kBr * kS;
  bf16* sV = sK + kBc * kS;

  const int h = blockIdx.x, qblock = gridDim.y - 1 - blockIdx.y, b = blockIdx.z;
  const int start = cu_seqlens[b], len = cu_seqlens[b + 1] - start;
  const int q0 = qblock * kBr;
  if (q0 >= len) return;
  const int G = H / per_group, g = h / per_group;
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int64_t q_stride = static_cast<int64_t>(H) * D, kv_stride = static_cast<int64_t>(G) * D;
  const bf16* kg = k + (static_cast<int64_t>(start) * G + g) * D;
  const bf16* vg = v + (static_cast<int64_t>(start) * G + g) * D;
  const int n_tiles = (min(len, q0 + kBr) + kBc - 1) / kBc;  // key tiles at or below the diagonal

  load_rows_async<D, kBr, kThreads>(sQ, q, q + (static_cast<int64_t>(start + q0) * H + h) * D, q_stride, len - q0,
                                    tid);
  load_rows_async<D, kBc, kThreads>(sK, k, kg, kv_stride, len, tid);
  cp_async_commit();

  uint32_t qf[D / 16][4];
  float o[D / 8][4];
#pragma unroll
  for (int n = 0; n < D / 8; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};
  const int row_base = q0 + warp * 16 + (lane >> 2);  // this thread's rows: row_base and row_base + 8

  for (int j = 0; j < n_tiles; ++j) {
    const int kb = j * kBc;
    load_rows_async<D, kBc, kThreads>(sV, v, vg + kb * kv_stride, kv_stride, len - kb, tid);
    cp_async_commit();
    cp_async_wait<1>();  // Q and this K tile have landed
    __syncthreads();
    if (j == 0) {
#pragma unroll
      for (int kk = 0; kk < D / 16; ++kk)
        ldmatrix_x4(qf[kk], sQ + (warp * 16 + (lane & 15)) * kS + kk * 16 + (lane >> 4) * 8);
    }

    // S = Q K^T (16 x 64 per warp)
    float s[kBc / 8][4];
    qk_scores<D, kBc>(s, qf, sK, kS, lane);
    if (kb + kBc - 1 > q0) {  // the tile straddles the diagonal: keys after a row are masked
#pragma unroll
      for (int n = 0; n < kBc / 8; ++n)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int col = kb + n * 8 + 2 * (lane & 3) + (e & 1);
          const int row = row_base + ((e >> 1) << 3);
          if (col > row) s[n][e] = -INFINITY;
        }
    }

    online_softmax_step<D, kBc>(s, m, l, o, scale_log2);

    __syncthreads();  // every warp is done with sK
    if (j + 1 < n_tiles) load_rows_async<D, kBc, kThreads>(sK, k, kg + (kb + kBc) * kv_stride, kv_stride,
                                                            len - kb - kBc, tid);
    cp_async_commit();
    cp_async_wait<1>();  // this V tile has landed
    __syncthreads();

    pv_accumulate<D, kBc>(o, s, sV, kS, lane);
    __syncthreads();  // every warp is done with sV
  }

  store_attention_rows<D>(o, m, l, out + (static_cast<int64_t>(start) * H + h) * D, q_stride,
                          lse + static_cast<int64_t>(h) * T + start, row_base, len, scale, lane);
}

// ---------------------------------------------------------------------------------------------------------------
// BF16 backward

// Query rows per step of the backward: 32 for d = 128 keeps dK, dV (128 fp32 per thread) and the scores in registers.
template <int D>
constexpr int bwd_query_block() {
  return D >= 128 ? 32 : 64;
}

// Warps per CTA (16 keys each). With d = 128, 8 warps (128 keys) halve the dQ atomics of 4 (and the reloads of each
// query block): 0.685 ms instead of 0.733 for one 4096-token sequence of the 1.5B shape on an H100. With d = 64, 4
// warps stay ahead (0.404 ms against 0.409), their smaller CTAs filling the SMs better.
template <int D>
constexpr int bwd_warps() {
  return D >= 128 ? 8 : 4;
}

// WARPS warps per CTA, 16 keys each.
template <int D, int WARPS>
constexpr int bwd_smem_bytes() {
  constexpr int kBq = bwd_query_block<D>(), kBc = 16 * WARPS;
  return (2 * kBc + 4 * kBq) * (D + 8) * static_cast<int>(sizeof(bf16)) +  // K, V, 2 x (Q, dO)
         kBc * (kBq + 8) * static_cast<int>(sizeof(bf16)) +               // dS^T
         4 * kBq * static_cast<int>(sizeof(float));                       // 2 x (lse, delta)
}

template <int D, int WARPS>
__global__ void __launch_bounds__(WARPS * 32)
    attention_backward_bf16_kernel(const bf16* __restrict__ q, const bf16* __restrict__ k,
                                   const bf16* __restrict__ v, const bf16* __restrict__ dout,
                                   const float* __restrict__ lse, const float* __restrict__ delta,
                                   const int* __restrict__ cu_seqlens, int64_t T, int H, int per_group, float scale,
                                   float scale_log2, float* __restrict__ dq_acc, float* __restrict__ dk_acc,
                                   float* __restrict__ dv_acc) {
  constexpr int kBc = 16 * WARPS, kBq = bwd_query_block<D>(), kS = D + 8, kSS = kBq + 8, kThreads = WARPS * 32;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  bf16* sK = reinterpret_cast<bf16*>(smem_raw);
  bf16* sV = sK + kBc * kS;
  bf16* sQ = sV + kBc * kS;      // [2][kBq][kS]
  bf16* sdO = sQ + 2 * kBq * kS;  // [2][kBq][kS]
  bf16* sdS = sdO + 2 * kBq * kS;  // [kBc][kSS]: dS^T, keys x queries
  float* sL = reinterpret_cast<float*>(sdS + kBc * kSS);  // [2][kBq]
  float* sD = sL + 2 * kBq;                               // [2][kBq]

  const int h = blockIdx.x, kblock = blockIdx.y, b = blockIdx.z;
  const int start = cu_seqlens[b], len = cu_seqlens[b + 1] - start;
  const int kb = kblock * kBc;
  if (kb >= len) return;
  const int G = H / per_group, g = h / per_group;
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int64_t q_stride = static_cast<int64_t>(H) * D, kv_stride = static_cast<int64_t>(G) * D;

  load_rows_async<D, kBc, kThreads>(sK, k, k + (static_cast<int64_t>(start + kb) * G + g) * D, kv_stride,
                                       len - kb, tid);
  load_rows_async<D, kBc, kThreads>(sV, v, v + (static_cast<int64_t>(start + kb) * G + g) * D, kv_stride,
                                       len - kb, tid);
  const int i_first = kb / kBq, i_last = (len - 1) / kBq;
  const float* lse_h = lse + static_cast<int64_t>(h) * T + start;
  const float* delta_h = delta + static_cast<int64_t>(h) * T + start;
  auto load_queries = [&](int i, int stage) {
    const int q0 = i * kBq;
    const int64_t offset = (static_cast<int64_t>(start + q0) * H + h) * D;
    load_rows_async<D, kBq, kThreads>(sQ + stage * kBq * kS, q, q + offset, q_stride, len - q0, tid);
    load_rows_async<D, kBq, kThreads>(sdO + stage * kBq * kS, dout, dout + offset, q_stride, len - q0, tid);
    load_row_stats_async<kBq>(sL + stage * kBq, sD + stage * kBq, lse_h, delta_h, q0, len, tid);
  };
  load_queries(i_first, 0);
  cp_async_commit();

  float dk[D / 8][4], dv[D / 8][4];
#pragma unroll
  for (int n = 0; n < D / 8; ++n)
#pragma unroll
    for (int e = 0; e < 4; ++e) dk[n][e] = dv[n][e] = 0.0f;
  const int key_base = kb + warp * 16 + (lane >> 2);  // this thread's keys: key_base and key_base + 8

  for (int i = i_first; i <= i_last; ++i) {
    const int stage = (i - i_first) & 1;
    if (i < i_last) load_queries(i + 1, stage ^ 1);
    cp_async_commit();
    cp_async_wait<1>();  // K, V and this step's queries have landed
    __syncthreads();
    const bf16* cQ = sQ + stage * kBq * kS;
    const bf16* cdO = sdO + stage * kBq * kS;
    const float* cL = sL + stage * kBq;
    const float* cD = sD + stage * kBq;
    const int q0 = i * kBq;

    // S^T = K Q^T and dP^T = V dO^T (16 keys x kBq queries per warp)
    float st[kBq / 8][4], dpt[kBq / 8][4];
#pragma unroll
    for (int n = 0; n < kBq / 8; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e) st[n][e] = dpt[n][e] = 0.0f;
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
      uint32_t ka[4], va[4];
      ldmatrix_x4(ka, sK + (warp * 16 + (lane & 15)) * kS + kk * 16 + (lane >> 4) * 8);
      ldmatrix_x4(va, sV + (warp * 16 + (lane & 15)) * kS + kk * 16 + (lane >> 4) * 8);
#pragma unroll
      for (int nn = 0; nn < kBq / 16; ++nn) {
        const int offset = (nn * 16 + (lane & 7) + ((lane >> 4) << 3)) * kS + kk * 16 + ((lane >> 3) & 1) * 8;
        uint32_t bq[4], bo[4];
        ldmatrix_x4(bq, cQ + offset);
        ldmatrix_x4(bo, cdO + offset);
        mma_bf16(st[2 * nn], ka, bq[0], bq[1]);
        mma_bf16(st[2 * nn + 1], ka, bq[2], bq[3]);
        mma_bf16(dpt[2 * nn], va, bo[0], bo[1]);
        mma_bf16(dpt[2 * nn + 1], va, bo[2], bo[3]);
      }
    }

    // P^T = exp(scale S^T - lse) (0 where the query precedes the key or lies past the sequence),
    // dS^T = P^T (dP^T - delta)
    const bool need_mask = q0 < kb + kBc - 1 || q0 + kBq > len;
#pragma unroll
    for (int n = 0; n < kBq / 8; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int ql = n * 8 + 2 * (lane & 3) + (e & 1);
        float p = exp2f(fmaf(st[n][e], scale_log2, -cL[ql] * kLog2e));
        if (need_mask) {
          const int query = q0 + ql, key = key_base + ((e >> 1) << 3);
          if (query < key || query >= len) p = 0.0f;
        }
        st[n][e] = p;
        dpt[n][e] = p * (dpt[n][e] - cD[ql]);
      }

    // dV += P^T dO, dK += dS^T Q (unscaled; scale applied at the end)
#pragma unroll
    for (int kk = 0; kk < kBq / 16; ++kk) {
      uint32_t pa[4], da[4];
      accumulators_to_a(st[2 * kk], st[2 * kk + 1], pa);
      accumulators_to_a(dpt[2 * kk], dpt[2 * kk + 1], da);
      // dS^T to shared memory for dQ (keys x queries)
      bf16* srow = sdS + (warp * 16 + (lane >> 2)) * kSS + kk * 16 + 2 * (lane & 3);
      *reinterpret_cast<uint32_t*>(srow) = da[0];
      *reinterpret_cast<uint32_t*>(srow + 8 * kSS) = da[1];
      *reinterpret_cast<uint32_t*>(srow + 8) = da[2];
      *reinterpret_cast<uint32_t*>(srow + 8 * kSS + 8) = da[3];
#pragma unroll
      for (int dn = 0; dn < D / 16; ++dn) {
        const int offset = (kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * kS + dn * 16 + (lane >> 4) * 8;
        uint32_t bo[4], bq[4];
        ldmatrix_x4_trans(bo, cdO + offset);
        ldmatrix_x4_trans(bq, cQ + offset);
        mma_bf16(dv[2 * dn], pa, bo[0], bo[1]);
        mma_bf16(dv[2 * dn + 1], pa, bo[2], bo[3]);
        mma_bf16(dk[2 * dn], da, bq[0], bq[1]);
        mma_bf16(dk[2 * dn + 1], da, bq[2], bq[3]);
      }
    }
    __syncthreads();  // dS^T complete

    // dQ (kBq x D) += scale dS K: warp -> 16 queries (m-tile mt) x kDW columns (part dpart)
    {
      constexpr int kMT = kBq / 16, kWPM = WARPS / kMT, kDW = D / kWPM;
      static_assert(kMT * kWPM == WARPS && kDW % 16 == 0, "the warps must cover the dQ block");
      const int mt = warp / kWPM, dpart = warp % kWPM;
      float dqa[kDW / 8][4];
#pragma unroll
      for (int n = 0; n < kDW / 8; ++n) dqa[n][0] = dqa[n][1] = dqa[n][2] = dqa[n][3] = 0.0f;
#pragma unroll
      for (int kk = 0; kk < kBc / 16; ++kk) {
        uint32_t a[4];
        ldmatrix_x4_trans(a, sdS + (kk * 16 + (lane & 7) + (lane >> 4) * 8) * kSS + mt * 16 + ((lane >> 3) & 1) * 8);
#pragma unroll
        for (int dn = 0; dn < kDW / 16; ++dn) {
          uint32_t kf[4];
          ldmatrix_x4_trans(kf, sK + (kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * kS + dpart * kDW + dn * 16 +
                                    (lane >> 4) * 8);
          mma_bf16(dqa[2 * dn], a, kf[0], kf[1]);
          mma_bf16(dqa[2 * dn + 1], a, kf[2], kf[3]);
        }
      }
      atomic_add_rows<kDW>(dq_acc + (static_cast<int64_t>(start) * H + h) * D + dpart * kDW, q_stride, dqa, scale,
                           q0 + mt * 16 + (lane >> 2), len, lane);
    }
    __syncthreads();  // sdS and this stage's buffers are free again
  }

  const int64_t kv0 = (static_cast<int64_t>(start) * G + g) * D;
  atomic_add_rows<D>(dk_acc + kv0, kv_stride, dk, scale, key_base, len, lane);
  atomic_add_rows<D>(dv_acc + kv0, kv_stride, dv, 1.0f, key_base, len, lane);
}

// The fp32 backward's delta[h, t] = sum_i dout[t, h, i] * out[t, h, i]; one warp per (t, h).
__global__ void attention_delta_kernel(const float* __restrict__ out, const float* __restrict__ dout,
                                       float* __restrict__ delta, int64_t tokens, int H, int D) {
  const int64_t row = static_cast<int64_t>(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
  if (row >= tokens * H) return;
  const int lane = threadIdx.x & 31;
  const float* o = out + row * D;
  const float* d = dout + row * D;
  float acc = 0.0f;
  for (int i = lane; i < D; i += 32) acc += d[i] * o[i];
  acc = warp_sum(acc);
  if (lane == 0) {
    const int64_t t = row / H, h = row - t * H;
    delta[h * tokens + t] = acc;
  }
}

// The bf16 backward's preprocess, a warp per (token t, head h): delta as above (8-byte loads; D a multiple of 4), and
// the fp32 accumulators zeroed: dq_acc's row (t, h), and for h < G dk_acc's and dv_acc's row (t, h).
__global__ void attention_delta_zero_kernel(const __nv_bfloat16* __restrict__ out,
                                            const __nv_bfloat16* __restrict__ dout, float* __restrict__ delta,
                                            float* __restrict__ dq_acc, float* __restrict__ dk_acc,
                                            float* __restrict__ dv_acc, int64_t tokens, int H, int G, int D) {
  const int64_t row = static_cast<int64_t>(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
  if (row >= tokens * H) return;
  const int lane = threadIdx.x & 31;
  const int64_t t = row / H, h = row - t * H;
  const float4 zero = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
  float acc = 0.0f;
  for (int i = 4 * lane; i < D; i += 128) {
    const uint2 o = *reinterpret_cast<const uint2*>(out + row * D + i);
    const uint2 d = *reinterpret_cast<const uint2*>(dout + row * D + i);
    const __nv_bfloat162* o2 = reinterpret_cast<const __nv_bfloat162*>(&o);
    const __nv_bfloat162* d2 = reinterpret_cast<const __nv_bfloat162*>(&d);
#pragma unroll
    for (int k = 0; k < 2; ++k) {
      const float2 of = __bfloat1622float2(o2[k]), df = __bfloat1622float2(d2[k]);
      acc += df.x * of.x;
      acc += df.y * of.y;
    }
    *reinterpret_cast<float4*>(dq_acc + row * D + i) = zero;
    if (h < G) {
      *reinterpret_cast<float4*>(dk_acc + (t * G + h) * D + i) = zero;
      *reinterpret_cast<float4*>(dv_acc + (t * G + h) * D + i) = zero;
    }
  }
  acc = warp_sum(acc);
  if (lane == 0) delta[h * tokens + t] = acc;
}

__global__ void f32_to_bf16_kernel(const float4* __restrict__ x, __nv_bfloat162* __restrict__ y, int64_t n4) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n4;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const float4 f = x[i];
    y[2 * i] = __floats2bfloat162_rn(f.x, f.y);
    y[2 * i + 1] = __floats2bfloat162_rn(f.z, f.w);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// F32 reference path: one warp per row, lane i holding elements i, i + 32, ... (head_dim <= 32 * kMaxPerLane).

constexpr int kF32Warps = 4;
constexpr int kMaxPerLane = 8;

__device__ __forceinline__ void load_row(float (&r)[kMaxPerLane], const float* p, int D, int lane) {
#pragma unroll
  for (int i = 0; i < kMaxPerLane; ++i) {
    const int c = lane + 32 * i;
    r[i] = c < D ? p[c] : 0.0f;
  }
}

__device__ __forceinline__ float dot_row(const float (&r)[kMaxPerLane], const float* p, int D, int lane) {
  float acc = 0.0f;
#pragma unroll
  for (int i = 0; i < kMaxPerLane; ++i) {
    const int c = lane + 32 * i;
    if (c < D) acc += r[i] * p[c];
  }
  return warp_sum(acc);  // the same value in every lane
}

__device__ __forceinline__ void axpy_row(float (&r)[kMaxPerLane], float a, const float* p, int D, int lane) {
#pragma unroll
  for (int i = 0; i < kMaxPerLane; ++i) {
    const int c = lane + 32 * i;
    if (c < D) r[i] += a * p[c];
  }
}

__device__ __forceinline__ void store_row(float* p, const float (&r)[kMaxPerLane], float a, int D, int lane) {
#pragma unroll
  for (int i = 0; i < kMaxPerLane; ++i) {
    const int c = lane + 32 * i;
    if (c < D) p[c] = a * r[i];
  }
}

// Grid (position blocks of kF32Warps, heads, sequences); a warp per (position, head): two passes over its keys (the
// max and sum, then the weighted sum of values).
__global__ void attention_forward_f32_kernel(const float* __restrict__ q, const float* __restrict__ k,
                                             const float* __restrict__ v, const int* __restrict__ cu_seqlens,
                                             int64_t T, int H, int per_group, int D, float scale,
                                             float* __restrict__ out, float* __restrict__ lse) {
  const int lane = threadIdx.x & 31;
  const int pos = blockIdx.x * kF32Warps + threadIdx.x / 32, h = blockIdx.y, b = blockIdx.z;
  const int start = cu_seqlens[b], len = cu_seqlens[b + 1] - start;
  if (pos >= len) return;
  const int G = H / per_group, g = h / per_group;
  const int64_t t = start + pos;
  float qr[kMaxPerLane];
  load_row(qr, q + (t * H + h) * D, D, lane);
  float m = -INFINITY, l = 0.0f;
  for (int j = 0; j <= pos; ++j) {
    const float s = scale * dot_row(qr, k + ((start + j) * static_cast<int64_t>(G) + g) * D, D, lane);
    if (s > m) {
      l = l * expf(m - s) + 1.0f;
      m = s;
    } else {
      l += expf(s - m);
    }
  }
  float o[kMaxPerLane] = {};
  for (int j = 0; j <= pos; ++j) {
    const int64_t kv = ((start + j) * static_cast<int64_t>(G) + g) * D;
    const float p = expf(scale * dot_row(qr, k + kv, D, lane) - m);
    axpy_row(o, p, v + kv, D, lane);
  }
  store_row(out + (t * H + h) * D, o, 1.0f / l, D, lane);
  if (lane == 0) lse[static_cast<int64_t>(h) * T + t] = m + logf(l);
}

// dq: a warp per (position, head), over keys 0..position.
__global__ void attention_backward_dq_f32_kernel(const float* __restrict__ q, const float* __restrict__ k,
                                                 const float* __restrict__ v, const float* __restrict__ lse,
                                                 const float* __restrict__ delta, const float* __restrict__ dout,
                                                 const int* __restrict__ cu_seqlens, int64_t T, int H, int per_group,
                                                 int D, float scale, float* __restrict__ dq) {
  const int lane = threadIdx.x & 31;
  const int pos = blockIdx.x * kF32Warps + threadIdx.x / 32, h = blockIdx.y, b = blockIdx.z;
  const int start = cu_seqlens[b], len = cu_seqlens[b + 1] - start;
  if (pos >= len) return;
  const int G = H / per_group, g = h / per_group;
  const int64_t t = start + pos;
  float qr[kMaxPerLane], dor[kMaxPerLane], acc[kMaxPerLane] = {};
  load_row(qr, q + (t * H + h) * D, D, lane);
  load_row(dor, dout + (t * H + h) * D, D, lane);
  const float L = lse[static_cast<int64_t>(h) * T + t], Di = delta[static_cast<int64_t>(h) * T + t];
  for (int j = 0; j <= pos; ++j) {
    const int64_t kv = ((start + j) * static_cast<int64_t>(G) + g) * D;
    const float p = expf(scale * dot_row(qr, k + kv, D, lane) - L);
    const float dp = dot_row(dor, v + kv, D, lane);
    axpy_row(acc, p * (dp - Di), k + kv, D, lane);
  }
  store_row(dq + (t * H + h) * D, acc, scale, D, lane);
}

// dk, dv: a warp per (key position, group), over the group's heads and the queries at or after the key.
__global__ void attention_backward_dkv_f32_kernel(const float* __restrict__ q, const float* __restrict__ k,
                                                  const float* __restrict__ v, const float* __restrict__ lse,
                                                  const float* __restrict__ delta, const float* __restrict__ dout,
                                                  const int* __restrict__ cu_seqlens, int64_t T, int H,
                                                  int per_group, int D, float scale, float* __restrict__ dk,
                                                  float* __restrict__ dv) {
  const int lane = threadIdx.x & 31;
  const int pos = blockIdx.x * kF32Warps + threadIdx.x / 32, g = blockIdx.y, b = blockIdx.z;
  const int start = cu_seqlens[b], len = cu_seqlens[b + 1] - start;
  if (pos >= len) return;
  const int G = H / per_group;
  const int64_t t = start + pos;
  float kr[kMaxPerLane], vr[kMaxPerLane], dk_acc[kMaxPerLane] = {}, dv_acc[kMaxPerLane] = {};
  load_row(kr, k + (t * G + g) * D, D, lane);
  load_row(vr, v + (t * G + g) * D, D, lane);
  for (int h = g * per_group; h < (g + 1) * per_group; ++h) {
    for (int i = pos; i < len; ++i) {
      const int64_t ti = start + i;
      const float* qi = q + (ti * H + h) * D;
      const float* doi = dout + (ti * H + h) * D;
      const float p = expf(scale * dot_row(kr, qi, D, lane) - lse[static_cast<int64_t>(h) * T + ti]);
      const float dp = dot_row(vr, doi, D, lane);
      axpy_row(dv_acc, p, doi, D, lane);
      axpy_row(dk_acc, p * (dp - delta[static_cast<int64_t>(h) * T + ti]), qi, D, lane);
    }
  }
  store_row(dk + (t * G + g) * D, dk_acc, scale, D, lane);
  store_row(dv + (t * G + g) * D, dv_acc, 1.0f, D, lane);
}

// ---------------------------------------------------------------------------------------------------------------
// host side

// The backward's fp32 workspace (dq, dk, dv accumulators and delta), grown on demand; one stream at a time.
float* workspace(size_t floats, cudaStream_t stream) {
  static float* buffer = nullptr;
  static size_t capacity = 0;
  if (floats > capacity) {
    if (buffer) {
      cudaCheck(cudaStreamSynchronize(stream));  // earlier work on `stream` may still use the old buffer
      cudaCheck(cudaFree(buffer));
    }
    buffer = nullptr;
    capacity = 0;
    cudaCheck(cudaMalloc(&buffer, floats * sizeof(float)));
    capacity = floats;
  }
  return buffer;
}

void check_shape(const char* op, Precision precision, int64_t tokens, int64_t sequences, int64_t max_seqlen,
                 int64_t heads, int64_t groups, int64_t head_dim, float scale) {
  SLIME_CHECK(tokens >= 0 && tokens < (int64_t{1} << 31), op, ": tokens ", tokens, " out of range");
  SLIME_CHECK(sequences >= 0 && sequences <= 65535, op, ": sequences ", sequences, " out of range [0, 65535]");
  SLIME_CHECK(max_seqlen >= 0 && max_seqlen <= tokens, op, ": max_seqlen ", max_seqlen, " not in [0, tokens = ",
              tokens, "]");
  SLIME_CHECK(heads > 0 && groups > 0 && heads % groups == 0 && heads <= 65535, op, ": heads ", heads,
              " not a positive multiple of groups ", groups);
  SLIME_CHECK(scale > 0.0f && scale < INFINITY, op, ": scale ", scale, " must be positive and finite");
  if (precision == Precision::BF16)
    SLIME_CHECK(head_dim == 64 || head_dim == 128, op, ": head_dim ", head_dim,
                " not supported by the bf16 kernel (64 or 128)");
  else
    SLIME_CHECK(head_dim > 0 && head_dim <= 32 * kMaxPerLane, op, ": head_dim ", head_dim,
                " not supported by the fp32 kernel (1..", 32 * kMaxPerLane, ")");
}

void check_aligned(const char* op, const char* name, const void* p) {
  SLIME_CHECK(is_aligned(p, 16), op, ": ", name, " is not 16-byte aligned");
}


template <int D>
void forward_bf16(const void* q, const void* k, const void* v, const int* cu_seqlens, int64_t tokens,
                  int64_t sequences, int64_t max_seqlen, int64_t heads, int64_t groups, float scale, void* out,
                  float* lse, cudaStream_t stream) {
  constexpr int kBr = 16 * kFwdWarps, kSmem = fwd_smem_bytes<D, kFwdWarps>();
  constexpr auto kernel = attention_forward_bf16_kernel<D, kFwdWarps>;
  allow_dynamic_smem<kernel>(kSmem);
  const int64_t qblocks = (max_seqlen + kBr - 1) / kBr;
  SLIME_CHECK(qblocks <= 65535, "attention_forward: max_seqlen ", max_seqlen, " too long");
  const dim3 grid(static_cast<unsigned>(heads), static_cast<unsigned>(qblocks), static_cast<unsigned>(sequences));
  kernel<<<grid, kFwdWarps * 32, kSmem, stream>>>(
      static_cast<const bf16*>(q), static_cast<const bf16*>(k), static_cast<const bf16*>(v), cu_seqlens, tokens,
      static_cast<int>(heads), static_cast<int>(heads / groups), scale, scale * kLog2e, static_cast<bf16*>(out), lse);
  cudaCheckLaunch("attention_forward_bf16_kernel");
}

template <int D, int WARPS>
void backward_bf16(const void* q, const void* k, const void* v, const float* lse, const void* dout,
                   const int* cu_seqlens, int64_t tokens, int64_t sequences, int64_t max_seqlen, int64_t heads,
                   int64_t groups, float scale, float* dq_acc, float* dk_acc, float* dv_acc, const float* delta,
                   cudaStream_t stream) {
  constexpr int kSmem = bwd_smem_bytes<D, WARPS>(), kBc = 16 * WARPS;
  constexpr auto kernel = attention_backward_bf16_kernel<D, WARPS>;
  allow_dynamic_smem<kernel>(kSmem);
  const int64_t kblocks = (max_seqlen + kBc - 1) / kBc;
  SLIME_CHECK(kblocks <= 65535, "attention_backward: max_seqlen ", max_seqlen, " too long");
  const dim3 grid(static_cast<unsigned>(heads), static_cast<unsigned>(kblocks), static_cast<unsigned>(sequences));
  kernel<<<grid, WARPS * 32, kSmem, stream>>>(
      static_cast<const bf16*>(q), static_cast<const bf16*>(k), static_cast<const bf16*>(v),
      static_cast<const bf16*>(dout), lse, delta, cu_seqlens, tokens, static_cast<int>(heads),
      static_cast<int>(heads / groups), scale, scale * kLog2e, dq_acc, dk_acc, dv_acc);
  cudaCheckLaunch("attention_backward_bf16_kernel");
}

void convert_to_bf16(const float* x, void* y, int64_t n, cudaStream_t stream) {
  const int64_t n4 = n / 4;  // n is a multiple of head_dim (64 or 128)
  const int blocks = static_cast<int>(std::min<int64_t>((n4 + 255) / 256, 132 * 16));
  f32_to_bf16_kernel<<<blocks, 256, 0, stream>>>(reinterpret_cast<const float4*>(x),
                                                 static_cast<__nv_bfloat162*>(y), n4);
  cudaCheckLaunch("f32_to_bf16_kernel");
}

dim3 f32_grid(int64_t max_seqlen, int64_t heads, int64_t sequences) {
  return dim3(static_cast<unsigned>((max_seqlen + kF32Warps - 1) / kF32Warps), static_cast<unsigned>(heads),
              static_cast<unsigned>(sequences));
}

std::atomic<AttentionKernels> g_kernels{AttentionKernels::Auto};

// Whether the current device has compute capability 9.0, looked up once per device (attention calls ask every time).
bool device_is_sm90() {
  constexpr int kDevices = 64;
  static std::atomic<int> known[kDevices] = {};  // 0 not asked yet, 1 yes, 2 no
  int device = 0;
  cudaCheck(cudaGetDevice(&device));
  if (device >= kDevices) return false;
  int state = known[device].load(std::memory_order_relaxed);
  if (state == 0) {
    int major = 0, minor = 0;
    cudaCheck(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
    cudaCheck(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device));
    state = major == 9 && minor == 0 ? 1 : 2;
    known[device].store(state, std::memory_order_relaxed);
  }
  return state == 1;
}

// Auto's choice: the environment's override, else Hopper on a compute-capability 9.0 device of a build that has them.
AttentionKernels resolve_auto() {
  static const AttentionKernels from_env = [] {
    const char* env = std::getenv("SLIME_ATTENTION_KERNELS");
    return parse_attention_kernels(env ? env : "");
  }();
  if (from_env != AttentionKernels::Auto) return from_env;
  return sm90::built() && device_is_sm90() ? AttentionKernels::Hopper : AttentionKernels::Portable;
}

bool use_hopper() {
  const AttentionKernels k = g_kernels.load(std::memory_order_relaxed);
  return (k == AttentionKernels::Auto ? resolve_auto() : k) == AttentionKernels::Hopper;
}

}  // namespace

AttentionKernels parse_attention_kernels(const std::string& text) {
  if (text.empty()) return AttentionKernels::Auto;
  if (text == "portable") return AttentionKernels::Portable;
  if (text == "hopper") return AttentionKernels::Hopper;
  throw_error(cat("SLIME_ATTENTION_KERNELS=", text, ": expected portable or hopper (or unset)"));
}

void set_attention_kernels(AttentionKernels kernels) { g_kernels.store(kernels, std::memory_order_relaxed); }

AttentionKernels attention_kernels_in_use() {
  return use_hopper() ? AttentionKernels::Hopper : AttentionKernels::Portable;
}

// ----------------------------------------------------------------------------------------------------------------
// launchers

void attention_forward(Precision precision, const void* q, const void* k, const void* v, const int* cu_seqlens,
                       int64_t tokens, int64_t sequences, int64_t max_seqlen, int64_t heads, int64_t groups,
                       int64_t head_dim, float scale, void* out, float* lse, cudaStream_t stream) {
  check_shape("attention_forward", precision, tokens, sequences, max_seqlen, heads, groups, head_dim, scale);
  if (tokens == 0 || sequences == 0 || max_seqlen == 0) return;
  if (precision == Precision::F32) {
    attention_forward_f32_kernel<<<f32_grid(max_seqlen, heads, sequences), kF32Warps * 32, 0, stream>>>(
        static_cast<const float*>(q), static_cast<const float*>(k), static_cast<const float*>(v), cu_seqlens, tokens,
        static_cast<int>(heads), static_cast<int>(heads / groups), static_cast<int>(head_dim), scale,
        static_cast<float*>(out), lse);
    cudaCheckLaunch("attention_forward_f32_kernel");
    return;
  }
  for (auto [name, p] : {std::pair<const char*, const void*>{"q", q}, {"k", k}, {"v", v}, {"out", out}})
    check_aligned("attention_forward", name, p);
  if (use_hopper()) {
    sm90::attention_forward(q, k, v, cu_seqlens, tokens, sequences, max_seqlen, heads, groups, head_dim, scale, out,
                            lse, stream);
    return;
  }
  if (head_dim == 64)
    forward_bf16<64>(q, k, v, cu_seqlens, tokens, sequences, max_seqlen, heads, groups, scale, out, lse, stream);
  else
    forward_bf16<128>(q, k, v, cu_seqlens, tokens, sequences, max_seqlen, heads, groups, scale, out, lse, stream);
}

void attention_backward(Precision precision, const void* q, const void* k, const void* v, const void* out,
                        const float* lse, const void* dout, const int* cu_seqlens, int64_t tokens, int64_t sequences,
                        int64_t max_seqlen, int64_t heads, int64_t groups, int64_t head_dim, float scale, void* dq,
                        void* dk, void* dv, cudaStream_t stream) {
  check_shape("attention_backward", precision, tokens, sequences, max_seqlen, heads, groups, head_dim, scale);
  if (tokens == 0 || sequences == 0) return;
  SLIME_CHECK(max_seqlen > 0, "attention_backward: max_seqlen 0 with ", tokens, " tokens");
  const int64_t q_elems = tokens * heads * head_dim, kv_elems = tokens * groups * head_dim;
  const bool bf16_path = precision == Precision::BF16;
  // workspace: [dq_acc q_elems][dk_acc kv_elems][dv_acc kv_elems] (bf16 only), then delta [H, T]
  const size_t acc_floats = bf16_path ? static_cast<size_t>(q_elems + 2 * kv_elems) : 0;
  float* ws = workspace(acc_floats + static_cast<size_t>(heads * tokens), stream);
  float* delta = ws + acc_floats;

  constexpr int kDeltaWarps = 8;
  const unsigned delta_blocks = static_cast<unsigned>((tokens * heads + kDeltaWarps - 1) / kDeltaWarps);
  if (!bf16_path) {
    attention_delta_kernel<<<delta_blocks, kDeltaWarps * 32, 0, stream>>>(
        static_cast<const float*>(out), static_cast<const float*>(dout), delta, tokens, static_cast<int>(heads),
        static_cast<int>(head_dim));
    cudaCheckLaunch("attention_delta_kernel");
    const auto* qf = static_cast<const float*>(q);
    const auto* kf = static_cast<const float*>(k);
    const auto* vf = static_cast<const float*>(v);
    const auto* dof = static_cast<const float*>(dout);
    const int H = static_cast<int>(heads), per_group = static_cast<int>(heads / groups),
              D = static_cast<int>(head_dim);
    attention_backward_dq_f32_kernel<<<f32_grid(max_seqlen, heads, sequences), kF32Warps * 32, 0, stream>>>(
        qf, kf, vf, lse, delta, dof, cu_seqlens, tokens, H, per_group, D, scale, static_cast<float*>(dq));
    cudaCheckLaunch("attention_backward_dq_f32_kernel");
    attention_backward_dkv_f32_kernel<<<f32_grid(max_seqlen, groups, sequences), kF32Warps * 32, 0, stream>>>(
        qf, kf, vf, lse, delta, dof, cu_seqlens, tokens, H, per_group, D, scale, static_cast<float*>(dk),
        static_cast<float*>(dv));
    cudaCheckLaunch("attention_backward_dkv_f32_kernel");
    return;
  }

  for (auto [name, p] :
       {std::pair<const char*, const void*>{"q", q}, {"k", k}, {"v", v}, {"out", out}, {"dout", dout}})
    check_aligned("attention_backward", name, p);
  float* dq_acc = ws;
  float* dk_acc = ws + q_elems;
  float* dv_acc = dk_acc + kv_elems;
  attention_delta_zero_kernel<<<delta_blocks, kDeltaWarps * 32, 0, stream>>>(
      static_cast<const bf16*>(out), static_cast<const bf16*>(dout), delta, dq_acc, dk_acc, dv_acc, tokens,
      static_cast<int>(heads), static_cast<int>(groups), static_cast<int>(head_dim));
  cudaCheckLaunch("attention_delta_zero_kernel");
  if (use_hopper())
    sm90::attention_backward(q, k, v, lse, delta, dout, cu_seqlens, tokens, sequences, max_seqlen, heads, groups,
                             head_dim, scale, dq_acc, dk_acc, dv_acc, stream);
  else if (head_dim == 64)
    backward_bf16<64, bwd_warps<64>()>(q, k, v, lse, dout, cu_seqlens, tokens, sequences, max_seqlen, heads, groups,
                                       scale, dq_acc, dk_acc, dv_acc, delta, stream);
  else
    backward_bf16<128, bwd_warps<128>()>(q, k, v, lse, dout, cu_seqlens, tokens, sequences, max_seqlen, heads,
                                         groups, scale, dq_acc, dk_acc, dv_acc, delta, stream);
  convert_to_bf16(dq_acc, dq, q_elems, stream);
  convert_to_bf16(dk_acc, dk, kv_elems, stream);
  convert_to_bf16(dv_acc, dv, kv_elems, stream);
}

}  // namespace slime::cuda
