#include "kernels/cpu/attention.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/cpu/gemm.h"
#include "kernels/cpu/views.h"

namespace slime::cpu {
namespace {

constexpr int64_t kQueryBlock = 256;  // query rows per block: bounds the score buffer to 256 x sequence length

}  // namespace

template <class T>
void attention_forward(const AttentionShape& s, const int64_t* cu_seqlens, const T* q, const T* k, const T* v,
                       T scale, T* out, T* lse) {
  const int64_t T_ = s.tokens, d = s.head_dim, per_group = s.heads / s.groups;
  std::vector<T> scores;
  for (int64_t b = 0; b < s.sequences; ++b) {
    const int64_t start = cu_seqlens[b], len = cu_seqlens[b + 1] - start;
    if (len == 0) continue;
    scores.resize(static_cast<size_t>(std::min(len, kQueryBlock) * len));
    for (int64_t h = 0; h < s.heads; ++h) {
      const int64_t g = h / per_group;
      const T* Q = q + (h * T_ + start) * d;
      const T* K = k + (g * T_ + start) * d;
      const T* V = v + (g * T_ + start) * d;
      T* O = out + (h * T_ + start) * d;
      T* L = lse + h * T_ + start;
      for (int64_t r0 = 0; r0 < len; r0 += kQueryBlock) {
        const int64_t r1 = std::min(len, r0 + kQueryBlock), nq = r1 - r0, nk = r1;
        T* S = scores.data();
        gemm<T>(false, true, nq, nk, d, scale, Q + r0 * d, K, T(0), S);  // S = scale * Q K^T
        Kokkos::parallel_for("attn_softmax", rows(nq), [=](int64_t i) {
          T* row = S + i * nk;
          const int64_t last = r0 + i;  // causal: keys 0..last
          T m = -std::numeric_limits<T>::infinity();
          for (int64_t j = 0; j <= last; ++j) m = std::max(m, row[j]);
          double sum = 0;
          for (int64_t j = 0; j <= last; ++j) {
            row[j] = std::exp(row[j] - m);
            sum += row[j];
          }
          T inv = static_cast<T>(1.0 / sum);
          for (int64_t j = 0; j <= last; ++j) row[j] *= inv;
          for (int64_t j = last + 1; j < nk; ++j) row[j] = T(0);
          L[r0 + i] = m + static_cast<T>(std::log(sum));
        });
        gemm<T>(false, false, nq, d, nk, T(1), S, V, T(0), O + r0 * d);  // O = P V
      }
    }
  }
}

template <class T>
void attention_backward(const AttentionShape& s, const int64_t* cu_seqlens, const T* q, const T* k, const T* v,
                        const T* out, const T* lse, const T* dout, T scale, T* dq, T* dk, T* dv) {
  const int64_t T_ = s.tokens, d = s.head_dim, per_group = s.heads / s.groups;
  std::fill(dk, dk + s.groups * T_ * d, T(0));
  std::fill(dv, dv + s.groups * T_ * d, T(0));
  std::vector<T> probs, dprobs, delta;
  for (int64_t b = 0; b < s.sequences; ++b) {
    const int64_t start = cu_seqlens[b], len = cu_seqlens[b + 1] - start;
    if (len == 0) continue;
    const size_t block = static_cast<size_t>(std::min(len, kQueryBlock) * len);
    probs.resize(block);
    dprobs.resize(block);
    delta.resize(static_cast<size_t>(len));
    for (int64_t h = 0; h < s.heads; ++h) {
      const int64_t g = h / per_group;
      const T* Q = q + (h * T_ + start) * d;
      const T* K = k + (g * T_ + start) * d;
      const T* V = v + (g * T_ + start) * d;
      const T* O = out + (h * T_ + start) * d;
      const T* dO = dout + (h * T_ + start) * d;
      const T* L = lse + h * T_ + start;
      T* dQ = dq + (h * T_ + start) * d;
      T* dK = dk + (g * T_ + start) * d;
      T* dV = dv + (g * T_ + start) * d;
      T* D = delta.data();
      // D_i = sum_j dO_ij O_ij (= sum_k P_ik dP_ik), the softmax backward's row correction.
      Kokkos::parallel_for("attn_delta", rows(len), [=](int64_t i) {
        double acc = 0;
        for (int64_t j = 0; j < d; ++j) acc += static_cast<double>(dO[i * d + j]) * O[i * d + j];
        D[i] = static_cast<T>(acc);
      });
      for (int64_t r0 = 0; r0 < len; r0 += kQueryBlock) {
        const int64_t r1 = std::min(len, r0 + kQueryBlock), nq = r1 - r0, nk = r1;
        T* P = probs.data();
        T* dP = dprobs.data();
        gemm<T>(false, true, nq, nk, d, scale, Q + r0 * d, K, T(0), P);
        Kokkos::parallel_for("attn_recompute_p", rows(nq), [=](int64_t i) {
          T* row = P + i * nk;
          const int64_t last = r0 + i;
          const T l = L[r0 + i];
          for (int64_t j = 0; j <= last; ++j) row[j] = std::exp(row[j] - l);
          for (int64_t j = last + 1; j < nk; ++j) row[j] = T(0);
        });
        gemm<T>(true, false, nk, d, nq, T(1), P, dO + r0 * d, T(1), dV);  // dV += P^T dO
        gemm<T>(false, true, nq, nk, d, T(1), dO + r0 * d, V, T(0), dP);  // dP = dO V^T
        Kokkos::parallel_for("attn_dscores", rows(nq), [=](int64_t i) {
          T* prow = P + i * nk;
          T* dprow = dP + i * nk;
          const T di = D[r0 + i];
          for (int64_t j = 0; j < nk; ++j) dprow[j] = prow[j] * (dprow[j] - di);  // dS (masked: P = 0)
        });
        gemm<T>(false, false, nq, d, nk, scale, dP, K, T(0), dQ + r0 * d);  // dQ = scale dS K
        gemm<T>(true, false, nk, d, nq, scale, dP, Q + r0 * d, T(1), dK);   // dK += scale dS^T Q
      }
    }
  }
}

template void attention_forward<float>(const AttentionShape&, const int64_t*, const float*, const float*,
                                       const float*, float, float*, float*);
template void attention_forward<double>(const AttentionShape&, const int64_t*, const double*, const double*,
                                        const double*, double, double*, double*);
template void attention_backward<float>(const AttentionShape&, const int64_t*, const float*, const float*,
                                        const float*, const float*, const float*, const float*, float, float*,
                                        float*, float*);
template void attention_backward<double>(const AttentionShape&, const int64_t*, const double*, const double*,
                                         const double*, const double*, const double*, const double*, double,
                                         double*, double*, double*);

}  // namespace slime::cpu
