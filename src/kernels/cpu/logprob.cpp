#include "kernels/cpu/logprob.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/cpu/views.h"

namespace slime::cpu {

int64_t LogitsShape::valid_columns() const { return std::clamp<int64_t>(vocab - vocab_begin, 0, padded); }

template <class T>
void logprob_partial_max(const LogitsShape& s, const T* logits, T inv_temperature, T* row_max) {
  const int64_t valid = s.valid_columns();
  Kokkos::parallel_for("logprob_max", rows(s.tokens), [=](int64_t t) {
    const T* z = logits + t * s.padded;
    T m = -std::numeric_limits<T>::infinity();
    for (int64_t j = 0; j < valid; ++j) m = std::max(m, z[j] * inv_temperature);
    row_max[t] = m;
  });
}

template <class T>
void logprob_partial_sums(const LogitsShape& s, const T* logits, const int64_t* targets, T inv_temperature,
                          const T* row_max, double* sum_exp, double* sum_exp_z, double* target_z) {
  const int64_t valid = s.valid_columns();
  Kokkos::parallel_for("logprob_sums", rows(s.tokens), [=](int64_t t) {
    const T* z = logits + t * s.padded;
    const double m = row_max[t];
    double se = 0, sez = 0;
    for (int64_t j = 0; j < valid; ++j) {
      const double zj = static_cast<double>(z[j] * inv_temperature);
      const double e = std::exp(zj - m);
      se += e;
      sez += e * zj;
    }
    sum_exp[t] = se;
    sum_exp_z[t] = sez;
    const int64_t local = targets[t] - s.vocab_begin;
    target_z[t] = (local >= 0 && local < valid) ? static_cast<double>(z[local] * inv_temperature) : 0.0;
  });
}

template <class T>
void logprob_entropy_forward(const LogitsShape& s, const T* logits, const int64_t* targets, T inv_temperature,
                             T* logprob, T* entropy, T* lse, T* mean_z) {
  std::vector<T> row_max(s.tokens);
  std::vector<double> sum_exp(s.tokens), sum_exp_z(s.tokens), target_z(s.tokens);
  logprob_partial_max<T>(s, logits, inv_temperature, row_max.data());
  logprob_partial_sums<T>(s, logits, targets, inv_temperature, row_max.data(), sum_exp.data(), sum_exp_z.data(),
                          target_z.data());
  for (int64_t t = 0; t < s.tokens; ++t) {
    const double log_z = row_max[t] + std::log(sum_exp[t]);
    const double ez = sum_exp_z[t] / sum_exp[t];
    lse[t] = static_cast<T>(log_z);
    logprob[t] = static_cast<T>(target_z[t] - log_z);
    if (entropy) entropy[t] = static_cast<T>(log_z - ez);
    if (mean_z) mean_z[t] = static_cast<T>(ez);
  }
}

template <class T>
void logprob_entropy_backward(const LogitsShape& s, const T* logits, const int64_t* targets, T inv_temperature,
                              const T* lse, const T* mean_z, const T* dlogprob, const T* dentropy, T* dlogits) {
  const int64_t valid = s.valid_columns();
  Kokkos::parallel_for("logprob_bwd", rows(s.tokens), [=](int64_t t) {
    const T* z = logits + t * s.padded;
    T* dz = dlogits + t * s.padded;
    const double l = lse[t];
    const double g_lp = dlogprob ? static_cast<double>(dlogprob[t]) : 0.0;
    const double g_ent = dentropy ? static_cast<double>(dentropy[t]) : 0.0;
    const double ez = (g_ent != 0.0) ? static_cast<double>(mean_z[t]) : 0.0;
    for (int64_t j = 0; j < valid; ++j) {
      const double zj = static_cast<double>(z[j] * inv_temperature);
      const double p = std::exp(zj - l);
      dz[j] = static_cast<T>((-g_lp * p - g_ent * p * (zj - ez)) * inv_temperature);
    }
    const int64_t local = targets[t] - s.vocab_begin;
    if (local >= 0 && local < valid) dz[local] += static_cast<T>(g_lp * inv_temperature);
    std::fill(dz + valid, dz + s.padded, T(0));
  });
}

#define SLIME_INSTANTIATE_LOGPROB(T)                                                                            \
  template void logprob_partial_max<T>(const LogitsShape&, const T*, T, T*);                                    \
  template void logprob_partial_sums<T>(const LogitsShape&, const T*, const int64_t*, T, const T*, double*,     \
                                        double*, double*);                                                      \
  template void logprob_entropy_forward<T>(const LogitsShape&, const T*, const int64_t*, T, T*, T*, T*, T*);     \
  template void logprob_entropy_backward<T>(const LogitsShape&, const T*, const int64_t*, T, const T*, const T*, \
                                            const T*, const T*, T*);
SLIME_INSTANTIATE_LOGPROB(float)
SLIME_INSTANTIATE_LOGPROB(double)

}  // namespace slime::cpu
