#include "kernels/cpu/linear.h"

#include "kernels/cpu/gemm.h"
#include "kernels/cpu/views.h"

namespace slime::cpu {

template <class T>
void linear_forward(const T* x, const T* weight, const T* bias, T* y, int64_t tokens, int64_t in, int64_t out) {
  gemm<T>(false, true, tokens, out, in, T(1), x, weight, T(0), y);
  if (bias) {
    Mat<T> Y(y, tokens, out);
    Kokkos::parallel_for("linear_bias", rows(tokens), [=](int64_t t) {
      for (int64_t j = 0; j < out; ++j) Y(t, j) += bias[j];
    });
  }
}

template <class T>
void linear_backward(const T* x, const T* weight, const T* dy, T* dx, T* dweight, T* dbias, int64_t tokens,
                     int64_t in, int64_t out) {
  if (dx) gemm<T>(false, false, tokens, in, out, T(1), dy, weight, T(0), dx);
  if (dweight) gemm<T>(true, false, out, in, tokens, T(1), dy, x, T(1), dweight);
  if (dbias) {
    // Column sums, accumulated row by row so the access stays contiguous.
    for (int64_t t = 0; t < tokens; ++t)
      for (int64_t j = 0; j < out; ++j) dbias[j] += dy[t * out + j];
  }
}

template void linear_forward<float>(const float*, const float*, const float*, float*, int64_t, int64_t, int64_t);
template void linear_forward<double>(const double*, const double*, const double*, double*, int64_t, int64_t,
                                     int64_t);
template void linear_backward<float>(const float*, const float*, const float*, float*, float*, float*, int64_t,
                                     int64_t, int64_t);
template void linear_backward<double>(const double*, const double*, const double*, double*, double*, double*,
                                      int64_t, int64_t, int64_t);

}  // namespace slime::cpu
