// Causal packed-sequence GQA attention, bf16, on Hopper warpgroup tensor cores (wgmma.mma_async, sm_90a): the same
// operation, operands and results as attention.cu's bf16 kernels (its header comment has the layouts), faster on
// H100/H200. Operand tiles sit in shared memory in wgmma.cuh's 128-byte-swizzled layout, loaded by cp.async, double
// buffered; every CTA is two warpgroups (256 threads) of 64 rows each.
//
// Forward: one CTA per (block of 128 query rows, head, sequence); warpgroup w owns query rows 64w..64w+63. Per tile of
// 128 keys: S = Q K^T (both K-major from shared memory), the online softmax in registers (mma.cuh's step, the
// accumulator layout being mma.sync's), then O += P V with P straight from registers and V read MN-major. The next
// tile's K and V load while this one computes. Query blocks are launched heaviest (last) first. (A software-pipelined
// variant, tile j's Q K^T issued with tile j-1's P V and its softmax overlapping that P V over three K/V stages,
// measured 0.150 against 0.151 ms on an H100 for d = 128: not kept.)
//
// Backward: one CTA per (block of 128 keys, query head, sequence); warpgroup w owns keys 64w..64w+63 and keeps their
// dK, dV accumulators (fp32, 2 x 64 registers a thread) while the CTA walks the query blocks of 64 at and after the key
// block (Q, dO, lse, delta double buffered). Per query block: S^T = K Q^T and dP^T = V dO^T (shared x shared), P^T =
// exp(scale S^T - lse) and dS^T = P^T (dP^T - delta) in registers, dV += P^T dO and dK += dS^T Q (registers x
// shared, Q and dO read MN-major from the same tiles), dS^T to shared memory, then dQ = dS K with both operands
// MN-major, each warpgroup taking half of the head dimension, added into the fp32 dq workspace with float2 atomics.
// (Slower on an H100, so not kept: staging dQ in shared memory for bulk asynchronous reduce-adds, one per query row,
// 0.478 against 0.463 ms for d = 128 and 0.413 against 0.327 ms for d = 64; each warpgroup taking dQ over its own 64
// keys for the whole head dimension, a warpgroup barrier instead of the CTA's but twice the atomics, 0.581 against
// 0.456 ms for d = 128.)
// The H/G query heads of a KV group add their dK, dV into fp32 workspaces the same way (attention.cu rounds to bf16).
#include <cstdint>

#include "kernels/cuda/attention_sm90.h"
#include "kernels/cuda/common.cuh"

#ifdef SLIME_HAVE_SM90A
#include "kernels/cuda/mma.cuh"
#include "kernels/cuda/wgmma.cuh"
#endif

namespace slime::cuda::sm90 {

#ifdef SLIME_HAVE_SM90A
namespace {

using bf16 = __nv_bfloat16;

constexpr int kThreads = 256;  // two warpgroups

__device__ __forceinline__ unsigned char* align_1024(unsigned char* p) {
  return reinterpret_cast<unsigned char*>((reinterpret_cast<uintptr_t>(p) + 1023) & ~uintptr_t{1023});
}

// ---------------------------------------------------------------------------------------------------------------
// forward

template <int D>
struct Fwd {
  static constexpr int kBr = 128, kBc = 128;  // query rows, keys per tile
  static constexpr int kQBytes = kBr * D * 2, kKVBytes = kBc * D * 2;
  static constexpr int kSmem = kQBytes + 4 * kKVBytes + 1024;  // Q, 2 x (K, V), alignment slack
};

template <int D>
__global__ void __launch_bounds__(kThreads, 1)
    attention_forward_kernel(const bf16* __restrict__ q, const bf16* __restrict__ k, const bf16* __restrict__ v,
                             const int* __restrict__ cu_seqlens, int64_t T, int H, int per_group, float scale,
                             float scale_log2, bf16* __restrict__ out, float* __restrict__ lse) {
  using P = Fwd<D>;
  constexpr int kBr = P::kBr, kBc = P::kBc;
  extern __shared__ unsigned char smem_raw[];
  unsigned char* sQ = align_1024(smem_raw);
  unsigned char* sK = sQ + P::kQBytes;          // [2][kBc x D]
  unsigned char* sV = sK + 2 * P::kKVBytes;     // [2][kBc x D]

  const int h = blockIdx.x, qblock = gridDim.y - 1 - blockIdx.y, b = blockIdx.z;
  const int start = cu_seqlens[b], len = cu_seqlens[b + 1] - start;
  const int q0 = qblock * kBr;
  if (q0 >= len) return;
  const int G = H / per_group, g = h / per_group;
  const int tid = threadIdx.x, wg = tid >> 7, warp = (tid >> 5) & 3, lane = tid & 31;
  const int64_t q_stride = static_cast<int64_t>(H) * D, kv_stride = static_cast<int64_t>(G) * D;
  const bf16* kg = k + (static_cast<int64_t>(start) * G + g) * D;
  const bf16* vg = v + (static_cast<int64_t>(start) * G + g) * D;
  const int n_tiles = (min(len, q0 + kBr) + kBc - 1) / kBc;  // key tiles at or below the diagonal

  auto load_kv = [&](int j) {
    const int kb = j * kBc, stage = j & 1;
    load_swizzled_async<D, kBc, kThreads>(sK + stage * P::kKVBytes, k, kg + kb * kv_stride, kv_stride, len - kb, tid);
    load_swizzled_async<D, kBc, kThreads>(sV + stage * P::kKVBytes, v, vg + kb * kv_stride, kv_stride, len - kb, tid);
  };
  load_swizzled_async<D, kBr, kThreads>(sQ, q, q + (static_cast<int64_t>(start + q0) * H + h) * D, q_stride,
                                        len - q0, tid);
  load_kv(0);
  cp_async_commit();
  if (n_tiles > 1) load_kv(1);
  cp_async_commit();

  float o[D / 8][4];
#pragma unroll
  for (int n = 0; n < D / 8; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};
  const int wg_row0 = q0 + wg * 64;
  const int row_base = wg_row0 + warp * 16 + (lane >> 2);  // this thread's rows: row_base and row_base + 8

  for (int j = 0; j < n_tiles; ++j) {
    const int kb = j * kBc, stage = j & 1;
    const unsigned char* cK = sK + stage * P::kKVBytes;
    const unsigned char* cV = sV + stage * P::kKVBytes;
    cp_async_wait<1>();  // tile j (and Q) have landed
    __syncthreads();
    fence_proxy_async();

    // S = Q K^T (64 rows x 128 keys per warpgroup)
    float s[kBc / 8][4];
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk)
      wgmma_ss(s, desc_k_major<kBr>(sQ, wg * 64, kk), desc_k_major<kBc>(cK, 0, kk), kk > 0, WgmmaTrans<0, 0>{});
    wgmma_commit();
    wgmma_wait<0>();
    fence_operands(s);

    if (kb + kBc - 1 > wg_row0) {  // the tile reaches past this warpgroup's first row: keys after a row are masked
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

    // O += P V
    uint32_t p[kBc / 16][4];
#pragma unroll
    for (int kk = 0; kk < kBc / 16; ++kk) accumulators_to_a(s[2 * kk], s[2 * kk + 1], p[kk]);
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < kBc / 16; ++kk) wgmma_rs(o, p[kk], desc_mn_major<kBc>(cV, kk * 16, 0), 1);
    wgmma_commit();
    wgmma_wait<0>();
    fence_operands(o);
    fence_operands(p);

    __syncthreads();  // both warpgroups are done with this stage
    if (j + 2 < n_tiles) load_kv(j + 2);
    cp_async_commit();
  }

  store_attention_rows<D>(o, m, l, out + (static_cast<int64_t>(start) * H + h) * D, q_stride,
                          lse + static_cast<int64_t>(h) * T + start, row_base, len, scale, lane);
}

// ---------------------------------------------------------------------------------------------------------------
// backward

template <int D>
struct Bwd {
  static constexpr int kBc = 128, kBq = 64;  // keys per CTA, queries per step
  static constexpr int kKVBytes = kBc * D * 2, kQBytes = kBq * D * 2, kSBytes = kBc * kBq * 2;
  // K, V, 2 x (Q, dO), dS^T, 2 x (lse, delta), alignment slack
  static constexpr int kSmem = 2 * kKVBytes + 4 * kQBytes + kSBytes + 4 * kBq * 4 + 1024;
};

template <int D>
__global__ void __launch_bounds__(kThreads, 1)
    attention_backward_kernel(const bf16* __restrict__ q, const bf16* __restrict__ k, const bf16* __restrict__ v,
                              const bf16* __restrict__ dout, const float* __restrict__ lse,
                              const float* __restrict__ delta, const int* __restrict__ cu_seqlens, int64_t T, int H,
                              int per_group, float scale, float scale_log2, float* __restrict__ dq_acc,
                              float* __restrict__ dk_acc, float* __restrict__ dv_acc) {
  using P = Bwd<D>;
  constexpr int kBc = P::kBc, kBq = P::kBq;
  extern __shared__ unsigned char smem_raw[];
  unsigned char* sK = align_1024(smem_raw);
  unsigned char* sV = sK + P::kKVBytes;
  unsigned char* sQ = sV + P::kKVBytes;        // [2][kBq x D]
  unsigned char* sdO = sQ + 2 * P::kQBytes;    // [2][kBq x D]
  unsigned char* sdS = sdO + 2 * P::kQBytes;   // dS^T: kBc keys x kBq queries
  float* sL = reinterpret_cast<float*>(sdS + P::kSBytes);  // [2][kBq]
  float* sD = sL + 2 * kBq;                                 // [2][kBq]

  const int h = blockIdx.x, kblock = blockIdx.y, b = blockIdx.z;
  const int start = cu_seqlens[b], len = cu_seqlens[b + 1] - start;
  const int kb = kblock * kBc;
  if (kb >= len) return;
  const int G = H / per_group, g = h / per_group;
  const int tid = threadIdx.x, wg = tid >> 7, warp = (tid >> 5) & 3, lane = tid & 31;
  const int64_t q_stride = static_cast<int64_t>(H) * D, kv_stride = static_cast<int64_t>(G) * D;

  load_swizzled_async<D, kBc, kThreads>(sK, k, k + (static_cast<int64_t>(start + kb) * G + g) * D, kv_stride,
                                        len - kb, tid);
  load_swizzled_async<D, kBc, kThreads>(sV, v, v + (static_cast<int64_t>(start + kb) * G + g) * D, kv_stride,
                                        len - kb, tid);
  const int i_first = kb / kBq, i_last = (len - 1) / kBq;
  const float* lse_h = lse + static_cast<int64_t>(h) * T + start;
  const float* delta_h = delta + static_cast<int64_t>(h) * T + start;
  auto load_queries = [&](int i, int stage) {
    const int q0 = i * kBq;
    const int64_t offset = (static_cast<int64_t>(start + q0) * H + h) * D;
    load_swizzled_async<D, kBq, kThreads>(sQ + stage * P::kQBytes, q, q + offset, q_stride, len - q0, tid);
    load_swizzled_async<D, kBq, kThreads>(sdO + stage * P::kQBytes, dout, dout + offset, q_stride, len - q0, tid);
    load_row_stats_async<kBq>(sL + stage * kBq, sD + stage * kBq, lse_h, delta_h, q0, len, tid);
  };
  load_queries(i_first, 0);
  cp_async_commit();

  float dk[D / 8][4], dv[D / 8][4];
#pragma unroll
  for (int n = 0; n < D / 8; ++n)
#pragma unroll
    for (int e = 0; e < 4; ++e) dk[n][e] = dv[n][e] = 0.0f;
  const int key_local = wg * 64 + warp * 16 + (lane >> 2);  // this thread's keys: key_local and key_local + 8
  const int key_base = kb + key_local;

  for (int i = i_first; i <= i_last; ++i) {
    const int stage = (i - i_first) & 1;
    if (i < i_last) load_queries(i + 1, stage ^ 1);
    cp_async_commit();
    cp_async_wait<1>();  // K, V and this step's queries have landed
    __syncthreads();
    fence_proxy_async();
    const unsigned char* cQ = sQ + stage * P::kQBytes;
    const unsigned char* cdO = sdO + stage * P::kQBytes;
    const float* cL = sL + stage * kBq;
    const float* cD = sD + stage * kBq;
    const int q0 = i * kBq;

    // S^T = K Q^T, dP^T = V dO^T (64 keys x 64 queries per warpgroup)
    float st[kBq / 8][4], dpt[kBq / 8][4];
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk)
      wgmma_ss(st, desc_k_major<kBc>(sK, wg * 64, kk), desc_k_major<kBq>(cQ, 0, kk), kk > 0, WgmmaTrans<0, 0>{});
    wgmma_commit();
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk)
      wgmma_ss(dpt, desc_k_major<kBc>(sV, wg * 64, kk), desc_k_major<kBq>(cdO, 0, kk), kk > 0, WgmmaTrans<0, 0>{});
    wgmma_commit();
    wgmma_wait<1>();
    fence_operands(st);

    // P^T = exp(scale S^T - lse), 0 where the query precedes the key or lies past the sequence
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
      }
    wgmma_wait<0>();
    fence_operands(dpt);
    // dS^T = P^T (dP^T - delta); both as A fragments (keys x queries), dS^T also to shared memory for dQ
    uint32_t pa[kBq / 16][4], da[kBq / 16][4];
#pragma unroll
    for (int n = 0; n < kBq / 8; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e) dpt[n][e] = st[n][e] * (dpt[n][e] - cD[n * 8 + 2 * (lane & 3) + (e & 1)]);
#pragma unroll
    for (int kk = 0; kk < kBq / 16; ++kk) {
      accumulators_to_a(st[2 * kk], st[2 * kk + 1], pa[kk]);
      accumulators_to_a(dpt[2 * kk], dpt[2 * kk + 1], da[kk]);
      const int byte = 4 * (lane & 3);  // within the 16-byte chunk
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int r = key_local + (e & 1) * 8, chunk = 2 * kk + (e >> 1);
        *reinterpret_cast<uint32_t*>(sdS + swizzled_offset<kBc>(r, chunk) + byte) = da[kk][e];
      }
    }

    // dV += P^T dO, dK += dS^T Q (scale applied at the end)
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < kBq / 16; ++kk) wgmma_rs(dv, pa[kk], desc_mn_major<kBq>(cdO, kk * 16, 0), 1);
#pragma unroll
    for (int kk = 0; kk < kBq / 16; ++kk) wgmma_rs(dk, da[kk], desc_mn_major<kBq>(cQ, kk * 16, 0), 1);
    wgmma_commit();

    fence_proxy_async();
    __syncthreads();  // dS^T complete

    // dQ (kBq x D / 2 per warpgroup) = dS K: A = dS^T's tile read MN-major, B = K read MN-major
    float dqa[D / 16][4];
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < kBc / 16; ++kk)
      wgmma_ss(dqa, desc_mn_major<kBc>(sdS, kk * 16, 0), desc_mn_major<kBc>(sK, kk * 16, wg * (D / 2)), kk > 0,
               WgmmaTrans<1, 1>{});
    wgmma_commit();
    wgmma_wait<0>();
    fence_operands(dqa);
    fence_operands(dv);
    fence_operands(dk);
    fence_operands(pa);
    fence_operands(da);
    atomic_add_rows<D / 2>(dq_acc + (static_cast<int64_t>(start) * H + h) * D + wg * (D / 2), q_stride, dqa, scale,
                           q0 + warp * 16 + (lane >> 2), len, lane);
    __syncthreads();  // sdS and this stage's buffers are free again
  }

  const int64_t kv0 = (static_cast<int64_t>(start) * G + g) * D;
  atomic_add_rows<D>(dk_acc + kv0, kv_stride, dk, scale, key_base, len, lane);
  atomic_add_rows<D>(dv_acc + kv0, kv_stride, dv, 1.0f, key_base, len, lane);
}

template <int D>
void forward(const void* q, const void* k, const void* v, const int* cu_seqlens, int64_t tokens, int64_t sequences,
             int64_t max_seqlen, int64_t heads, int64_t groups, float scale, void* out, float* lse,
             cudaStream_t stream) {
  constexpr auto kernel = attention_forward_kernel<D>;
  allow_dynamic_smem<kernel>(Fwd<D>::kSmem);
  const int64_t qblocks = (max_seqlen + Fwd<D>::kBr - 1) / Fwd<D>::kBr;
  SLIME_CHECK(qblocks <= 65535, "attention_forward: max_seqlen ", max_seqlen, " too long");
  const dim3 grid(static_cast<unsigned>(heads), static_cast<unsigned>(qblocks), static_cast<unsigned>(sequences));
  kernel<<<grid, kThreads, Fwd<D>::kSmem, stream>>>(
      static_cast<const bf16*>(q), static_cast<const bf16*>(k), static_cast<const bf16*>(v), cu_seqlens, tokens,
      static_cast<int>(heads), static_cast<int>(heads / groups), scale, scale * kLog2e, static_cast<bf16*>(out), lse);
  cudaCheckLaunch("attention_forward_kernel (sm90)");
}

template <int D>
void backward(const void* q, const void* k, const void* v, const float* lse, const float* delta, const void* dout,
              const int* cu_seqlens, int64_t tokens, int64_t sequences, int64_t max_seqlen, int64_t heads,
              int64_t groups, float scale, float* dq_acc, float* dk_acc, float* dv_acc, cudaStream_t stream) {
  constexpr auto kernel = attention_backward_kernel<D>;
  allow_dynamic_smem<kernel>(Bwd<D>::kSmem);
  const int64_t kblocks = (max_seqlen + Bwd<D>::kBc - 1) / Bwd<D>::kBc;
  SLIME_CHECK(kblocks <= 65535, "attention_backward: max_seqlen ", max_seqlen, " too long");
  const dim3 grid(static_cast<unsigned>(heads), static_cast<unsigned>(kblocks), static_cast<unsigned>(sequences));
  kernel<<<grid, kThreads, Bwd<D>::kSmem, stream>>>(
      static_cast<const bf16*>(q), static_cast<const bf16*>(k), static_cast<const bf16*>(v),
      static_cast<const bf16*>(dout), lse, delta, cu_seqlens, tokens, static_cast<int>(heads),
      static_cast<int>(heads / groups), scale, scale * kLog2e, dq_acc, dk_acc, dv_acc);
  cudaCheckLaunch("attention_backward_kernel (sm90)");
}

}  // namespace

bool built() { return true; }

void attention_forward(const void* q, const void* k, const void* v, const int* cu_seqlens, int64_t tokens,
                       int64_t sequences, int64_t max_seqlen, int64_t heads, int64_t groups, int64_t head_dim,
                       float scale, void* out, float* lse, cudaStream_t stream) {
  if (head_dim == 64)
    forward<64>(q, k, v, cu_seqlens, tokens, sequences, max_seqlen, heads, groups, scale, out, lse, stream);
  else
    forward<128>(q, k, v, cu_seqlens, tokens, sequences, max_seqlen, heads, groups, scale, out, lse, stream);
}

void attention_backward(const void* q, const void* k, const void* v, const float* lse, const float* delta,
                        const void* dout, const int* cu_seqlens, int64_t tokens, int64_t sequences,
                        int64_t max_seqlen, int64_t heads, int64_t groups, int64_t head_dim, float scale,
                        float* dq_acc, float* dk_acc, float* dv_acc, cudaStream_t stream) {
  if (head_dim == 64)
    backward<64>(q, k, v, lse, delta, dout, cu_seqlens, tokens, sequences, max_seqlen, heads, groups, scale, dq_acc,
                 dk_acc, dv_acc, stream);
  else
    backward<128>(q, k, v, lse, delta, dout, cu_seqlens, tokens, sequences, max_seqlen, heads, groups, scale,
                  dq_acc, dk_acc, dv_acc, stream);
}

#else  // built without sm_90a

bool built() { return false; }

void attention_forward(const void*, const void*, const void*, const int*, int64_t, int64_t, int64_t, int64_t,
                       int64_t, int64_t, float, void*, float*, cudaStream_t) {
  throw_error("attention: the Hopper kernels were not built (the build does not target sm_90)");
}
void attention_backward(const void*, const void*, const void*, const float*, const float*, const void*, const int*,
                        int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, float, float*, float*, float*,
                        cudaStream_t) {
  throw_error("attention: the Hopper kernels were not built (the build does not target sm_90)");
}

#endif

}  // namespace slime::cuda::sm90
