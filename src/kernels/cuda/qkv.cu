// The fused QKV projection's output to attention operands and back: bias, QK-norm (RMSNorm per head vector) and
// RoPE fused into one pass over qkv. fp32 arithmetic whatever the storage precision; the CPU composition
// (cpu::qkv_to_heads, rmsnorm, rope in kernels/cpu) is the reference.
//
// Work unit: a head vector (token t, slot s of the grouped row: per KV group, its H/G query heads, then K, then V).
// Each lane holds matching elements of both halves, i and i + d/2, so RoPE needs no exchange and the RMSNorm
// statistics are sums over the lanes of the vector. Vector path (head_dim 64, 128, 256, aligned pointers): a group
// of d / (2V) lanes per head vector, V = 16 bytes of elements per lane and half, several vectors per warp.
// Generic path (any even head_dim): one warp per vector, lane l holding i = l, l + 32, ...
// Backward: block (slot, chunk of kChunk tokens) so that the bias and norm-weight gradients reduce in a fixed
// order: per-lane register sums over a fixed token subset, merged across lanes and warps in a fixed order into
// per-chunk partials (a stream-ordered workspace), then summed over chunks in chunk order by small second kernels.
// No atomics: the gradients are bit-identical run to run.
#include <algorithm>
#include <cstdint>
#include <initializer_list>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/ops.h"

namespace slime::cuda {
namespace {

constexpr int kForwardThreads = 256;  // 8 head vectors per block
constexpr int kBackwardWarps = 4;
constexpr int kChunk = 64;  // tokens per backward block (fixed: the reduction order depends on T only)
constexpr int kThreads = 256;

struct Geometry {
  int heads, groups, head_dim, per_group, slots, half;
  int64_t tokens, width;  // width = slots * head_dim
};

// What slot s of a grouped qkv row is. kind 0: query head `index`; 1: key of group `index`; 2: value of group `index`.
struct Slot {
  int kind, index, group;
};
__device__ __forceinline__ Slot decode_slot(const Geometry& g, int s) {
  const int group = s / (g.per_group + 2), j = s - group * (g.per_group + 2);
  if (j < g.per_group) return Slot{0, group * g.per_group + j, group};
  return Slot{j == g.per_group ? 1 : 2, group, group};
}

// P = pairs per lane (ceil(half / 32) rounded up to a power of two).
template <class T, int P>
__global__ void qkv_forward_kernel(const T* __restrict__ qkv, const float* __restrict__ bias,
                                   const float* __restrict__ q_norm, const float* __restrict__ k_norm, float eps,
                                   const float* __restrict__ cos, const float* __restrict__ sin, T* __restrict__ q,
                                   T* __restrict__ k, T* __restrict__ v, Geometry g) {
  const int64_t unit = static_cast<int64_t>(blockIdx.x) * (blockDim.x >> 5) + (threadIdx.x >> 5);
  if (unit >= g.tokens * g.slots) return;  // whole warps leave together
  const int lane = threadIdx.x & 31;
  const int64_t t = unit / g.slots;
  const int s = static_cast<int>(unit - t * g.slots);
  const Slot slot = decode_slot(g, s);
  const int64_t d = g.head_dim, half = g.half;
  const T* src = qkv + t * g.width + s * d;
  const float* b = bias ? bias + s * d : nullptr;

  float x1[P], x2[P];
#pragma unroll
  for (int p = 0; p < P; ++p) {
    const int i = lane + 32 * p;
    x1[p] = x2[p] = 0.0f;
    if (i < half) {
      x1[p] = to_float(src[i]);
      x2[p] = to_float(src[i + half]);
      if (b) {
        x1[p] += b[i];
        x2[p] += b[i + half];
      }
    }
  }
  if (slot.kind == 2) {  // V: bias only
    T* dst = v + (t * g.groups + slot.index) * d;
#pragma unroll
    for (int p = 0; p < P; ++p) {
      const int i = lane + 32 * p;
      if (i < half) {
        dst[i] = from_float<T>(x1[p]);
        dst[i + half] = from_float<T>(x2[p]);
      }
    }
    return;
  }
  const float* w = slot.kind == 0 ? q_norm : k_norm;
  T* dst = slot.kind == 0 ? q + (t * g.heads + slot.index) * d : k + (t * g.groups + slot.index) * d;
  if (w) {  // RMSNorm of the head vector (cpu::rmsnorm_forward: y = w * (x * rstd))
    float sum_sq = 0.0f;
#pragma unroll
    for (int p = 0; p < P; ++p) sum_sq += x1[p] * x1[p] + x2[p] * x2[p];
    const float rstd = 1.0f / sqrtf(warp_sum(sum_sq) / static_cast<float>(d) + eps);
#pragma unroll
    for (int p = 0; p < P; ++p) {
      const int i = lane + 32 * p;
      if (i < half) {
        x1[p] = w[i] * (x1[p] * rstd);
        x2[p] = w[i + half] * (x2[p] * rstd);
      }
    }
  }
  const float* ct = cos + t * half;
  const float* st = sin + t * half;
#pragma unroll
  for (int p = 0; p < P; ++p) {
    const int i = lane + 32 * p;
    if (i < half) {
      const float c = ct[i], sn = st[i];
      dst[i] = from_float<T>(x1[p] * c - x2[p] * sn);
      dst[i + half] = from_float<T>(x2[p] * c + x1[p] * sn);
    }
  }
}

// Block (slot s = blockIdx.x, chunk = blockIdx.y); warp w handles tokens chunk * kChunk + w, + kBackwardWarps, ...
// part_bias [chunks, width] receives the chunk's column sums of dqkv (when not null); part_w [chunks, width] the
// chunk's sums of dy * x * rstd for normed q/k slots (when not null).
template <class T, int P>
__global__ void __launch_bounds__(kBackwardWarps * 32, 8)
    qkv_backward_kernel(const T* __restrict__ qkv, const float* __restrict__ bias, const float* __restrict__ q_norm,
                        const float* __restrict__ k_norm, float eps, const float* __restrict__ cos,
                        const float* __restrict__ sin, const T* __restrict__ dq, const T* __restrict__ dk,
                        const T* __restrict__ dv, T* __restrict__ dqkv, float* __restrict__ part_bias,
                        float* __restrict__ part_w, Geometry g) {
  constexpr int kMaxD = 64 * P;
  __shared__ float sh_bias[kBackwardWarps][kMaxD];
  __shared__ float sh_w[kBackwardWarps][kMaxD];
  const int s = blockIdx.x;
  const int64_t chunk = blockIdx.y;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const Slot slot = decode_slot(g, s);
  const int64_t d = g.head_dim, half = g.half;
  const float* w = slot.kind == 0 ? q_norm : slot.kind == 1 ? k_norm : nullptr;
  const float* b = bias ? bias + s * d : nullptr;
  const bool want_w = w != nullptr && part_w != nullptr;

  float db1[P], db2[P], dw1[P], dw2[P];
#pragma unroll
  for (int p = 0; p < P; ++p) db1[p] = db2[p] = dw1[p] = dw2[p] = 0.0f;

  const int64_t t_end = std::min<int64_t>(g.tokens, (chunk + 1) * kChunk);
  for (int64_t t = chunk * kChunk + warp; t < t_end; t += kBackwardWarps) {
    float g1[P], g2[P];  // gradient w.r.t. the (normed) vector before the rotation
    if (slot.kind == 2) {
      const T* src = dv + (t * g.groups + slot.index) * d;
#pragma unroll
      for (int p = 0; p < P; ++p) {
        const int i = lane + 32 * p;
        g1[p] = g2[p] = 0.0f;
        if (i < half) {
          g1[p] = to_float(src[i]);
          g2[p] = to_float(src[i + half]);
        }
      }
    } else {
      const T* src = slot.kind == 0 ? dq + (t * g.heads + slot.index) * d : dk + (t * g.groups + slot.index) * d;
      const float* ct = cos + t * half;
      const float* st = sin + t * half;
#pragma unroll
      for (int p = 0; p < P; ++p) {
        const int i = lane + 32 * p;
        g1[p] = g2[p] = 0.0f;
        if (i < half) {
          const float y1 = to_float(src[i]), y2 = to_float(src[i + half]);
          const float c = ct[i], sn = st[i];
          g1[p] = y1 * c + y2 * sn;  // rotation by -angle
          g2[p] = y2 * c - y1 * sn;
        }
      }
      if (w) {  // cpu::rmsnorm_backward: dx = rstd * w * dy - x * rstd^3 / d * sum(w * dy * x)
        const T* xs = qkv + t * g.width + s * d;
        float x1[P], x2[P];
        float sum_sq = 0.0f, dot = 0.0f;
#pragma unroll
        for (int p = 0; p < P; ++p) {
          const int i = lane + 32 * p;
          x1[p] = x2[p] = 0.0f;
          if (i < half) {
            x1[p] = to_float(xs[i]);
            x2[p] = to_float(xs[i + half]);
            if (b) {
              x1[p] += b[i];
              x2[p] += b[i + half];
            }
            dot += w[i] * g1[p] * x1[p] + w[i + half] * g2[p] * x2[p];
          }
          sum_sq += x1[p] * x1[p] + x2[p] * x2[p];
        }
        const float rstd = 1.0f / sqrtf(warp_sum(sum_sq) / static_cast<float>(d) + eps);
        dot = warp_sum(dot);
        const float coef = dot * rstd * rstd * rstd / static_cast<float>(d);
#pragma unroll
        for (int p = 0; p < P; ++p) {
          const int i = lane + 32 * p;
          if (i < half) {
            if (want_w) {
              dw1[p] += g1[p] * x1[p] * rstd;
              dw2[p] += g2[p] * x2[p] * rstd;
            }
            g1[p] = rstd * w[i] * g1[p] - coef * x1[p];
            g2[p] = rstd * w[i + half] * g2[p] - coef * x2[p];
          }
        }
      }
    }
    T* dst = dqkv + t * g.width + s * d;
#pragma unroll
    for (int p = 0; p < P; ++p) {
      const int i = lane + 32 * p;
      if (i < half) {
        dst[i] = from_float<T>(g1[p]);
        dst[i + half] = from_float<T>(g2[p]);
        db1[p] += g1[p];
        db2[p] += g2[p];
      }
    }
  }

  // Merge the warps in warp order, one thread per element of the head vector.
  if (part_bias == nullptr && !want_w) return;  // block-uniform
#pragma unroll
  for (int p = 0; p < P; ++p) {
    const int i = lane + 32 * p;
    if (i < half) {
      sh_bias[warp][i] = db1[p];
      sh_bias[warp][i + half] = db2[p];
      sh_w[warp][i] = dw1[p];
      sh_w[warp][i + half] = dw2[p];
    }
  }
  __syncthreads();
  for (int i = threadIdx.x; i < d; i += blockDim.x) {
    float acc_b = 0.0f, acc_w = 0.0f;
#pragma unroll
    for (int k = 0; k < kBackwardWarps; ++k) {
      acc_b += sh_bias[k][i];
      acc_w += sh_w[k][i];
    }
    if (part_bias) part_bias[chunk * g.width + s * d + i] = acc_b;
    if (want_w) part_w[chunk * g.width + s * d + i] = acc_w;
  }
}

// out[col] += sum over chunks c (in order) of part[c, col].
__global__ void column_sum_kernel(const float* __restrict__ part, int64_t chunks, int64_t width,
                                  float* __restrict__ out) {
  const int64_t col = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (col >= width) return;
  float acc = 0.0f;
#pragma unroll 8
  for (int64_t c = 0; c < chunks; ++c) acc += part[c * width + col];
  out[col] += acc;
}

// Block (element i = blockIdx.x, kind = blockIdx.y: 0 query heads, 1 keys): dnorm[i] += sum over chunks and the
// kind's slots of part_w[c, s * d + i]. Each thread sums a fixed strided subset in order, then a fixed block tree.
__global__ void norm_weight_grad_kernel(const float* __restrict__ part_w, int64_t chunks, Geometry g,
                                        float* __restrict__ dq_norm, float* __restrict__ dk_norm) {
  const int i = blockIdx.x, kind = blockIdx.y;
  float* out = kind == 0 ? dq_norm : dk_norm;
  if (out == nullptr) return;  // block-uniform
  const int per_slot_group = kind == 0 ? g.per_group : 1;
  const int64_t terms = chunks * g.groups * per_slot_group;  // (chunk, group, head within the group)
  float acc = 0.0f;
  for (int64_t n = threadIdx.x; n < terms; n += blockDim.x) {
    const int64_t c = n / (g.groups * per_slot_group);
    const int r = static_cast<int>(n - c * g.groups * per_slot_group);
    const int group = r / per_slot_group, j = r - group * per_slot_group;
    const int s = group * (g.per_group + 2) + (kind == 0 ? j : g.per_group);
    acc += part_w[c * g.width + static_cast<int64_t>(s) * g.head_dim + i];
  }
  acc = block_sum(acc);
  if (threadIdx.x == 0) out[i] += acc;
}

// ---------------------------------------------------------------------------------------------------------------
// The vector path (head_dim 64, 128, 256): lane l of a group of LPH lanes holds V = 16 bytes / sizeof(T)
// consecutive elements i = l * V .. of the first half and the matching ones of the second half, so each load and
// store is 16 bytes and a warp covers 32 / LPH head vectors at once; the RMSNorm sums reduce within the group.

template <class T>
struct Pack;
template <>
struct Pack<float> {
  static constexpr int V = 4;
  __device__ __forceinline__ static void load(const float* p, float* out) {
    const float4 v = *reinterpret_cast<const float4*>(p);
    out[0] = v.x;
    out[1] = v.y;
    out[2] = v.z;
    out[3] = v.w;
  }
  __device__ __forceinline__ static void store(float* p, const float* in) {
    *reinterpret_cast<float4*>(p) = make_float4(in[0], in[1], in[2], in[3]);
  }
};
template <>
struct Pack<__nv_bfloat16> {
  static constexpr int V = 8;
  __device__ __forceinline__ static void load(const __nv_bfloat16* p, float* out) {
    const uint4 raw = *reinterpret_cast<const uint4*>(p);
    const __nv_bfloat162* h = reinterpret_cast<const __nv_bfloat162*>(&raw);
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      const float2 f = __bfloat1622float2(h[k]);
      out[2 * k] = f.x;
      out[2 * k + 1] = f.y;
    }
  }
  __device__ __forceinline__ static void store(__nv_bfloat16* p, const float* in) {
    uint4 raw;
    __nv_bfloat162* h = reinterpret_cast<__nv_bfloat162*>(&raw);
#pragma unroll
    for (int k = 0; k < 4; ++k) h[k] = __floats2bfloat162_rn(in[2 * k], in[2 * k + 1]);  // as __float2bfloat16
    *reinterpret_cast<uint4*>(p) = raw;
  }
};

// V fp32 values (V a multiple of 4) from 16-byte aligned memory.
template <int V>
__device__ __forceinline__ void load_f32(const float* p, float* out) {
#pragma unroll
  for (int k = 0; k < V / 4; ++k) {
    const float4 v = reinterpret_cast<const float4*>(p)[k];
    out[4 * k] = v.x;
    out[4 * k + 1] = v.y;
    out[4 * k + 2] = v.z;
    out[4 * k + 3] = v.w;
  }
}

// Sum over the aligned group of LPH lanes (every lane of the warp must call it).
template <int LPH>
__device__ __forceinline__ float group_sum(float v) {
#pragma unroll
  for (int offset = LPH / 2; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

template <class T, int LPH>
__global__ void __launch_bounds__(kForwardThreads)
    qkv_forward_vec_kernel(const T* __restrict__ qkv, const float* __restrict__ bias, const float* __restrict__ q_norm,
                           const float* __restrict__ k_norm, float eps, const float* __restrict__ cos,
                           const float* __restrict__ sin, T* __restrict__ q, T* __restrict__ k, T* __restrict__ v,
                           Geometry g) {
  constexpr int V = Pack<T>::V, HPW = 32 / LPH;
  const int lane = threadIdx.x & 31, sub = lane / LPH, l = lane % LPH;
  const int64_t unit = (static_cast<int64_t>(blockIdx.x) * (blockDim.x >> 5) + (threadIdx.x >> 5)) * HPW + sub;
  const bool active = unit < g.tokens * g.slots;
  const int64_t u = active ? unit : 0;  // idle groups read unit 0 and store nothing
  const int64_t t = u / g.slots;
  const int s = static_cast<int>(u - t * g.slots);
  const Slot slot = decode_slot(g, s);
  const int64_t d = g.head_dim, half = g.half;
  const int i = l * V;
  float x1[V], x2[V];
  const T* src = qkv + t * g.width + s * d;
  Pack<T>::load(src + i, x1);
  Pack<T>::load(src + half + i, x2);
  if (bias) {
    float b1[V], b2[V];
    load_f32<V>(bias + s * d + i, b1);
    load_f32<V>(bias + s * d + half + i, b2);
#pragma unroll
    for (int e = 0; e < V; ++e) {
      x1[e] += b1[e];
      x2[e] += b2[e];
    }
  }
  float c[V], sn[V];
  load_f32<V>(cos + t * half + i, c);
  load_f32<V>(sin + t * half + i, sn);
  float sum_sq = 0.0f;
#pragma unroll
  for (int e = 0; e < V; ++e) sum_sq += x1[e] * x1[e] + x2[e] * x2[e];
  sum_sq = group_sum<LPH>(sum_sq);
  if (!active) return;  // no shuffle below
  if (slot.kind == 2) {
    T* dst = v + (t * g.groups + slot.index) * d;
    Pack<T>::store(dst + i, x1);
    Pack<T>::store(dst + half + i, x2);
    return;
  }
  const float* w = slot.kind == 0 ? q_norm : k_norm;
  T* dst = slot.kind == 0 ? q + (t * g.heads + slot.index) * d : k + (t * g.groups + slot.index) * d;
  if (w) {
    const float rstd = 1.0f / sqrtf(sum_sq / static_cast<float>(d) + eps);
    float w1[V], w2[V];
    load_f32<V>(w + i, w1);
    load_f32<V>(w + half + i, w2);
#pragma unroll
    for (int e = 0; e < V; ++e) {
      x1[e] = w1[e] * (x1[e] * rstd);
      x2[e] = w2[e] * (x2[e] * rstd);
    }
  }
  float o1[V], o2[V];
#pragma unroll
  for (int e = 0; e < V; ++e) {
    o1[e] = x1[e] * c[e] - x2[e] * sn[e];
    o2[e] = x2[e] * c[e] + x1[e] * sn[e];
  }
  Pack<T>::store(dst + i, o1);
  Pack<T>::store(dst + half + i, o2);
}

// As qkv_backward_kernel (same partials, same block and chunk geometry); a warp takes HPW tokens at a time, group
// `sub` token t0 + sub. The per-lane sums are merged across groups (a fixed butterfly), then across warps in order.
template <class T, int LPH>
__global__ void __launch_bounds__(kBackwardWarps * 32, 4)
    qkv_backward_vec_kernel(const T* __restrict__ qkv, const float* __restrict__ bias,
                            const float* __restrict__ q_norm, const float* __restrict__ k_norm, float eps,
                            const float* __restrict__ cos, const float* __restrict__ sin, const T* __restrict__ dq,
                            const T* __restrict__ dk, const T* __restrict__ dv, T* __restrict__ dqkv,
                            float* __restrict__ part_bias, float* __restrict__ part_w, Geometry g) {
  constexpr int V = Pack<T>::V, HPW = 32 / LPH, kD = 2 * V * LPH;  // kD = head_dim
  __shared__ float sh_bias[kBackwardWarps][kD];
  __shared__ float sh_w[kBackwardWarps][kD];
  const int s = blockIdx.x;
  const int64_t chunk = blockIdx.y;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, sub = lane / LPH, l = lane % LPH;
  const Slot slot = decode_slot(g, s);
  const int64_t d = g.head_dim, half = g.half;
  const int i = l * V;
  const float* w = slot.kind == 0 ? q_norm : slot.kind == 1 ? k_norm : nullptr;
  const float* b = bias ? bias + s * d : nullptr;
  const bool want_w = w != nullptr && part_w != nullptr;

  float db1[V], db2[V], dw1[V], dw2[V];
#pragma unroll
  for (int e = 0; e < V; ++e) db1[e] = db2[e] = dw1[e] = dw2[e] = 0.0f;

  const int64_t t_end = std::min<int64_t>(g.tokens, (chunk + 1) * kChunk);
  for (int64_t t0 = chunk * kChunk + static_cast<int64_t>(warp) * HPW; t0 < t_end;
       t0 += static_cast<int64_t>(kBackwardWarps) * HPW) {
    const bool active = t0 + sub < t_end;
    const int64_t t = active ? t0 + sub : t0;  // idle groups redo token t0 and store nothing
    float g1[V], g2[V];
    if (slot.kind == 2) {
      const T* src = dv + (t * g.groups + slot.index) * d;
      Pack<T>::load(src + i, g1);
      Pack<T>::load(src + half + i, g2);
    } else {
      const T* src = slot.kind == 0 ? dq + (t * g.heads + slot.index) * d : dk + (t * g.groups + slot.index) * d;
      float y1[V], y2[V], c[V], sn[V];
      Pack<T>::load(src + i, y1);
      Pack<T>::load(src + half + i, y2);
      load_f32<V>(cos + t * half + i, c);
      load_f32<V>(sin + t * half + i, sn);
#pragma unroll
      for (int e = 0; e < V; ++e) {
        g1[e] = y1[e] * c[e] + y2[e] * sn[e];  // rotation by -angle
        g2[e] = y2[e] * c[e] - y1[e] * sn[e];
      }
      if (w) {  // block-uniform
        const T* xs = qkv + t * g.width + s * d;
        float x1[V], x2[V], w1[V], w2[V];
        Pack<T>::load(xs + i, x1);
        Pack<T>::load(xs + half + i, x2);
        if (b) {
          float b1[V], b2[V];
          load_f32<V>(b + i, b1);
          load_f32<V>(b + half + i, b2);
#pragma unroll
          for (int e = 0; e < V; ++e) {
            x1[e] += b1[e];
            x2[e] += b2[e];
          }
        }
        load_f32<V>(w + i, w1);
        load_f32<V>(w + half + i, w2);
        float sum_sq = 0.0f, dot = 0.0f;
#pragma unroll
        for (int e = 0; e < V; ++e) {
          sum_sq += x1[e] * x1[e] + x2[e] * x2[e];
          dot += w1[e] * g1[e] * x1[e] + w2[e] * g2[e] * x2[e];
        }
        const float rstd = 1.0f / sqrtf(group_sum<LPH>(sum_sq) / static_cast<float>(d) + eps);
        dot = group_sum<LPH>(dot);
        const float coef = dot * rstd * rstd * rstd / static_cast<float>(d);
#pragma unroll
        for (int e = 0; e < V; ++e) {
          if (want_w && active) {
            dw1[e] += g1[e] * x1[e] * rstd;
            dw2[e] += g2[e] * x2[e] * rstd;
          }
          g1[e] = rstd * w1[e] * g1[e] - coef * x1[e];
          g2[e] = rstd * w2[e] * g2[e] - coef * x2[e];
        }
      }
    }
    if (active) {
      T* dst = dqkv + t * g.width + s * d;
      Pack<T>::store(dst + i, g1);
      Pack<T>::store(dst + half + i, g2);
#pragma unroll
      for (int e = 0; e < V; ++e) {
        db1[e] += g1[e];
        db2[e] += g2[e];
      }
    }
  }

  if (part_bias == nullptr && !want_w) return;  // block-uniform
#pragma unroll
  for (int offset = LPH; offset < 32; offset <<= 1) {
#pragma unroll
    for (int e = 0; e < V; ++e) {
      db1[e] += __shfl_xor_sync(0xffffffffu, db1[e], offset);
      db2[e] += __shfl_xor_sync(0xffffffffu, db2[e], offset);
      dw1[e] += __shfl_xor_sync(0xffffffffu, dw1[e], offset);
      dw2[e] += __shfl_xor_sync(0xffffffffu, dw2[e], offset);
    }
  }
  if (sub == 0) {
#pragma unroll
    for (int e = 0; e < V; ++e) {
      sh_bias[warp][i + e] = db1[e];
      sh_bias[warp][half + i + e] = db2[e];
      sh_w[warp][i + e] = dw1[e];
      sh_w[warp][half + i + e] = dw2[e];
    }
  }
  __syncthreads();
  for (int j = threadIdx.x; j < d; j += blockDim.x) {
    float acc_b = 0.0f, acc_w = 0.0f;
#pragma unroll
    for (int k = 0; k < kBackwardWarps; ++k) {
      acc_b += sh_bias[k][j];
      acc_w += sh_w[k][j];
    }
    if (part_bias) part_bias[chunk * g.width + s * d + j] = acc_b;
    if (want_w) part_w[chunk * g.width + s * d + j] = acc_w;
  }
}

Geometry make_geometry(const QkvShape& shape, const char* op) {
  SLIME_CHECK(shape.tokens >= 0, op, ": tokens ", shape.tokens, " < 0");
  SLIME_CHECK(shape.heads > 0 && shape.groups > 0, op, ": heads ", shape.heads, " and groups ", shape.groups,
              " must be positive");
  SLIME_CHECK(shape.heads % shape.groups == 0, op, ": heads ", shape.heads, " is not a multiple of groups ",
              shape.groups);
  SLIME_CHECK(shape.head_dim > 0 && shape.head_dim % 2 == 0, op, ": head_dim ", shape.head_dim,
              " must be positive and even (RoPE pairs)");
  SLIME_CHECK(shape.head_dim <= 512, op, ": head_dim ", shape.head_dim, " > 512 is not supported");
  Geometry g;
  g.heads = static_cast<int>(shape.heads);
  g.groups = static_cast<int>(shape.groups);
  g.head_dim = static_cast<int>(shape.head_dim);
  g.per_group = g.heads / g.groups;
  g.slots = g.heads + 2 * g.groups;
  g.half = g.head_dim / 2;
  g.tokens = shape.tokens;
  g.width = static_cast<int64_t>(g.slots) * g.head_dim;
  return g;
}

int pairs_per_lane(int half) { return half <= 32 ? 1 : half <= 64 ? 2 : half <= 128 ? 4 : 8; }

template <class T, int P>
void forward_launch(const Geometry& g, const void* qkv, const float* bias, const float* q_norm, const float* k_norm,
                    float eps, const float* cos, const float* sin, void* q, void* k, void* v, cudaStream_t stream) {
  const int64_t units = g.tokens * g.slots;
  const int per_block = kForwardThreads / 32;
  qkv_forward_kernel<T, P><<<static_cast<unsigned>((units + per_block - 1) / per_block), kForwardThreads, 0, stream>>>(
      static_cast<const T*>(qkv), bias, q_norm, k_norm, eps, cos, sin, static_cast<T*>(q), static_cast<T*>(k),
      static_cast<T*>(v), g);
  cudaCheckLaunch("qkv_forward_kernel");
}

// Lanes per head vector of the vector path (0: use the generic path): half / V must be 4, 8, 16 or 32 and every
// pointer 16-byte aligned.
template <class T>
int vector_lanes(const Geometry& g, std::initializer_list<const void*> pointers) {
  constexpr int V = Pack<T>::V;
  if (g.half % V != 0) return 0;
  const int lanes = g.half / V;
  if (lanes != 4 && lanes != 8 && lanes != 16 && lanes != 32) return 0;
  for (const void* p : pointers)
    if (!is_aligned(p, 16)) return 0;
  return lanes;
}

template <class T, int LPH>
void forward_vec_launch(const Geometry& g, const void* qkv, const float* bias, const float* q_norm,
                        const float* k_norm, float eps, const float* cos, const float* sin, void* q, void* k, void* v,
                        cudaStream_t stream) {
  const int64_t units = g.tokens * g.slots;
  const int64_t per_block = (kForwardThreads / 32) * (32 / LPH);
  qkv_forward_vec_kernel<T, LPH>
      <<<static_cast<unsigned>((units + per_block - 1) / per_block), kForwardThreads, 0, stream>>>(
          static_cast<const T*>(qkv), bias, q_norm, k_norm, eps, cos, sin, static_cast<T*>(q), static_cast<T*>(k),
          static_cast<T*>(v), g);
  cudaCheckLaunch("qkv_forward_vec_kernel");
}

template <class T>
void forward(const Geometry& g, const void* qkv, const float* bias, const float* q_norm, const float* k_norm,
             float eps, const float* cos, const float* sin, void* q, void* k, void* v, cudaStream_t stream) {
  switch (vector_lanes<T>(g, {qkv, bias, q_norm, k_norm, cos, sin, q, k, v})) {
    case 4: return forward_vec_launch<T, 4>(g, qkv, bias, q_norm, k_norm, eps, cos, sin, q, k, v, stream);
    case 8: return forward_vec_launch<T, 8>(g, qkv, bias, q_norm, k_norm, eps, cos, sin, q, k, v, stream);
    case 16: return forward_vec_launch<T, 16>(g, qkv, bias, q_norm, k_norm, eps, cos, sin, q, k, v, stream);
    case 32: return forward_vec_launch<T, 32>(g, qkv, bias, q_norm, k_norm, eps, cos, sin, q, k, v, stream);
    default: break;
  }
  switch (pairs_per_lane(g.half)) {
    case 1: return forward_launch<T, 1>(g, qkv, bias, q_norm, k_norm, eps, cos, sin, q, k, v, stream);
    case 2: return forward_launch<T, 2>(g, qkv, bias, q_norm, k_norm, eps, cos, sin, q, k, v, stream);
    case 4: return forward_launch<T, 4>(g, qkv, bias, q_norm, k_norm, eps, cos, sin, q, k, v, stream);
    default: return forward_launch<T, 8>(g, qkv, bias, q_norm, k_norm, eps, cos, sin, q, k, v, stream);
  }
}

template <class T, int P>
void backward_launch(const Geometry& g, int64_t chunks, const void* qkv, const float* bias, const float* q_norm,
                     const float* k_norm, float eps, const float* cos, const float* sin, const void* dq,
                     const void* dk, const void* dv, void* dqkv, float* part_bias, float* part_w,
                     cudaStream_t stream) {
  const dim3 grid(static_cast<unsigned>(g.slots), static_cast<unsigned>(chunks));
  qkv_backward_kernel<T, P><<<grid, kBackwardWarps * 32, 0, stream>>>(
      static_cast<const T*>(qkv), bias, q_norm, k_norm, eps, cos, sin, static_cast<const T*>(dq),
      static_cast<const T*>(dk), static_cast<const T*>(dv), static_cast<T*>(dqkv), part_bias, part_w, g);
  cudaCheckLaunch("qkv_backward_kernel");
}

template <class T, int LPH>
void backward_vec_launch(const Geometry& g, int64_t chunks, const void* qkv, const float* bias, const float* q_norm,
                         const float* k_norm, float eps, const float* cos, const float* sin, const void* dq,
                         const void* dk, const void* dv, void* dqkv, float* part_bias, float* part_w,
                         cudaStream_t stream) {
  const dim3 grid(static_cast<unsigned>(g.slots), static_cast<unsigned>(chunks));
  qkv_backward_vec_kernel<T, LPH><<<grid, kBackwardWarps * 32, 0, stream>>>(
      static_cast<const T*>(qkv), bias, q_norm, k_norm, eps, cos, sin, static_cast<const T*>(dq),
      static_cast<const T*>(dk), static_cast<const T*>(dv), static_cast<T*>(dqkv), part_bias, part_w, g);
  cudaCheckLaunch("qkv_backward_vec_kernel");
}

template <class T>
void backward(const Geometry& g, int64_t chunks, const void* qkv, const float* bias, const float* q_norm,
              const float* k_norm, float eps, const float* cos, const float* sin, const void* dq, const void* dk,
              const void* dv, void* dqkv, float* part_bias, float* part_w, cudaStream_t stream) {
#define SLIME_QKV_BACKWARD_ARGS \
  g, chunks, qkv, bias, q_norm, k_norm, eps, cos, sin, dq, dk, dv, dqkv, part_bias, part_w, stream
  switch (vector_lanes<T>(g, {qkv, bias, q_norm, k_norm, cos, sin, dq, dk, dv, dqkv})) {
    case 4: return backward_vec_launch<T, 4>(SLIME_QKV_BACKWARD_ARGS);
    case 8: return backward_vec_launch<T, 8>(SLIME_QKV_BACKWARD_ARGS);
    case 16: return backward_vec_launch<T, 16>(SLIME_QKV_BACKWARD_ARGS);
    case 32: return backward_vec_launch<T, 32>(SLIME_QKV_BACKWARD_ARGS);
    default: break;
  }
  switch (pairs_per_lane(g.half)) {
    case 1: return backward_launch<T, 1>(SLIME_QKV_BACKWARD_ARGS);
    case 2: return backward_launch<T, 2>(SLIME_QKV_BACKWARD_ARGS);
    case 4: return backward_launch<T, 4>(SLIME_QKV_BACKWARD_ARGS);
    default: return backward_launch<T, 8>(SLIME_QKV_BACKWARD_ARGS);
  }
#undef SLIME_QKV_BACKWARD_ARGS
}

}  // namespace

// ----------------------------------------------------------------------------------------------------------------
// launchers

void qkv_forward(Precision precision, const QkvShape& shape, const void* qkv, const float* bias, const float* q_norm,
                 const float* k_norm, float eps, const float* cos, const float* sin, void* q, void* k, void* v,
                 cudaStream_t stream) {
  const Geometry g = make_geometry(shape, "qkv_forward");
  if (g.tokens == 0) return;
  if (precision == Precision::F32) forward<float>(g, qkv, bias, q_norm, k_norm, eps, cos, sin, q, k, v, stream);
  else forward<__nv_bfloat16>(g, qkv, bias, q_norm, k_norm, eps, cos, sin, q, k, v, stream);
}

void qkv_backward(Precision precision, const QkvShape& shape, const void* qkv, const float* bias, const float* q_norm,
                  const float* k_norm, float eps, const float* cos, const float* sin, const void* dq, const void* dk,
                  const void* dv, void* dqkv, float* dbias, float* dq_norm, float* dk_norm, cudaStream_t stream) {
  const Geometry g = make_geometry(shape, "qkv_backward");
  if (g.tokens == 0) return;
  const int64_t chunks = (g.tokens + kChunk - 1) / kChunk;
  SLIME_CHECK(chunks <= 65535, "qkv_backward: ", g.tokens, " tokens exceed the supported ", 65535LL * kChunk);
  // Only the gradients whose weights exist are formed.
  if (q_norm == nullptr) dq_norm = nullptr;
  if (k_norm == nullptr) dk_norm = nullptr;
  const bool want_w = dq_norm != nullptr || dk_norm != nullptr;
  float* part_bias = nullptr;
  float* part_w = nullptr;
  const size_t part_bytes = static_cast<size_t>(chunks) * static_cast<size_t>(g.width) * sizeof(float);
  if (dbias) cudaCheck(cudaMallocAsync(reinterpret_cast<void**>(&part_bias), part_bytes, stream));
  if (want_w) cudaCheck(cudaMallocAsync(reinterpret_cast<void**>(&part_w), part_bytes, stream));
  // The kernel forms part_w for every normed q/k slot; a norm whose gradient is not wanted gets its weight for dx only.
  if (precision == Precision::F32)
    backward<float>(g, chunks, qkv, bias, q_norm, k_norm, eps, cos, sin, dq, dk, dv, dqkv, part_bias, part_w, stream);
  else
    backward<__nv_bfloat16>(g, chunks, qkv, bias, q_norm, k_norm, eps, cos, sin, dq, dk, dv, dqkv, part_bias, part_w,
                            stream);
  if (dbias) {
    column_sum_kernel<<<static_cast<unsigned>((g.width + kThreads - 1) / kThreads), kThreads, 0, stream>>>(
        part_bias, chunks, g.width, dbias);
    cudaCheckLaunch("column_sum_kernel");
    cudaCheck(cudaFreeAsync(part_bias, stream));
  }
  if (want_w) {
    norm_weight_grad_kernel<<<dim3(static_cast<unsigned>(g.head_dim), 2), kThreads, 0, stream>>>(part_w, chunks, g,
                                                                                                  dq_norm, dk_norm);
    cudaCheckLaunch("norm_weight_grad_kernel");
    cudaCheck(cudaFreeAsync(part_w, stream));
  }
}

}  // namespace slime::cuda
