#include "kernels/cpu/paged_attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "kernels/cpu/gemm.h"
#include "kernels/cpu/views.h"

namespace slime::cpu {

template <class T>
void kv_cache_write(const PagedAttentionShape& s, const PagedSequences& seqs, const T* k, const T* v, T* k_cache,
                    T* v_cache) {
  const int64_t G = s.groups, d = s.head_dim, Tn = s.tokens;
  const size_t bytes = static_cast<size_t>(d) * sizeof(T);
  for (size_t b = 0; b + 1 < seqs.cu_seqlens.size(); ++b) {
    for (int64_t t = seqs.cu_seqlens[b]; t < seqs.cu_seqlens[b + 1]; ++t) {
      const int64_t slot = seqs.slot_of(static_cast<int64_t>(b), seqs.positions[t], s.block_size);
      for (int64_t g = 0; g < G; ++g) {
        std::memcpy(k_cache + (slot * G + g) * d, k + (g * Tn + t) * d, bytes);
        std::memcpy(v_cache + (slot * G + g) * d, v + (g * Tn + t) * d, bytes);
      }
    }
  }
}

namespace {

// Dot product with independent partial sums, so the compiler can vectorise it without reassociation flags.
template <class T>
T dot(const T* a, const T* b, int64_t n) {
  T acc[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; ++k) acc[k] += a[i + k] * b[i + k];
  T sum = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  for (; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

// One query token (decode): scores, softmax and the weighted sum straight from the cache slots, for the heads of
// every KV group at once. Tiny GEMMs (one row) cost more in call overhead and K/V gathering than they compute.
template <class T>
void decode_attention(const PagedAttentionShape& s, const PagedSequences& seqs, int64_t b, int64_t t, const T* q,
                      const T* k_cache, const T* v_cache, T scale, T* out, std::vector<T>& scores) {
  const int64_t H = s.heads, G = s.groups, d = s.head_dim, Tn = s.tokens, per_group = H / G;
  const int64_t span = seqs.positions[t] + 1;  // causal: cached positions 0..pos
  scores.resize(static_cast<size_t>(per_group * span));
  for (int64_t g = 0; g < G; ++g) {
    for (int64_t p = 0; p < span; ++p) {
      const T* key = k_cache + (seqs.slot_of(b, p, s.block_size) * G + g) * d;
      for (int64_t j = 0; j < per_group; ++j)
        scores[j * span + p] = scale * dot(q + ((g * per_group + j) * Tn + t) * d, key, d);
    }
    for (int64_t j = 0; j < per_group; ++j) {
      T* row = scores.data() + j * span;
      T m = -std::numeric_limits<T>::infinity();
      for (int64_t p = 0; p < span; ++p) m = std::max(m, row[p]);
      double sum = 0;
      for (int64_t p = 0; p < span; ++p) sum += row[p] = std::exp(row[p] - m);
      const T inv = static_cast<T>(1.0 / sum);
      for (int64_t p = 0; p < span; ++p) row[p] *= inv;
      std::fill(out + ((g * per_group + j) * Tn + t) * d, out + ((g * per_group + j) * Tn + t + 1) * d, T(0));
    }
    for (int64_t p = 0; p < span; ++p) {
      const T* value = v_cache + (seqs.slot_of(b, p, s.block_size) * G + g) * d;
      for (int64_t j = 0; j < per_group; ++j) {
        const T w = scores[j * span + p];
        T* o = out + ((g * per_group + j) * Tn + t) * d;
        for (int64_t e = 0; e < d; ++e) o[e] += w * value[e];
      }
    }
  }
}

}  // namespace

template <class T>
void paged_attention_forward(const PagedAttentionShape& s, const PagedSequences& seqs, const T* q, const T* k_cache,
                             const T* v_cache, T scale, T* out) {
  const int64_t H = s.heads, G = s.groups, d = s.head_dim, Tn = s.tokens, per_group = H / G;
  const size_t bytes = static_cast<size_t>(d) * sizeof(T);
  std::vector<T> keys, values, scores;
  for (size_t b = 0; b + 1 < seqs.cu_seqlens.size(); ++b) {
    const int64_t start = seqs.cu_seqlens[b], n = seqs.cu_seqlens[b + 1] - start;
    if (n == 0) continue;
    if (n == 1) {
      decode_attention(s, seqs, static_cast<int64_t>(b), start, q, k_cache, v_cache, scale, out, scores);
      continue;
    }
    const int64_t ctx = seqs.context_lens[b];
    keys.resize(static_cast<size_t>(ctx * d));
    values.resize(static_cast<size_t>(ctx * d));
    scores.resize(static_cast<size_t>(n * ctx));
    for (int64_t g = 0; g < G; ++g) {
      for (int64_t p = 0; p < ctx; ++p) {  // gather this group's cached keys/values [ctx, d]
        const int64_t slot = seqs.slot_of(static_cast<int64_t>(b), p, s.block_size);
        std::memcpy(keys.data() + p * d, k_cache + (slot * G + g) * d, bytes);
        std::memcpy(values.data() + p * d, v_cache + (slot * G + g) * d, bytes);
      }
      for (int64_t j = 0; j < per_group; ++j) {
        const int64_t h = g * per_group + j;
        const T* Q = q + (h * Tn + start) * d;
        T* S = scores.data();
        gemm<T>(false, true, n, ctx, d, scale, Q, keys.data(), T(0), S);
        const int64_t* pos = seqs.positions.data() + start;
        Kokkos::parallel_for("paged_softmax", rows(n), [=](int64_t i) {
          T* row = S + i * ctx;
          const int64_t last = pos[i];  // causal: cached positions 0..pos
          T m = -std::numeric_limits<T>::infinity();
          for (int64_t k = 0; k <= last; ++k) m = std::max(m, row[k]);
          double sum = 0;
          for (int64_t k = 0; k <= last; ++k) {
            row[k] = std::exp(row[k] - m);
            sum += row[k];
          }
          const T inv = static_cast<T>(1.0 / sum);
          for (int64_t k = 0; k <= last; ++k) row[k] *= inv;
          for (int64_t k = last + 1; k < ctx; ++k) row[k] = T(0);
        });
        gemm<T>(false, false, n, d, ctx, T(1), S, values.data(), T(0), out + (h * Tn + start) * d);
      }
    }
  }
}

template void kv_cache_write<float>(const PagedAttentionShape&, const PagedSequences&, const float*, const float*,
                                    float*, float*);
template void paged_attention_forward<float>(const PagedAttentionShape&, const PagedSequences&, const float*,
                                             const float*, const float*, float, float*);

}  // namespace slime::cpu
