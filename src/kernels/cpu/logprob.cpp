#include "kernels/cpu/logprob.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/cpu/views.h"

namespace slime::cpu {

template <class T>
void logprob_entropy_forward(const LogitsShape& s, const T* logits, const int64_t* targets, T inv_temperature,
                             T* logprob, T* entropy, T* lse) {
  Kokkos::parallel_for("logprob_fwd", rows(s.tokens), [=](int64_t t) {
    const T* z = logits + t * s.padded;
    T m = -std::numeric_limits<T>::infinity();
    for (int64_t j = 0; j < s.vocab; ++j) m = std::max(m, z[j] * inv_temperature);
    double sum = 0, weighted = 0;  // sum exp(z - m), sum exp(z - m) * z
    for (int64_t j = 0; j < s.vocab; ++j) {
      double zj = static_cast<double>(z[j] * inv_temperature);
      double e = std::exp(zj - m);
      sum += e;
      weighted += e * zj;
    }
    double log_z = m + std::log(sum);
    lse[t] = static_cast<T>(log_z);
    logprob[t] = static_cast<T>(static_cast<double>(z[targets[t]] * inv_temperature) - log_z);
    if (entropy) entropy[t] = static_cast<T>(log_z - weighted / sum);
  });
}

template <class T>
void logprob_entropy_backward(const LogitsShape& s, const T* logits, const int64_t* targets, T inv_temperature,
                              const T* lse, const T* dlogprob, const T* dentropy, T* dlogits) {
  Kokkos::parallel_for("logprob_bwd", rows(s.tokens), [=](int64_t t) {
    const T* z = logits + t * s.padded;
    T* dz = dlogits + t * s.padded;
    const double l = lse[t];
    const double g_lp = dlogprob ? static_cast<double>(dlogprob[t]) : 0.0;
    const double g_ent = dentropy ? static_cast<double>(dentropy[t]) : 0.0;
    double mean_z = 0;
    if (g_ent != 0.0) {
      for (int64_t j = 0; j < s.vocab; ++j) {
        double zj = static_cast<double>(z[j] * inv_temperature);
        mean_z += std::exp(zj - l) * zj;
      }
    }
    for (int64_t j = 0; j < s.vocab; ++j) {
      double zj = static_cast<double>(z[j] * inv_temperature);
      double p = std::exp(zj - l);
      double grad = -g_lp * p - g_ent * p * (zj - mean_z);
      dz[j] = static_cast<T>(grad * inv_temperature);
    }
    dz[targets[t]] += static_cast<T>(g_lp * inv_temperature);
    std::fill(dz + s.vocab, dz + s.padded, T(0));
  });
}

template void logprob_entropy_forward<float>(const LogitsShape&, const float*, const int64_t*, float, float*, float*,
                                             float*);
template void logprob_entropy_forward<double>(const LogitsShape&, const double*, const int64_t*, double, double*,
                                              double*, double*);
template void logprob_entropy_backward<float>(const LogitsShape&, const float*, const int64_t*, float, const float*,
                                              const float*, const float*, float*);
template void logprob_entropy_backward<double>(const LogitsShape&, const double*, const int64_t*, double,
                                               const double*, const double*, const double*, double*);

}  // namespace slime::cpu
