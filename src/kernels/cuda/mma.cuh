// Tensor-core building blocks shared by the attention kernels (attention.cu, attention_sm90.cu, paged_attention.cu):
// cp.async copies and tile loads into shared memory, ldmatrix, the m16n8k16 bf16 mma with fp32 accumulation and its
// fragment layouts, the FlashAttention-2 inner steps (S = Q K^T, the online softmax, O += P V), the epilogues that
// write a fragment's rows out, and the opt-in to more than 48 KB of dynamic shared memory. Device code: include from
// .cu files only.
#pragma once

#include <cuda_bf16.h>
#include <cstdint>

#include "kernels/cuda/common.cuh"

namespace slime::cuda {

constexpr float kLog2e = 1.4426950408889634f;  // exp(x) = exp2(x log2 e)

__device__ __forceinline__ uint32_t smem_u32(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// 16 bytes global -> shared, asynchronously; zero-filled (nothing read) when !valid.
__device__ __forceinline__ void cp_async_16(void* smem, const void* gmem, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_u32(smem)), "l"(gmem),
               "r"(valid ? 16 : 0));
}
__device__ __forceinline__ void cp_async_4(void* smem, const void* gmem, bool valid) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(smem_u32(smem)), "l"(gmem),
               "r"(valid ? 4 : 0));
}
// The backward's per-query statistics of rows q0 .. q0 + ROWS - 1 (lse and delta, fp32, rows >= valid zero-filled)
// into sL[ROWS], sD[ROWS] by cp.async, one thread per row (tid < ROWS).
template <int ROWS>
__device__ __forceinline__ void load_row_stats_async(float* sL, float* sD, const float* lse, const float* delta,
                                                     int q0, int valid, int tid) {
  if (tid >= ROWS) return;
  const bool ok = q0 + tid < valid;
  cp_async_4(sL + tid, ok ? lse + q0 + tid : lse, ok);
  cp_async_4(sD + tid, ok ? delta + q0 + tid : delta, ok);
}

// ROWS rows of COLS bf16 (global row stride `stride` elements, from `src`) into a shared-memory tile by cp.async,
// 16 bytes at a time; chunk c (0 .. COLS / 8 - 1) of row r goes to tile + byte_offset(r, c) (the tile's layout).
// Rows >= valid are zero-filled (`base` is any valid global address, given to the zero-filling copies).
template <int COLS, int ROWS, int THREADS, class ByteOffset>
__device__ __forceinline__ void load_tile_async(unsigned char* tile, ByteOffset byte_offset, const __nv_bfloat16* base,
                                                const __nv_bfloat16* src, int64_t stride, int valid, int tid) {
  constexpr int kChunks = COLS / 8;
  static_assert((ROWS * kChunks) % THREADS == 0, "tile load must divide evenly among the threads");
#pragma unroll
  for (int it = 0; it < ROWS * kChunks / THREADS; ++it) {
    const int i = it * THREADS + tid;
    const int r = i / kChunks, c = i % kChunks;
    const bool ok = r < valid;
    cp_async_16(tile + byte_offset(r, c), ok ? src + r * stride + c * 8 : base, ok);
  }
}

__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_u32(p)));
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_u32(p)));
}

// d (16x8 fp32) += a (16x16 bf16, row-major) * b (16x8 bf16, "col": each column's 16 k values).
// Fragments (g = lane / 4, t = lane % 4): a = {(g, 2t..2t+1), (g+8, 2t..), (g, 2t+8..), (g+8, 2t+8..)};
// b = {(k 2t..2t+1, n g), (k 2t+8.., n g)}; d = {(g, 2t), (g, 2t+1), (g+8, 2t), (g+8, 2t+1)}.
__device__ __forceinline__ void mma_bf16(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Two floats -> one register of two bf16, `lo` in the low half (the lower column index of an mma fragment).
__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
  __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&v);
}

// Two m16n8 fp32 accumulator tiles (columns 0-7 and 8-15) -> the bf16 A fragment of an m16k16 mma.
__device__ __forceinline__ void accumulators_to_a(const float (&left)[4], const float (&right)[4], uint32_t (&a)[4]) {
  a[0] = pack_bf16(left[0], left[1]);
  a[1] = pack_bf16(left[2], left[3]);
  a[2] = pack_bf16(right[0], right[1]);
  a[3] = pack_bf16(right[2], right[3]);
}

// S = Q K^T for one warp's 16 query rows and KEYS key rows: qf holds the rows' A fragments (D / 16 of them, from
// ldmatrix_x4), sK points at the first key row in shared memory (row stride `stride` bf16 elements), and s receives
// KEYS / 8 m16n8 fp32 accumulator tiles (zeroed here).
template <int D, int KEYS>
__device__ __forceinline__ void qk_scores(float (&s)[KEYS / 8][4], const uint32_t (&qf)[D / 16][4],
                                          const __nv_bfloat16* sK, int stride, int lane) {
#pragma unroll
  for (int n = 0; n < KEYS / 8; ++n) s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.0f;
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk) {
#pragma unroll
    for (int nn = 0; nn < KEYS / 16; ++nn) {
      uint32_t kf[4];
      ldmatrix_x4(kf, sK + (nn * 16 + (lane & 7) + ((lane >> 4) << 3)) * stride + kk * 16 + ((lane >> 3) & 1) * 8);
      mma_bf16(s[2 * nn], qf[kk], kf[0], kf[1]);
      mma_bf16(s[2 * nn + 1], qf[kk], kf[2], kf[3]);
    }
  }
}

// One online-softmax step of FlashAttention-2 for a warp's 16 rows (this thread's two rows rh = 0, 1) over KEYS new
// scores s (masked ones -INFINITY): updates the running max m and sum l (m in raw-score units; scale > 0, so the max
// of the raw scores is the max of the scaled ones), rescales the output accumulators o [D / 8 tiles], and turns s
// into the unnormalised probabilities exp2(s * scale_log2 - m * scale_log2).
template <int D, int KEYS>
__device__ __forceinline__ void online_softmax_step(float (&s)[KEYS / 8][4], float (&m)[2], float (&l)[2],
                                                    float (&o)[D / 8][4], float scale_log2) {
#pragma unroll
  for (int rh = 0; rh < 2; ++rh) {
    float mx = m[rh];
#pragma unroll
    for (int n = 0; n < KEYS / 8; ++n) mx = fmaxf(mx, fmaxf(s[n][2 * rh], s[n][2 * rh + 1]));
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
    const float msc = mx == -INFINITY ? 0.0f : mx * scale_log2;
    const float corr = exp2f(m[rh] * scale_log2 - msc);
    m[rh] = mx;
    float sum = 0.0f;
#pragma unroll
    for (int n = 0; n < KEYS / 8; ++n) {
      s[n][2 * rh] = exp2f(fmaf(s[n][2 * rh], scale_log2, -msc));
      s[n][2 * rh + 1] = exp2f(fmaf(s[n][2 * rh + 1], scale_log2, -msc));
      sum += s[n][2 * rh] + s[n][2 * rh + 1];
    }
    l[rh] = l[rh] * corr + sum;
#pragma unroll
    for (int n = 0; n < D / 8; ++n) {
      o[n][2 * rh] *= corr;
      o[n][2 * rh + 1] *= corr;
    }
  }
}

// O += P V for a warp's 16 rows: p holds the KEYS probabilities as accumulator tiles (online_softmax_step's s), sV
// the KEYS value rows in shared memory (row stride `stride` bf16 elements), o the D / 8 output tiles.
template <int D, int KEYS>
__device__ __forceinline__ void pv_accumulate(float (&o)[D / 8][4], const float (&p)[KEYS / 8][4],
                                              const __nv_bfloat16* sV, int stride, int lane) {
#pragma unroll
  for (int kk = 0; kk < KEYS / 16; ++kk) {
    uint32_t pa[4];
    accumulators_to_a(p[2 * kk], p[2 * kk + 1], pa);
#pragma unroll
    for (int dn = 0; dn < D / 16; ++dn) {
      uint32_t vf[4];
      ldmatrix_x4_trans(vf, sV + (kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * stride + dn * 16 + (lane >> 4) * 8);
      mma_bf16(o[2 * dn], pa, vf[0], vf[1]);
      mma_bf16(o[2 * dn + 1], pa, vf[2], vf[3]);
    }
  }
}

// The forward's last step for this thread's two rows, row_base and row_base + 8 (row_base = the warp's first row +
// lane / 4): O / l rounded to bf16 into out + row * stride (D columns), and lse[row] = m scale + log l; rows >= valid
// are skipped. l is this thread's partial row sum (online_softmax_step's), reduced here over the row's four lanes.
template <int D>
__device__ __forceinline__ void store_attention_rows(const float (&o)[D / 8][4], const float (&m)[2],
                                                     const float (&l)[2], __nv_bfloat16* out, int64_t stride,
                                                     float* lse, int row_base, int valid, float scale, int lane) {
#pragma unroll
  for (int rh = 0; rh < 2; ++rh) {
    float sum = l[rh];
    sum += __shfl_xor_sync(0xffffffffu, sum, 1);
    sum += __shfl_xor_sync(0xffffffffu, sum, 2);
    const float inv = sum > 0.0f ? 1.0f / sum : 0.0f;
    const int row = row_base + rh * 8;
    if (row < valid) {
      __nv_bfloat16* orow = out + row * stride + 2 * (lane & 3);
#pragma unroll
      for (int n = 0; n < D / 8; ++n)
        *reinterpret_cast<__nv_bfloat162*>(orow + n * 8) =
            __floats2bfloat162_rn(o[n][2 * rh] * inv, o[n][2 * rh + 1] * inv);
      if ((lane & 3) == 0) lse[row] = m[rh] * scale + logf(sum);
    }
  }
}

// scale times this thread's two rows (row_base and row_base + 8, as above) of a block of COLS / 8 m16n8 accumulator
// tiles, added into the fp32 rows dst + row * stride with float2 atomics; rows >= valid are skipped.
template <int COLS>
__device__ __forceinline__ void atomic_add_rows(float* dst, int64_t stride, const float (&acc)[COLS / 8][4],
                                                float scale, int row_base, int valid, int lane) {
#pragma unroll
  for (int rh = 0; rh < 2; ++rh) {
    const int row = row_base + rh * 8;
    if (row >= valid) continue;
    float* p = dst + row * stride + 2 * (lane & 3);
#pragma unroll
    for (int n = 0; n < COLS / 8; ++n)
      atomicAdd(reinterpret_cast<float2*>(p + n * 8), make_float2(scale * acc[n][2 * rh], scale * acc[n][2 * rh + 1]));
  }
}

__device__ __forceinline__ float warp_max(float v) {
  for (int offset = 16; offset > 0; offset >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
  return v;
}

// Kernels using more than 48 KB of dynamic shared memory must say so once, before their first launch.
template <auto Kernel>
void allow_dynamic_smem(int bytes) {
  static const bool configured = [bytes] {
    cudaCheck(cudaFuncSetAttribute(Kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
    return true;
  }();
  (void)configured;
}

}  // namespace slime::cuda
