// The rollout engine's attention over a paged KV cache, token-major (kernels/cpu/paged_attention.h is the head-major
// reference): q, out [T, H, d]; one layer's k_cache, v_cache [num_slots, G, d]; sequence b's new tokens are rows
// cu_seqlens[b] .. of q at positions context_lens[b] - n_b .. context_lens[b] - 1, and new token i sees cached
// positions 0 .. context_lens[b] - n_b + i. The position p of sequence b sits in slot
// block_tables[b][p / block_size] * block_size + p % block_size.
//
// kv_cache_write: a token's k (and v) row [G, d] is exactly one slot's row, so the scatter is a copy of 16-byte units
// (4- or 2-byte units when the rows are not 16-byte multiples); tokens whose slot is negative are skipped (padding).
//
// BF16, head_dim 64 or 128: split-KV "flash decoding" on tensor cores (mma.sync.m16n8k16, bf16 in, fp32 accumulation).
//   Query rows. A (sequence b, KV group g) has n_b * P query rows (P = H / G), row r = token (r / P), head
//   g * P + r % P: the group's query heads share every K/V read (GQA-aware), so a decode step's P rows fill one
//   16-row MMA tile and K/V bytes are read once per group, not once per head.
//   Grid (split, row tile x group, sequence); 4 warps per CTA. A CTA owns 16 * ROW_WARPS query rows of one
//   (sequence, group) and the cached positions [split * L, (split + 1) * L) of the keys those rows see (L a multiple of
//   the 64-position key tile). It streams its key tiles through shared memory with cp.async (STAGES buffers: the next
//   tiles' K and V load while this one is used; 3 for decode at d = 128, else 2); each K/V row is one
//   16-byte-chunked row of the cache, located through the block table. ROW_WARPS = 1 (decode, few rows): the 4 warps share the 16 rows and split each key tile, 16
//   positions each, so every warp keeps its own online softmax; ROW_WARPS = 4 (prefill chunks): FlashAttention-2
//   style, each warp owns 16 rows and all 64 positions of a tile. Per warp: S = Q K^T (Q fragments in registers,
//   K by ldmatrix), causal mask where a tile passes a row's last visible position, online softmax in fp32 with
//   exp2f(scale * log2 e * s - m), O += P V (V by ldmatrix.trans). At the end the warps' (m, l, O) go through shared
//   memory, are combined per row, and either written as out (one split: O / l) or as the split's partial
//   (O unnormalised, m in log2 units, l) to the workspace; a merge kernel (a warp per (token, head)) then combines the
//   splits that hold any of the row's positions by log-sum-exp and writes out.
//   Launch shapes depend only on the bounds in PagedBatch (sequences, tokens, max_context, max_new_tokens), the head
//   layout and the device's SM count, never on the device arrays: CTAs past a sequence's rows or context return at
//   once, and the merge reads only the splits that cover the row's context, so a step can be captured in a CUDA
//   graph and replayed with new contents. Split length: units = sequences x ceil(max_new_tokens * H / 16) (about the
//   CTAs per split per KV group); splits = SMs / units when that is 2 or more (so a decode step of G = 2 has about 2
//   long CTAs per SM: on an H100 fewer, longer CTAs beat many short ones, whose partials cost traffic and whose last
//   wave idles), with at most 16 tiles (1024 positions) per split, so that short actual contexts under a large
//   max_context still spread over many CTAs; otherwise one split, no workspace, and no merge.
//
// Other head dims (either precision; FP32 is the path of the whole-model fp32 tests): a plain kernel, one warp per
// (new token, head), up to head_dim 256: dot products by warp reduction, 4 positions at a time, online softmax.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <utility>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/mma.cuh"
#include "kernels/cuda/ops.h"

namespace slime::cuda {
namespace {

using bf16 = __nv_bfloat16;

constexpr int kThreads = 128;         // 4 warps per CTA of the bf16 kernel and the merge kernel
constexpr int kKeyTile = 64;          // cached positions per shared-memory tile
constexpr int kMaxTilesPerSplit = 16;  // a split covers at most 1024 positions
constexpr int kGenericWarps = 4;
constexpr int kGenericKeys = 4;       // positions whose dot products are in flight together (generic kernel)
constexpr int kMaxPerLane = 8;        // generic kernel: head_dim <= 256

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// ---------------------------------------------------------------------------------------------------------------
// kv_cache_write

// U is the copy unit (uint4, uint32_t or uint16_t); a token's row and a slot's row are both `units` units.
template <class U>
__global__ void kv_cache_write_kernel(const U* __restrict__ k, const U* __restrict__ v, const int* __restrict__ slots,
                                      int64_t tokens, int64_t units, U* __restrict__ k_cache,
                                      U* __restrict__ v_cache) {
  const int64_t total = tokens * units;
  for (int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; idx < total;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t t = idx / units, c = idx - t * units;
    const int slot = __ldg(slots + t);
    if (slot < 0) continue;
    k_cache[slot * units + c] = k[idx];
    v_cache[slot * units + c] = v[idx];
  }
}

// ---------------------------------------------------------------------------------------------------------------
// BF16 split-KV kernel

struct PagedArgs {
  const bf16* q;
  const bf16* k_cache;
  const bf16* v_cache;
  const int* cu_seqlens;
  const int* context_lens;
  const int* block_tables;
  bf16* out;
  float* part_o;   // [splits, tokens, H, D] (splits > 1)
  float* part_ml;  // [splits, tokens, H, 2]: (max score x scale x log2 e, sum of exp2)
  int64_t tokens;
  int64_t max_blocks;
  int heads, groups, per_group;
  int block_size, block_shift;  // block_shift = log2(block_size) when a power of two, else -1
  int split_keys, splits;
  float scale_log2;
};

template <int D, int ROW_WARPS, int STAGES>
constexpr int bf16_smem_bytes() {
  // Q [16 * ROW_WARPS rows], then STAGES x (K, V) [kKeyTile rows], rows of D + 8 bf16
  return (16 * ROW_WARPS + 2 * STAGES * kKeyTile) * (D + 8) * static_cast<int>(sizeof(bf16));
}

template <int D, int ROW_WARPS, int STAGES>
__global__ void __launch_bounds__(kThreads) paged_attention_bf16_kernel(const PagedArgs a) {
  constexpr int kKeyWarps = 4 / ROW_WARPS;          // warps splitting each key tile
  constexpr int kWarpKeys = kKeyTile / kKeyWarps;   // positions per warp per tile: 16 or 64
  constexpr int kRows = 16 * ROW_WARPS;             // query rows of the CTA
  constexpr int kS = D + 8;                         // shared row stride (bf16): ldmatrix without bank conflicts
  constexpr int kChunks = D / 8;                    // 16-byte chunks per row
  constexpr int kOS = D + 8;                        // shared row stride (fp32) of the epilogue
  static_assert(kKeyWarps * kRows * kOS * 4 <= 2 * STAGES * kKeyTile * kS * 2, "epilogue must fit in the stages");
  extern __shared__ __align__(16) unsigned char smem_raw[];
  bf16* sQ = reinterpret_cast<bf16*>(smem_raw);
  bf16* sKV = sQ + kRows * kS;  // [stage][K | V][kKeyTile][kS]
  __shared__ float s_m[kKeyWarps][kRows], s_l[kKeyWarps][kRows];

  const int split = blockIdx.x, g = blockIdx.y % a.groups, row_tile = blockIdx.y / a.groups, b = blockIdx.z;
  const int P = a.per_group, H = a.heads;
  const int start = a.cu_seqlens[b], n = a.cu_seqlens[b + 1] - start;
  const int row0 = row_tile * kRows;
  if (row0 >= n * P) return;
  const int past = a.context_lens[b] - n;  // cached positions before the new tokens
  const int kv_end = past + min(row0 + kRows - 1, n * P - 1) / P + 1;  // positions the CTA's last row sees
  const int key_begin = split * a.split_keys;
  if (key_begin >= kv_end) return;  // a split past this context: the merge does not read it
  const int key_end = min(kv_end, key_begin + a.split_keys);
  const int n_tiles = (key_end - key_begin + kKeyTile - 1) / kKeyTile;

  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int rw = warp / kKeyWarps, kw = warp % kKeyWarps;

  // Q rows of the CTA (zero rows past the sequence's tokens)
  for (int c = tid; c < kRows * kChunks; c += kThreads) {
    const int r = c / kChunks, ch = c % kChunks, qr = row0 + r, i = qr / P;
    const bool ok = i < n;
    const bf16* src = ok ? a.q + (static_cast<int64_t>(start + i) * H + g * P + (qr - i * P)) * D + ch * 8 : a.q;
    cp_async_16(sQ + r * kS + ch * 8, src, ok);
  }
  const int* table = a.block_tables + static_cast<int64_t>(b) * a.max_blocks;
  const int64_t slot_stride = static_cast<int64_t>(a.groups) * D;
  const bf16* k_base = a.k_cache + static_cast<int64_t>(g) * D;
  const bf16* v_base = a.v_cache + static_cast<int64_t>(g) * D;
  auto load_tile = [&](int tile, int stage) {
    constexpr int kRowsPerPass = kThreads / kChunks;
    bf16* sK = sKV + stage * 2 * kKeyTile * kS;
    bf16* sV = sK + kKeyTile * kS;
    const int kb = key_begin + tile * kKeyTile, ch = tid % kChunks;
#pragma unroll
    for (int it = 0; it < kKeyTile / kRowsPerPass; ++it) {
      const int r = tid / kChunks + it * kRowsPerPass, pos = kb + r;
      const bool ok = pos < key_end;
      int64_t offset = ch * 8;
      if (ok) {
        const int blk = a.block_shift >= 0 ? pos >> a.block_shift : pos / a.block_size;
        offset += (static_cast<int64_t>(__ldg(table + blk)) * a.block_size + (pos - blk * a.block_size)) * slot_stride;
      }
      cp_async_16(sK + r * kS + ch * 8, k_base + offset, ok);
      cp_async_16(sV + r * kS + ch * 8, v_base + offset, ok);
    }
  };
  for (int st = 0; st < STAGES - 1; ++st) {  // Q joins the first group
    if (st < n_tiles) load_tile(st, st);
    cp_async_commit();
  }

  // this thread's accumulator rows: CTA rows wrow and wrow + 8, and the last position each sees
  const int wrow = rw * 16 + (lane >> 2);
  int limit[2];
#pragma unroll
  for (int rh = 0; rh < 2; ++rh) limit[rh] = past + min((row0 + wrow + 8 * rh) / P, n - 1);
  const int min_limit = past + row0 / P;  // the CTA's first row sees the fewest positions

  uint32_t qf[D / 16][4];
  float o[D / 8][4];
#pragma unroll
  for (int nd = 0; nd < D / 8; ++nd) o[nd][0] = o[nd][1] = o[nd][2] = o[nd][3] = 0.0f;
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};

  for (int j = 0; j < n_tiles; ++j) {
    if (j + STAGES - 1 < n_tiles) load_tile(j + STAGES - 1, (j + STAGES - 1) % STAGES);
    cp_async_commit();
    cp_async_wait<STAGES - 1>();  // Q and tile j have landed
    __syncthreads();
    if (j == 0) {
#pragma unroll
      for (int kk = 0; kk < D / 16; ++kk)
        ldmatrix_x4(qf[kk], sQ + (rw * 16 + (lane & 15)) * kS + kk * 16 + (lane >> 4) * 8);
    }
    const bf16* sK = sKV + (j % STAGES) * 2 * kKeyTile * kS + kw * kWarpKeys * kS;
    const bf16* sV = sK + kKeyTile * kS;
    const int kb = key_begin + j * kKeyTile + kw * kWarpKeys;  // this warp's first position

    // S = Q K^T (16 rows x kWarpKeys positions)
    float s[kWarpKeys / 8][4];
    qk_scores<D, kWarpKeys>(s, qf, sK, kS, lane);
    if (kb + kWarpKeys - 1 > min_limit) {  // some position is past some row's last (zero-filled ones included)
#pragma unroll
      for (int nn = 0; nn < kWarpKeys / 8; ++nn)
#pragma unroll
        for (int e = 0; e < 4; ++e)
          if (kb + nn * 8 + 2 * (lane & 3) + (e & 1) > limit[e >> 1]) s[nn][e] = -INFINITY;
    }

    online_softmax_step<D, kWarpKeys>(s, m, l, o, a.scale_log2);

    pv_accumulate<D, kWarpKeys>(o, s, sV, kS, lane);
    __syncthreads();  // every warp is done with this stage before it is refilled
  }

  // Epilogue: each warp's (m, l, O) rows into shared memory (over the K/V stages, all loads done), then per row the
  // key warps' states are combined.
  float* sO = reinterpret_cast<float*>(sKV);  // [kKeyWarps][kRows][kOS]
#pragma unroll
  for (int rh = 0; rh < 2; ++rh) {
    float sum = l[rh];
    sum += __shfl_xor_sync(0xffffffffu, sum, 1);
    sum += __shfl_xor_sync(0xffffffffu, sum, 2);
    const int row = wrow + 8 * rh;
    if ((lane & 3) == 0) {
      s_m[kw][row] = m[rh] == -INFINITY ? -INFINITY : m[rh] * a.scale_log2;
      s_l[kw][row] = sum;
    }
    float* dst = sO + (kw * kRows + row) * kOS + 2 * (lane & 3);
#pragma unroll
    for (int nd = 0; nd < D / 8; ++nd) *reinterpret_cast<float2*>(dst + nd * 8) = make_float2(o[nd][2 * rh], o[nd][2 * rh + 1]);
  }
  __syncthreads();
  const bool direct = a.splits == 1;
  for (int idx = tid; idx < kRows * (D / 4); idx += kThreads) {
    const int row = idx / (D / 4), c = (idx % (D / 4)) * 4;
    const int qr = row0 + row, i = qr / P;
    if (i >= n) continue;
    const int h = g * P + (qr - i * P);
    const int64_t t = start + i;
    float M = -INFINITY;
#pragma unroll
    for (int w = 0; w < kKeyWarps; ++w) M = fmaxf(M, s_m[w][row]);
    float L = 0.0f;
    float4 acc = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
#pragma unroll
    for (int w = 0; w < kKeyWarps; ++w) {
      const float mw = s_m[w][row];
      const float wt = mw == -INFINITY ? 0.0f : exp2f(mw - M);
      L += wt * s_l[w][row];
      const float4 ow = *reinterpret_cast<const float4*>(sO + (w * kRows + row) * kOS + c);
      acc.x += wt * ow.x;
      acc.y += wt * ow.y;
      acc.z += wt * ow.z;
      acc.w += wt * ow.w;
    }
    if (direct) {
      const float inv = L > 0.0f ? 1.0f / L : 0.0f;
      __nv_bfloat162 lo = __floats2bfloat162_rn(acc.x * inv, acc.y * inv);
      __nv_bfloat162 hi = __floats2bfloat162_rn(acc.z * inv, acc.w * inv);
      uint2 packed;
      packed.x = *reinterpret_cast<uint32_t*>(&lo);
      packed.y = *reinterpret_cast<uint32_t*>(&hi);
      *reinterpret_cast<uint2*>(a.out + (t * H + h) * D + c) = packed;
    } else {
      const int64_t prow = (static_cast<int64_t>(split) * a.tokens + t) * H + h;
      *reinterpret_cast<float4*>(a.part_o + prow * D + c) = acc;
      if (c == 0) *reinterpret_cast<float2*>(a.part_ml + prow * 2) = make_float2(M, L);
    }
  }
}

// Combines the splits of each (new token, head): a warp per row, D / 32 columns per lane. Grid
// (ceil(max_new_tokens * H / 4), sequences).
template <int D>
__global__ void __launch_bounds__(kThreads)
    paged_attention_merge_kernel(const float* __restrict__ part_o, const float* __restrict__ part_ml,
                                 const int* __restrict__ cu_seqlens, const int* __restrict__ context_lens,
                                 int64_t tokens, int heads, int split_keys, int splits, bf16* __restrict__ out) {
  constexpr int kPer = D / 32;
  const int lane = threadIdx.x & 31;
  const int row = blockIdx.x * (kThreads / 32) + threadIdx.x / 32, b = blockIdx.y;
  const int start = cu_seqlens[b], n = cu_seqlens[b + 1] - start;
  const int i = row / heads, h = row - i * heads;
  if (i >= n) return;
  const int kv_len = context_lens[b] - n + i + 1;  // positions this row sees
  const int used = min(splits, (kv_len + split_keys - 1) / split_keys);
  const int64_t t = start + i, rows = tokens * heads, base = t * heads + h;
  float M = -INFINITY;
  for (int s = lane; s < used; s += 32) M = fmaxf(M, part_ml[(s * rows + base) * 2]);
  M = warp_max(M);
  float acc[kPer] = {};
  float L = 0.0f;
  for (int s = 0; s < used; ++s) {
    const int64_t prow = s * rows + base;
    const float2 ml = *reinterpret_cast<const float2*>(part_ml + prow * 2);
    const float wt = ml.x == -INFINITY ? 0.0f : exp2f(ml.x - M);
    L += wt * ml.y;
    const float* src = part_o + prow * D + lane * kPer;
    if constexpr (kPer == 4) {
      const float4 v = *reinterpret_cast<const float4*>(src);
      acc[0] += wt * v.x;
      acc[1] += wt * v.y;
      acc[2] += wt * v.z;
      acc[3] += wt * v.w;
    } else {
      const float2 v = *reinterpret_cast<const float2*>(src);
      acc[0] += wt * v.x;
      acc[1] += wt * v.y;
    }
  }
  const float inv = L > 0.0f ? 1.0f / L : 0.0f;
  bf16* dst = out + (t * heads + h) * D + lane * kPer;
#pragma unroll
  for (int e = 0; e < kPer; e += 2)
    *reinterpret_cast<__nv_bfloat162*>(dst + e) = __floats2bfloat162_rn(acc[e] * inv, acc[e + 1] * inv);
}

// ---------------------------------------------------------------------------------------------------------------
// Generic kernel (any head_dim up to 256, fp32 or bf16): a warp per (new token, head), grid
// (ceil(max_new_tokens / kGenericWarps), H, sequences).

template <class T>
__global__ void __launch_bounds__(kGenericWarps * 32)
    paged_attention_generic_kernel(const T* __restrict__ q, const T* __restrict__ k_cache,
                                   const T* __restrict__ v_cache, const int* __restrict__ cu_seqlens,
                                   const int* __restrict__ context_lens, const int* __restrict__ block_tables,
                                   int64_t max_blocks, int block_size, int heads, int per_group, int D, float scale,
                                   T* __restrict__ out) {
  const int lane = threadIdx.x & 31;
  const int i = blockIdx.x * kGenericWarps + threadIdx.x / 32, h = blockIdx.y, b = blockIdx.z;
  const int start = cu_seqlens[b], n = cu_seqlens[b + 1] - start;
  if (i >= n) return;
  const int G = heads / per_group, g = h / per_group;
  const int last = context_lens[b] - n + i;  // the last position this token sees
  const int64_t t = start + i;
  const int* table = block_tables + static_cast<int64_t>(b) * max_blocks;
  float qr[kMaxPerLane];
#pragma unroll
  for (int e = 0; e < kMaxPerLane; ++e) {
    const int c = lane + 32 * e;
    qr[e] = c < D ? to_float(q[(t * heads + h) * D + c]) : 0.0f;
  }
  float m = -INFINITY, l = 0.0f, o[kMaxPerLane] = {};
  for (int p0 = 0; p0 <= last; p0 += kGenericKeys) {
    int64_t row[kGenericKeys];
    float s[kGenericKeys];
#pragma unroll
    for (int u = 0; u < kGenericKeys; ++u) {
      const int p = p0 + u;
      row[u] = p <= last ? ((static_cast<int64_t>(table[p / block_size]) * block_size + p % block_size) * G + g) * D
                         : -1;
    }
#pragma unroll
    for (int u = 0; u < kGenericKeys; ++u) {
      float dot = 0.0f;
      if (row[u] >= 0) {
#pragma unroll
        for (int e = 0; e < kMaxPerLane; ++e) {
          const int c = lane + 32 * e;
          if (c < D) dot += qr[e] * to_float(k_cache[row[u] + c]);
        }
      }
      s[u] = warp_sum(dot) * scale;
    }
    float mx = m;
#pragma unroll
    for (int u = 0; u < kGenericKeys; ++u)
      if (row[u] >= 0) mx = fmaxf(mx, s[u]);
    const float corr = expf(m - mx);  // 0 on the first positions (m = -inf)
    l *= corr;
#pragma unroll
    for (int e = 0; e < kMaxPerLane; ++e) o[e] *= corr;
#pragma unroll
    for (int u = 0; u < kGenericKeys; ++u) {
      if (row[u] < 0) continue;
      const float w = expf(s[u] - mx);
      l += w;
#pragma unroll
      for (int e = 0; e < kMaxPerLane; ++e) {
        const int c = lane + 32 * e;
        if (c < D) o[e] += w * to_float(v_cache[row[u] + c]);
      }
    }
    m = mx;
  }
  const float inv = l > 0.0f ? 1.0f / l : 0.0f;
#pragma unroll
  for (int e = 0; e < kMaxPerLane; ++e) {
    const int c = lane + 32 * e;
    if (c < D) out[(t * heads + h) * D + c] = from_float<T>(o[e] * inv);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// host side

bool tensor_core_path(Precision precision, int64_t head_dim) {
  return precision == Precision::BF16 && (head_dim == 64 || head_dim == 128);
}

int sm_count() {
  int device = 0, count = 0;
  cudaCheck(cudaGetDevice(&device));
  cudaCheck(cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, device));
  return count;
}

// Key tiles per split, from the bounds and the device's SM count alone (the grid and the workspace follow from it).
// Units of work: 16-row query tiles over all heads, about a CTA per KV group; about one unit per SM is wanted (a
// decode step of G = 2 then gives 2 CTAs per SM, each as long as possible: partials cost traffic and a second
// kernel, and a partial last wave idles).
int64_t tiles_per_split(const PagedBatch& batch, int64_t heads) {
  const int64_t tiles = ceil_div(batch.max_context, kKeyTile);
  const int64_t units = batch.sequences * ceil_div(batch.max_new_tokens * heads, 16);
  const int64_t want = units > 0 ? sm_count() / units : 1;  // splits wanted
  if (tiles <= 1 || want <= 1) return std::max<int64_t>(tiles, 1);  // one split
  return std::clamp<int64_t>(ceil_div(tiles, want), 1, kMaxTilesPerSplit);
}

int64_t split_count(const PagedBatch& batch, int64_t heads) {
  const int64_t tiles = ceil_div(batch.max_context, kKeyTile);
  return std::max<int64_t>(1, ceil_div(tiles, tiles_per_split(batch, heads)));
}

void check_batch(const char* op, const PagedBatch& batch, int64_t heads, int64_t groups, int64_t head_dim) {
  SLIME_CHECK(batch.sequences >= 0 && batch.sequences <= 65535, op, ": sequences ", batch.sequences,
              " out of range [0, 65535]");
  SLIME_CHECK(batch.tokens >= 0 && batch.tokens < (int64_t{1} << 31), op, ": tokens ", batch.tokens, " out of range");
  SLIME_CHECK(batch.max_context >= 0 && batch.max_context < (int64_t{1} << 30), op, ": max_context ",
              batch.max_context, " out of range");
  SLIME_CHECK(batch.max_new_tokens >= 0 && batch.max_new_tokens < (int64_t{1} << 30), op, ": max_new_tokens ",
              batch.max_new_tokens, " out of range");
  SLIME_CHECK(batch.block_size > 0 && batch.block_size < (int64_t{1} << 30), op, ": block_size ", batch.block_size,
              " must be positive");
  SLIME_CHECK(batch.max_blocks >= ceil_div(batch.max_context, batch.block_size), op, ": max_blocks ",
              batch.max_blocks, " < ceil(max_context ", batch.max_context, " / block_size ", batch.block_size, ")");
  SLIME_CHECK(heads > 0 && groups > 0 && heads % groups == 0 && heads <= 65535, op, ": heads ", heads,
              " not a positive multiple of groups ", groups);
  SLIME_CHECK(head_dim > 0 && head_dim <= 32 * kMaxPerLane, op, ": head_dim ", head_dim, " not in [1, ",
              32 * kMaxPerLane, "]");
}

template <int D, int ROW_WARPS, int STAGES>
void launch_bf16(const PagedArgs& args, int64_t sequences, int64_t max_new_tokens, cudaStream_t stream) {
  constexpr int kSmem = bf16_smem_bytes<D, ROW_WARPS, STAGES>();
  constexpr auto kernel = paged_attention_bf16_kernel<D, ROW_WARPS, STAGES>;
  allow_dynamic_smem<kernel>(kSmem);
  const int64_t row_tiles = ceil_div(max_new_tokens * args.per_group, 16 * ROW_WARPS);
  SLIME_CHECK(row_tiles * args.groups <= 65535, "paged_attention_forward: max_new_tokens ", max_new_tokens,
              " too large");
  const dim3 grid(static_cast<unsigned>(args.splits), static_cast<unsigned>(row_tiles * args.groups),
                  static_cast<unsigned>(sequences));
  kernel<<<grid, kThreads, kSmem, stream>>>(args);
  cudaCheckLaunch("paged_attention_bf16_kernel");
  if (args.splits > 1) {
    const dim3 merge_grid(static_cast<unsigned>(ceil_div(max_new_tokens * args.heads, kThreads / 32)),
                          static_cast<unsigned>(sequences));
    paged_attention_merge_kernel<D><<<merge_grid, kThreads, 0, stream>>>(
        args.part_o, args.part_ml, args.cu_seqlens, args.context_lens, args.tokens, args.heads, args.split_keys,
        args.splits, args.out);
    cudaCheckLaunch("paged_attention_merge_kernel");
  }
}

template <class T>
void launch_generic(const PagedBatch& batch, const void* q, const void* k_cache, const void* v_cache, int64_t heads,
                    int64_t groups, int64_t head_dim, float scale, void* out, cudaStream_t stream) {
  const dim3 grid(static_cast<unsigned>(ceil_div(batch.max_new_tokens, kGenericWarps)), static_cast<unsigned>(heads),
                  static_cast<unsigned>(batch.sequences));
  paged_attention_generic_kernel<T><<<grid, kGenericWarps * 32, 0, stream>>>(
      static_cast<const T*>(q), static_cast<const T*>(k_cache), static_cast<const T*>(v_cache), batch.cu_seqlens,
      batch.context_lens, batch.block_tables, batch.max_blocks, static_cast<int>(batch.block_size),
      static_cast<int>(heads), static_cast<int>(heads / groups), static_cast<int>(head_dim), scale,
      static_cast<T*>(out));
  cudaCheckLaunch("paged_attention_generic_kernel");
}

template <class U>
void launch_cache_write(const void* k, const void* v, const int* slots, int64_t tokens, int64_t row_bytes,
                        void* k_cache, void* v_cache, cudaStream_t stream) {
  const int64_t units = row_bytes / static_cast<int64_t>(sizeof(U));
  const int64_t total = tokens * units;
  const int blocks = static_cast<int>(std::min<int64_t>(ceil_div(total, 256), 132 * 16));
  kv_cache_write_kernel<U><<<blocks, 256, 0, stream>>>(static_cast<const U*>(k), static_cast<const U*>(v), slots,
                                                       tokens, units, static_cast<U*>(k_cache),
                                                       static_cast<U*>(v_cache));
  cudaCheckLaunch("kv_cache_write_kernel");
}

}  // namespace

// ----------------------------------------------------------------------------------------------------------------
// launchers


void kv_cache_write(Precision precision, const void* k, const void* v, const int* slots, int64_t tokens,
                    int64_t groups, int64_t head_dim, void* k_cache, void* v_cache, cudaStream_t stream) {
  SLIME_CHECK(tokens >= 0 && groups > 0 && head_dim > 0, "kv_cache_write: bad shape tokens ", tokens, " groups ",
              groups, " head_dim ", head_dim);
  if (tokens == 0) return;
  const int64_t row_bytes = groups * head_dim * (precision == Precision::BF16 ? 2 : 4);
  auto aligned = [&](size_t bytes) {
    return row_bytes % static_cast<int64_t>(bytes) == 0 && is_aligned(k, bytes) && is_aligned(v, bytes) &&
           is_aligned(k_cache, bytes) && is_aligned(v_cache, bytes);
  };
  if (aligned(16))
    launch_cache_write<uint4>(k, v, slots, tokens, row_bytes, k_cache, v_cache, stream);
  else if (aligned(4))
    launch_cache_write<uint32_t>(k, v, slots, tokens, row_bytes, k_cache, v_cache, stream);
  else
    launch_cache_write<uint16_t>(k, v, slots, tokens, row_bytes, k_cache, v_cache, stream);
}

size_t paged_attention_workspace_bytes(const PagedBatch& batch, int64_t heads, int64_t head_dim) {
  // Only the tensor-core path (head_dim 64, 128; bf16) uses a workspace; its size does not depend on the precision,
  // so an fp32 caller of those head dims gets a (harmlessly unused) positive size too.
  if (head_dim != 64 && head_dim != 128) return 0;
  if (batch.sequences <= 0 || batch.tokens <= 0 || batch.max_context <= 0 || batch.max_new_tokens <= 0) return 0;
  const int64_t splits = split_count(batch, heads);
  if (splits <= 1) return 0;
  return static_cast<size_t>(splits * batch.tokens * heads * (head_dim + 2)) * sizeof(float);
}

void paged_attention_forward(Precision precision, const PagedBatch& batch, const void* q, const void* k_cache,
                             const void* v_cache, int64_t heads, int64_t groups, int64_t head_dim, float scale,
                             void* out, void* workspace, cudaStream_t stream) {
  const char* op = "paged_attention_forward";
  check_batch(op, batch, heads, groups, head_dim);
  SLIME_CHECK(scale > 0.0f && scale < INFINITY, op, ": scale ", scale, " must be positive and finite");
  if (batch.tokens == 0 || batch.sequences == 0 || batch.max_new_tokens == 0 || batch.max_context == 0) return;

  if (!tensor_core_path(precision, head_dim)) {
    if (precision == Precision::F32)
      launch_generic<float>(batch, q, k_cache, v_cache, heads, groups, head_dim, scale, out, stream);
    else
      launch_generic<bf16>(batch, q, k_cache, v_cache, heads, groups, head_dim, scale, out, stream);
    return;
  }

  for (auto [name, p] : {std::pair<const char*, const void*>{"q", q}, {"k_cache", k_cache}, {"v_cache", v_cache},
                         {"out", out}})
    SLIME_CHECK(is_aligned(p, 16), op, ": ", name, " is not 16-byte aligned");
  PagedArgs args{};
  args.q = static_cast<const bf16*>(q);
  args.k_cache = static_cast<const bf16*>(k_cache);
  args.v_cache = static_cast<const bf16*>(v_cache);
  args.cu_seqlens = batch.cu_seqlens;
  args.context_lens = batch.context_lens;
  args.block_tables = batch.block_tables;
  args.out = static_cast<bf16*>(out);
  args.tokens = batch.tokens;
  args.max_blocks = batch.max_blocks;
  args.heads = static_cast<int>(heads);
  args.groups = static_cast<int>(groups);
  args.per_group = static_cast<int>(heads / groups);
  args.block_size = static_cast<int>(batch.block_size);
  args.block_shift = -1;
  for (int s = 0; s < 31; ++s)
    if ((int64_t{1} << s) == batch.block_size) args.block_shift = s;
  args.split_keys = static_cast<int>(tiles_per_split(batch, heads) * kKeyTile);
  args.splits = static_cast<int>(split_count(batch, heads));
  SLIME_CHECK(args.splits <= 65535 * 1024, op, ": too many splits");
  args.scale_log2 = scale * kLog2e;
  if (args.splits > 1) {
    SLIME_CHECK(workspace != nullptr && is_aligned(workspace, 16), op,
                ": workspace must hold paged_attention_workspace_bytes() bytes, 16-byte aligned");
    args.part_o = static_cast<float*>(workspace);
    args.part_ml = args.part_o + static_cast<int64_t>(args.splits) * batch.tokens * heads * head_dim;
  }
  // decode-like steps (a group's rows fit two 16-row tiles): the 4 warps split the key tiles; prefill chunks: the
  // 4 warps split the query rows
  const bool few_rows = batch.max_new_tokens * args.per_group <= 32;
  // (stages measured on an H100: 3 for d = 128 gave +9% at batch 256, 2 for d = 64, where 3 lost 10%)
  if (head_dim == 64) {
    if (few_rows)
      launch_bf16<64, 1, 2>(args, batch.sequences, batch.max_new_tokens, stream);
    else
      launch_bf16<64, 4, 2>(args, batch.sequences, batch.max_new_tokens, stream);
  } else {
    if (few_rows)
      launch_bf16<128, 1, 3>(args, batch.sequences, batch.max_new_tokens, stream);
    else
      launch_bf16<128, 4, 2>(args, batch.sequences, batch.max_new_tokens, stream);
  }
}

}  // namespace slime::cuda
