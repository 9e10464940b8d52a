#include "kernels/cpu/swiglu.h"

#include <cmath>

#include "kernels/cpu/views.h"

namespace slime::cpu {

template <class T>
void swiglu_forward(const T* gate_up, T* out, int64_t tokens, int64_t ffn) {
  Kokkos::parallel_for("swiglu_fwd", rows(tokens), [=](int64_t t) {
    const T* gate = gate_up + t * 2 * ffn;
    const T* up = gate + ffn;
    for (int64_t j = 0; j < ffn; ++j) {
      T sig = T(1) / (T(1) + std::exp(-gate[j]));
      out[t * ffn + j] = gate[j] * sig * up[j];
    }
  });
}

template <class T>
void swiglu_backward(const T* gate_up, const T* dout, T* dgate_up, int64_t tokens, int64_t ffn) {
  Kokkos::parallel_for("swiglu_bwd", rows(tokens), [=](int64_t t) {
    const T* gate = gate_up + t * 2 * ffn;
    const T* up = gate + ffn;
    T* dgate = dgate_up + t * 2 * ffn;
    T* dup = dgate + ffn;
    for (int64_t j = 0; j < ffn; ++j) {
      T x = gate[j];
      T sig = T(1) / (T(1) + std::exp(-x));
      T silu = x * sig;
      T g = dout[t * ffn + j];
      dup[j] = g * silu;
      dgate[j] = g * up[j] * sig * (T(1) + x * (T(1) - sig));  // d silu/dx = s (1 + x (1 - s))
    }
  });
}

template void swiglu_forward<float>(const float*, float*, int64_t, int64_t);
template void swiglu_forward<double>(const double*, double*, int64_t, int64_t);
template void swiglu_backward<float>(const float*, const float*, float*, int64_t, int64_t);
template void swiglu_backward<double>(const double*, const double*, double*, int64_t, int64_t);

}  // namespace slime::cpu
