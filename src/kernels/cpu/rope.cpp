#include "kernels/cpu/rope.h"

#include <cmath>

#include "kernels/cpu/views.h"

namespace slime::cpu {

template <class T>
void rope_tables(const float* inv_freq, int64_t half, const int64_t* positions, int64_t tokens, T* cos, T* sin) {
  Kokkos::parallel_for("rope_tables", rows(tokens), [=](int64_t t) {
    float position = static_cast<float>(positions[t]);
    for (int64_t i = 0; i < half; ++i) {
      float angle = position * inv_freq[i];  // fp32 product, as transformers' rotary embedding computes it
      cos[t * half + i] = static_cast<T>(std::cos(static_cast<double>(angle)));
      sin[t * half + i] = static_cast<T>(std::sin(static_cast<double>(angle)));
    }
  });
}

template <class T>
void rope_apply(T* x, const T* cos, const T* sin, int64_t heads, int64_t tokens, int64_t head_dim, bool inverse) {
  const int64_t half = head_dim / 2;
  const T sign = inverse ? T(-1) : T(1);
  Kokkos::parallel_for("rope_apply", rows(heads * tokens), [=](int64_t row) {
    int64_t t = row % tokens;
    T* v = x + row * head_dim;
    const T* c = cos + t * half;
    const T* s = sin + t * half;
    for (int64_t i = 0; i < half; ++i) {
      T x1 = v[i], x2 = v[i + half];
      T si = sign * s[i];
      v[i] = x1 * c[i] - x2 * si;
      v[i + half] = x2 * c[i] + x1 * si;
    }
  });
}

template void rope_tables<float>(const float*, int64_t, const int64_t*, int64_t, float*, float*);
template void rope_tables<double>(const float*, int64_t, const int64_t*, int64_t, double*, double*);
template void rope_apply<float>(float*, const float*, const float*, int64_t, int64_t, int64_t, bool);
template void rope_apply<double>(double*, const double*, const double*, int64_t, int64_t, int64_t, bool);

}  // namespace slime::cpu
