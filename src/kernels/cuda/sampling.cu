// Token sampling on the GPU with model::sample_token's semantics (the CPU reference, model/generate_reference.h):
// one CTA of 1024 threads per row, no sort, and a launch shape that depends only on rows / cols / vocab (so a CUDA
// graph can capture it; the per-row parameters are read on the device).
//
// Notation: x_j the fp32 logit of token j < vocab, z_j = x_j * inv_t in double (inv_t = 1 / temperature, 1 when
// greedy), m = max z, e_j = exp(z_j - m) in double, sum = sum_j e_j, log_z = m + log(sum); the logprob written is
// (float)(z_token - log_z) whatever the truncation. Order: key(x) maps a float to a uint32 that sorts like the float
// (-0 and +0 share one key, as they compare equal on the CPU); "larger logit, then lower id" is the CPU's order.
//
// The row is cut into 32 contiguous segments, one per warp; a warp reads its segment coalesced (float4 when the row
// is 16-byte aligned), so per-warp results are sums over contiguous id ranges. Passes over the row:
//  P0      every lane keeps an online (max, sum exp(z - max)) in double and the first maximal key; warps merge them
//          (fixed trees: deterministic), giving m, sum, the argmax, and per-segment masses. Greedy stops here with
//          the first maximum. With top-k, P0 also counts the keys' top byte (warp-aggregated shared atomics).
//  top-k   radix select of the k-th largest key K_k over the four key bytes (count histograms; the byte-0
//          histogram came from P0): K_k and the quota c_k = k - count(key > K_k). The kept set is every key > K_k
//          plus the first c_k tokens with key == K_k in id order, exactly the CPU's partial sort.
//  top-p   the same four-byte descent over the kept-k set, on masses instead of counts: per-warp private double
//          histograms (the lanes of one digit are summed by a leader in lane order, so no float atomics and a
//          deterministic result), merged in warp order; the ties at K_k enter as c_k * e(K_k). Byte 0 gives the
//          kept-k mass K; the descent finds the key K* with mass(key > K*) < top_p * K <= mass(key >= K*) and keeps
//          the first r = ceil((top_p * K - mass(key > K*)) / e(K*)) ties at K* (at most c_k when K* = K_k).
//          This is the CPU's shortest prefix (in logit-descending, id-ascending order) reaching top_p.
//  (both)  once a radix bin holds at most kCap keys, the next pass also copies them to shared memory and the later
//          bytes are searched there, without reading the row again.
//  W1      with truncation, each warp sums the kept mass of its segment (keys > K*) and counts its ties at K*; a
//          scan over the segments hands each segment its share of the r kept ties (in id order) and locates the
//          segment whose running kept mass passes target = uniform * (kept mass). Without truncation the segment
//          masses come from P0 and W1 is skipped.
//  W2      the 1024 threads split that segment into contiguous sub-ranges, scan their kept masses (ties ranked in id
//          order by a scan of tie counts), and the thread whose sub-range holds the target walks it in id order:
//          the first kept token whose running mass exceeds the target (the last kept one if rounding leaves none).
// So the draw is the CPU's: the kept tokens in ascending id order, the first whose cumulative probability exceeds
// uniform * kept mass. All masses are in double from the same m as the CPU; the GPU's sums run in another order, so
// the token can differ from the CPU's only when the target lies within ~1e-15 (relative) of a cumulative boundary.
#include <climits>
#include <cmath>
#include <cstdint>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/ops.h"

namespace slime::cuda {
namespace {

constexpr int kThreads = 1024;
constexpr int kWarps = kThreads / 32;
constexpr int kBins = 256;
constexpr int kCap = 8192;  // keys of one radix bin held in shared memory
constexpr int kUnroll = 4;  // float4 groups in flight per lane
constexpr unsigned kFull = 0xffffffffu;

__device__ __forceinline__ uint32_t order_key(float x) {
  uint32_t b = __float_as_uint(x);
  if (b == 0x80000000u) b = 0;  // -0 == +0
  return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}
__device__ __forceinline__ float key_value(uint32_t k) {
  return __uint_as_float((k & 0x80000000u) ? (k & 0x7fffffffu) : ~k);
}

struct Shared {
  double hist[kWarps][kBins];  // per-warp radix masses; reused by W2 as the [kThreads] scan of masses
  double stage[kWarps][32];    // a warp's lane values, for its digit leaders
  uint32_t cand[kCap];         // keys of the current radix bin
  double bins[kBins];
  int counts[kBins];
  double seg_m[kWarps], seg_s[kWarps], seg_mass[kWarps];
  int seg_ties[kWarps], seg_kept[kWarps];
  unsigned long long warp_best[kWarps];
  double scan_d[kWarps];
  int scan_i[kWarps], warp_last[kWarps];
  // values every thread reads after a barrier
  double m, sum, need, base, target;
  unsigned long long best;
  uint32_t prefix;
  int need_count, expect, n_cand, seg, tie_base, chosen;
  bool cand_valid;
};

static_assert(kWarps == 32, "one warp scans the per-warp values");
static_assert(kThreads <= kWarps * kBins, "W2 reuses hist as a scan buffer");
static_assert(sizeof(Shared) <= 200 * 1024, "shared memory");

template <class T>
__device__ __forceinline__ T warp_inclusive_scan(T v, int lane) {
#pragma unroll
  for (int o = 1; o < 32; o <<= 1) {
    const T n = __shfl_up_sync(kFull, v, o);
    if (lane >= o) v += n;
  }
  return v;
}

// Inclusive scan over the block in thread order (every thread calls it); scratch holds kWarps values.
template <class T>
__device__ __forceinline__ T block_inclusive_scan(T v, T* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  v = warp_inclusive_scan(v, lane);
  __syncthreads();  // scratch may still be read by a previous call
  if (lane == 31) scratch[warp] = v;
  __syncthreads();
  if (warp == 0) scratch[lane] = warp_inclusive_scan(scratch[lane], lane);
  __syncthreads();
  return warp > 0 ? v + scratch[warp - 1] : v;
}

// (m, s) = (max, sum exp(z - max)) of a set; s == 0 means empty.
__device__ __forceinline__ void online_merge(double& m, double& s, double m2, double s2) {
  if (s2 == 0.0) return;
  if (s == 0.0) {
    m = m2;
    s = s2;
  } else if (m2 > m) {
    s = s * exp(m - m2) + s2;
    m = m2;
  } else {
    s += s2 * exp(m2 - m);
  }
}

// counts[d] += 1 for every lane with d >= 0 (warp-aggregated). Called by all 32 lanes.
__device__ __forceinline__ void count_digit(int* counts, int d, int lane) {
  if (!__any_sync(kFull, d >= 0)) return;
  const unsigned peers = __match_any_sync(kFull, d);
  if (d >= 0 && lane == __ffs(peers) - 1) atomicAdd(&counts[d], __popc(peers));
}

// hist[d] += e (this warp's private histogram) and counts[d] += 1 for every lane with d >= 0; the lanes of one digit
// are summed in lane order by the lowest of them. Called by all 32 lanes.
__device__ __forceinline__ void add_mass(double* hist, double* stage, int* counts, int d, double e, int lane) {
  if (!__any_sync(kFull, d >= 0)) return;
  const unsigned peers = __match_any_sync(kFull, d);
  stage[lane] = e;
  __syncwarp();
  if (d >= 0 && lane == __ffs(peers) - 1) {
    double s = 0.0;
    for (unsigned rest = peers; rest; rest &= rest - 1) s += stage[__ffs(rest) - 1];
    hist[d] += s;
    atomicAdd(&counts[d], __popc(peers));
  }
  __syncwarp();
}

// Appends the keys of the lanes with `take` to sh.cand. Called by all 32 lanes.
__device__ __forceinline__ void gather_key(Shared& sh, bool take, uint32_t key, int lane) {
  const unsigned ballot = __ballot_sync(kFull, take);
  if (!ballot) return;
  const int leader = __ffs(ballot) - 1;
  int base = 0;
  if (lane == leader) base = atomicAdd(&sh.n_cand, __popc(ballot));
  base = __shfl_sync(kFull, base, leader);
  if (take) {
    const int slot = base + __popc(ballot & ((1u << lane) - 1u));
    if (slot < kCap) sh.cand[slot] = key;
  }
}

// Warp 0: over bins 255 .. 0 (descending keys), the first bin at which the running total reaches `need`, and the
// total of the bins above it. When the total never reaches `need` (mass rounding), the lowest non-empty bin.
template <class T>
__device__ __forceinline__ void select_bin(const T* bins, T need, int lane, int& bin, T& above) {
  T v[8];
  T own = 0;
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    v[i] = bins[kBins - 1 - 8 * lane - i];
    own += v[i];
  }
  const T incl = warp_inclusive_scan(own, lane);
  T excl = __shfl_up_sync(kFull, incl, 1);
  if (lane == 0) excl = 0;
  const unsigned hit = __ballot_sync(kFull, incl >= need);
  const unsigned nonempty = __ballot_sync(kFull, own > 0);
  const int src = hit ? __ffs(hit) - 1 : (nonempty ? 31 - __clz(nonempty) : 31);
  int b = kBins - 1 - 8 * lane - 7;
  T a = excl;
  if (lane == src) {
    bool found = false;
    int last = -1;
    T acc = excl, acc_last = excl;
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      if (!found && hit && acc + v[i] >= need) {
        found = true;
        b = kBins - 1 - 8 * lane - i;
        a = acc;
      }
      if (v[i] > 0) {
        last = i;
        acc_last = acc;
      }
      acc += v[i];
    }
    if (!found && last >= 0) {
      b = kBins - 1 - 8 * lane - last;
      a = acc_last;
    }
  }
  bin = __shfl_sync(kFull, b, src);
  above = __shfl_sync(kFull, a, src);
}

struct RowView {
  const float* x;
  int64_t vocab;
  int64_t groups_per_seg;  // float4 groups per warp segment
  bool vec;
};

// Calls f(j, x_j, valid) for the elements of warp `warp`'s segment, lanes reading consecutive groups of 4; every lane
// makes the same number of calls (valid = false past the segment or the vocabulary), so f may use warp collectives.
template <class F>
__device__ __forceinline__ void visit_segment(const RowView& r, int warp, int lane, F&& f) {
  const int64_t g0 = warp * r.groups_per_seg;
  for (int64_t it = 0; it < r.groups_per_seg; it += 32 * kUnroll) {
    float v[kUnroll][4];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int64_t gi = it + 32 * u + lane, j = 4 * (g0 + gi);
      if (gi < r.groups_per_seg && j < r.vocab) {
        if (r.vec) {
          const float4 q = *reinterpret_cast<const float4*>(r.x + j);
          v[u][0] = q.x;
          v[u][1] = q.y;
          v[u][2] = q.z;
          v[u][3] = q.w;
        } else {
#pragma unroll
          for (int k = 0; k < 4; ++k) v[u][k] = j + k < r.vocab ? r.x[j + k] : 0.0f;
        }
      } else {
#pragma unroll
        for (int k = 0; k < 4; ++k) v[u][k] = 0.0f;
      }
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int64_t gi = it + 32 * u + lane, j = 4 * (g0 + gi);
#pragma unroll
      for (int k = 0; k < 4; ++k) f(j + k, v[u][k], gi < r.groups_per_seg && j + k < r.vocab);
    }
  }
}

__global__ void __launch_bounds__(kThreads, 1)
    sample_kernel(const float* __restrict__ logits, int64_t cols, int64_t vocab, const SamplingRow* __restrict__ params,
                  int* __restrict__ tokens, float* __restrict__ logprobs) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  Shared& sh = *reinterpret_cast<Shared*>(smem_raw);
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int64_t row = blockIdx.x;
  const float* x = logits + row * cols;
  const SamplingRow p = params[row];
  const bool greedy = p.temperature <= 0.0f;
  const double inv_t = greedy ? 1.0 : 1.0 / static_cast<double>(p.temperature);
  const bool topk_on = !greedy && p.top_k > 0 && p.top_k < vocab;
  const bool topp_on = !greedy && p.top_p < 1.0f;
  const RowView rv{x, vocab, ((vocab + 3) / 4 + kWarps - 1) / kWarps, cols % 4 == 0 && is_aligned(x, 16)};

  if (tid < kBins) sh.counts[tid] = 0;
  if (tid == 0) {
    sh.cand_valid = false;
    sh.n_cand = 0;
    sh.chosen = -1;
  }
  __syncthreads();

  // ---- P0: max, sum, argmax, per-segment masses (and the top byte's counts for top-k)
  double ml = -INFINITY, sl = 0.0;
  unsigned long long best = 0;
  visit_segment(rv, warp, lane, [&](int64_t j, float v, bool valid) {
    const uint32_t key = order_key(v);
    if (valid) {
      const unsigned long long c = (static_cast<unsigned long long>(key) << 32) | (0xffffffffu - static_cast<uint32_t>(j));
      best = c > best ? c : best;
      const double z = static_cast<double>(v) * inv_t;
      if (z > ml) {
        sl = (sl == 0.0 ? 0.0 : sl * exp(ml - z)) + 1.0;
        ml = z;
      } else if (z > -INFINITY) {
        sl += exp(z - ml);
      }
    }
    if (topk_on) count_digit(sh.counts, valid ? static_cast<int>(key >> 24) : -1, lane);
  });
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const double m2 = __shfl_xor_sync(kFull, ml, o), s2 = __shfl_xor_sync(kFull, sl, o);
    online_merge(ml, sl, m2, s2);
    const unsigned long long b2 = __shfl_xor_sync(kFull, best, o);
    best = b2 > best ? b2 : best;
  }
  if (lane == 0) {
    sh.seg_m[warp] = ml;
    sh.seg_s[warp] = sl;
    sh.warp_best[warp] = best;
  }
  __syncthreads();
  if (warp == 0) {
    ml = sh.seg_m[lane];
    sl = sh.seg_s[lane];
    best = sh.warp_best[lane];
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
      const double m2 = __shfl_xor_sync(kFull, ml, o), s2 = __shfl_xor_sync(kFull, sl, o);
      online_merge(ml, sl, m2, s2);
      const unsigned long long b2 = __shfl_xor_sync(kFull, best, o);
      best = b2 > best ? b2 : best;
    }
    if (lane == 0) {
      sh.m = ml;
      sh.sum = sl;
      sh.best = best;
    }
  }
  __syncthreads();
  const double m = sh.m, log_z = m + log(sh.sum);

  if (greedy) {
    if (tid == 0) {
      const int token = static_cast<int>(0xffffffffu - static_cast<uint32_t>(sh.best));
      tokens[row] = token;
      logprobs[row] = static_cast<float>(static_cast<double>(x[token]) - log_z);
    }
    return;
  }

  // The kept set: keys > kstar, and the first r_keep tokens with key == kstar in id order (everything by default).
  uint32_t kstar = 0;
  int r_keep = INT_MAX;

  // ---- top-k: radix select of the k-th largest key
  uint32_t key_k = 0;
  int c_k = 0;
  if (topk_on) {
    for (int level = 0; level < 4; ++level) {
      const int shift = 24 - 8 * level;
      if (level > 0) {
        const uint32_t prefix = sh.prefix;
        const bool from_cand = sh.cand_valid, gather = !from_cand && sh.expect <= kCap;
        __syncthreads();
        if (tid < kBins) sh.counts[tid] = 0;
        if (tid == 0 && gather) sh.n_cand = 0;
        __syncthreads();
        if (from_cand) {
          const int n = sh.n_cand;
          for (int i0 = 0; i0 < n; i0 += kThreads) {
            const int i = i0 + tid;
            const uint32_t key = i < n ? sh.cand[i] : 0u;
            const bool match = i < n && (key >> (shift + 8)) == prefix;
            count_digit(sh.counts, match ? static_cast<int>((key >> shift) & 255u) : -1, lane);
          }
        } else {
          visit_segment(rv, warp, lane, [&](int64_t j, float v, bool valid) {
            const uint32_t key = order_key(v);
            const bool match = valid && (key >> (shift + 8)) == prefix;
            count_digit(sh.counts, match ? static_cast<int>((key >> shift) & 255u) : -1, lane);
            if (gather) gather_key(sh, match, key, lane);
          });
        }
        __syncthreads();
        if (tid == 0 && gather) sh.cand_valid = true;
      }
      if (warp == 0) {
        const int need = level == 0 ? p.top_k : sh.need_count;
        int b, above;
        select_bin(sh.counts, need, lane, b, above);
        if (lane == 0) {
          sh.prefix = level == 0 ? static_cast<uint32_t>(b) : (sh.prefix << 8) | static_cast<uint32_t>(b);
          sh.need_count = need - above;
          sh.expect = sh.counts[b];
        }
      }
      __syncthreads();
    }
    key_k = sh.prefix;
    c_k = sh.need_count;
    kstar = key_k;
    r_keep = c_k;
  }

  // ---- top-p: the same descent on the masses of the kept-k set
  if (topp_on) {
    const double e_k = topk_on ? exp(static_cast<double>(key_value(key_k)) * inv_t - m) : 0.0;
    if (tid == 0) sh.cand_valid = false;
    for (int level = 0; level < 4; ++level) {
      const int shift = 24 - 8 * level;
      __syncthreads();
      const uint32_t prefix = level == 0 ? 0u : sh.prefix;
      const bool from_cand = sh.cand_valid, gather = level > 0 && !from_cand && sh.expect <= kCap;
      __syncthreads();
      for (int b = lane; b < kBins; b += 32) sh.hist[warp][b] = 0.0;
      if (tid < kBins) sh.counts[tid] = 0;
      if (tid == 0 && gather) sh.n_cand = 0;
      __syncthreads();
      auto digit = [&](uint32_t key) {
        const bool in = (!topk_on || key > key_k) && (level == 0 || (key >> (shift + 8)) == prefix);
        return in ? static_cast<int>((key >> shift) & 255u) : -1;
      };
      if (from_cand) {
        const int n = sh.n_cand;
        for (int i0 = 0; i0 < n; i0 += kThreads) {
          const int i = i0 + tid;
          const uint32_t key = i < n ? sh.cand[i] : 0u;
          const int d = i < n ? digit(key) : -1;
          const double e = d >= 0 ? exp(static_cast<double>(key_value(key)) * inv_t - m) : 0.0;
          add_mass(sh.hist[warp], sh.stage[warp], sh.counts, d, e, lane);
        }
      } else {
        visit_segment(rv, warp, lane, [&](int64_t j, float v, bool valid) {
          const uint32_t key = order_key(v);
          const int d = valid ? digit(key) : -1;
          const double e = d >= 0 ? exp(static_cast<double>(v) * inv_t - m) : 0.0;
          add_mass(sh.hist[warp], sh.stage[warp], sh.counts, d, e, lane);
          if (gather) gather_key(sh, d >= 0, key, lane);
        });
      }
      __syncthreads();
      if (tid < kBins) {
        double s = 0.0;
        for (int w = 0; w < kWarps; ++w) s += sh.hist[w][tid];
        // the ties at K_k that top-k keeps
        if (topk_on && (level == 0 || (key_k >> (shift + 8)) == prefix) &&
            static_cast<int>((key_k >> shift) & 255u) == tid) {
          s += c_k * e_k;
        }
        sh.bins[tid] = s;
      }
      if (tid == 0 && gather) sh.cand_valid = true;
      __syncthreads();
      if (warp == 0) {
        double need;
        if (level == 0) {  // the kept-k mass, then the mass top-p must reach (at least the top token's)
          double own = 0.0;
#pragma unroll
          for (int i = 0; i < 8; ++i) own += sh.bins[8 * lane + i];
          const double total = __shfl_sync(kFull, warp_inclusive_scan(own, lane), 31);
          need = fmax(static_cast<double>(p.top_p) * total, 1e-300);
        } else {
          need = sh.need;
        }
        int b;
        double above;
        select_bin(sh.bins, need, lane, b, above);
        if (lane == 0) {
          sh.prefix = level == 0 ? static_cast<uint32_t>(b) : (sh.prefix << 8) | static_cast<uint32_t>(b);
          sh.need = need - above;
          sh.expect = sh.counts[b];
        }
      }
    }
    __syncthreads();
    kstar = sh.prefix;
    const double e_star = exp(static_cast<double>(key_value(kstar)) * inv_t - m);
    const int limit = topk_on && kstar == key_k ? c_k : INT_MAX;
    const double r = e_star > 0.0 ? ceil(sh.need / e_star) : static_cast<double>(limit);
    r_keep = static_cast<int>(fmin(fmax(r, 1.0), static_cast<double>(limit)));
  }
  const bool truncated = topk_on || topp_on;
  const double e_star = truncated ? exp(static_cast<double>(key_value(kstar)) * inv_t - m) : 0.0;

  // ---- W1: kept mass and ties per segment; the segment holding the target
  if (truncated) {
    double mass = 0.0;
    int ties = 0, kept = 0;
    visit_segment(rv, warp, lane, [&](int64_t j, float v, bool valid) {
      if (!valid) return;
      const uint32_t key = order_key(v);
      if (key > kstar) {
        mass += exp(static_cast<double>(v) * inv_t - m);
        ++kept;
      } else if (key == kstar) {
        ++ties;
      }
    });
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
      mass += __shfl_xor_sync(kFull, mass, o);
      ties += __shfl_xor_sync(kFull, ties, o);
      kept += __shfl_xor_sync(kFull, kept, o);
    }
    if (lane == 0) {
      sh.seg_mass[warp] = mass;
      sh.seg_ties[warp] = ties;
      sh.seg_kept[warp] = kept;
    }
  } else if (lane == 0) {
    sh.seg_mass[warp] = sh.seg_s[warp] > 0.0 ? sh.seg_s[warp] * exp(sh.seg_m[warp] - m) : 0.0;
    sh.seg_ties[warp] = 0;
    sh.seg_kept[warp] = sh.seg_s[warp] > 0.0 ? 1 : 0;
  }
  __syncthreads();
  if (warp == 0) {
    const int ties = sh.seg_ties[lane];
    const int tie_before = warp_inclusive_scan(ties, lane) - ties;
    const int quota = min(max(r_keep - tie_before, 0), ties);
    const double mass = sh.seg_mass[lane] + quota * e_star;
    const int kept = sh.seg_kept[lane] + quota;
    const double incl = warp_inclusive_scan(mass, lane);
    double excl = __shfl_up_sync(kFull, incl, 1);
    if (lane == 0) excl = 0.0;
    const double target = static_cast<double>(p.uniform) * __shfl_sync(kFull, incl, 31);
    const unsigned hit = __ballot_sync(kFull, target < incl), nonempty = __ballot_sync(kFull, kept > 0);
    const int seg = hit ? __ffs(hit) - 1 : (nonempty ? 31 - __clz(nonempty) : 0);
    if (lane == seg) {
      sh.seg = seg;
      sh.base = excl;
      sh.tie_base = tie_before;
      sh.target = target;
    }
  }
  __syncthreads();

  // ---- W2: the threads split the segment; the one whose range holds the target walks it in id order
  const int64_t seg_len = 4 * rv.groups_per_seg, lo = sh.seg * seg_len, hi = min(lo + seg_len, vocab);
  const int64_t chunk = (max(hi - lo, int64_t{0}) + kThreads - 1) / kThreads;
  const int64_t a = min(lo + tid * chunk, hi), b = min(a + chunk, hi);
  int ties = 0;
  for (int64_t j = a; j < b; ++j) ties += order_key(x[j]) == kstar;
  const int rank0 = sh.tie_base + block_inclusive_scan(ties, sh.scan_i) - ties;
  double mass = 0.0;
  int last = -1;
  {
    int rank = rank0;
    for (int64_t j = a; j < b; ++j) {
      const float v = x[j];
      const uint32_t key = order_key(v);
      const bool kept = key > kstar || (key == kstar && rank++ < r_keep);
      if (kept) {
        mass += exp(static_cast<double>(v) * inv_t - m);
        last = static_cast<int>(j);
      }
    }
  }
  const double incl = block_inclusive_scan(mass, sh.scan_d);
  double* scan = &sh.hist[0][0];
  scan[tid] = incl;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) last = max(last, __shfl_xor_sync(kFull, last, o));
  if (lane == 0) sh.warp_last[warp] = last;
  __syncthreads();
  const double base = sh.base, target = sh.target;
  const double low = tid == 0 ? base : base + scan[tid - 1];
  if ((tid == 0 || target >= low) && target < base + incl) {
    double acc = low;
    int pick = last, rank = rank0;
    for (int64_t j = a; j < b; ++j) {
      const float v = x[j];
      const uint32_t key = order_key(v);
      const bool kept = key > kstar || (key == kstar && rank++ < r_keep);
      if (kept) {
        acc += exp(static_cast<double>(v) * inv_t - m);
        if (target < acc) {
          pick = static_cast<int>(j);
          break;
        }
      }
    }
    sh.chosen = pick;
  }
  __syncthreads();
  if (tid == 0) {
    int token = sh.chosen;
    if (token < 0)
      for (int w = 0; w < kWarps; ++w) token = max(token, sh.warp_last[w]);
    if (token < 0) token = 0;  // unreachable: the kept set is never empty
    tokens[row] = token;
    logprobs[row] = static_cast<float>(static_cast<double>(x[token]) * inv_t - log_z);
  }
}

}  // namespace

void sample_tokens(const float* logits, int64_t rows, int64_t cols, int64_t vocab, const SamplingRow* params,
                   int* tokens, float* logprobs, cudaStream_t stream) {
  SLIME_CHECK(rows >= 0 && rows <= INT_MAX, "sample_tokens: rows ", rows, " out of range");
  SLIME_CHECK(vocab > 0 && vocab <= cols && vocab < INT_MAX, "sample_tokens: vocab ", vocab, " with ", cols,
              " columns");
  if (rows == 0) return;
  constexpr int kSmem = static_cast<int>(sizeof(Shared));
  static const bool configured = [] {
    cudaCheck(cudaFuncSetAttribute(sample_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kSmem));
    return true;
  }();
  (void)configured;
  sample_kernel<<<static_cast<unsigned>(rows), kThreads, kSmem, stream>>>(logits, cols, vocab, params, tokens,
                                                                          logprobs);
  cudaCheckLaunch("sample_kernel");
}

}  // namespace slime::cuda
