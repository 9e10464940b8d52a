#include "kernels/cpu/rmsnorm.h"

#include <cmath>

#include "kernels/cpu/views.h"

namespace slime::cpu {

template <class T>
void rmsnorm_forward(const T* x, const T* weight, T eps, T* y, T* rstd, int64_t nrows, int64_t n) {
  Mat<const T> X(x, nrows, n);
  Mat<T> Y(y, nrows, n);
  Kokkos::parallel_for("rmsnorm_fwd", rows(nrows), [=](int64_t r) {
    double sum_sq = 0;
    for (int64_t j = 0; j < n; ++j) sum_sq += static_cast<double>(X(r, j)) * X(r, j);
    T inv = static_cast<T>(1.0 / std::sqrt(sum_sq / n + static_cast<double>(eps)));
    rstd[r] = inv;
    for (int64_t j = 0; j < n; ++j) Y(r, j) = weight[j] * (X(r, j) * inv);
  });
}

template <class T>
void rmsnorm_backward(const T* x, const T* weight, const T* rstd, const T* dy, T* dx, T* dweight, int64_t nrows,
                      int64_t n) {
  Mat<const T> X(x, nrows, n), DY(dy, nrows, n);
  Mat<T> DX(dx, nrows, n);
  // dx = r * (w*dy) - x * r^3 / n * sum_j(w_j * dy_j * x_j)
  Kokkos::parallel_for("rmsnorm_bwd_dx", rows(nrows), [=](int64_t r) {
    double dot = 0;
    for (int64_t j = 0; j < n; ++j) dot += static_cast<double>(weight[j]) * DY(r, j) * X(r, j);
    double inv = rstd[r];
    double coef = dot * inv * inv * inv / n;
    for (int64_t j = 0; j < n; ++j) DX(r, j) = static_cast<T>(inv * weight[j] * DY(r, j) - coef * X(r, j));
  });
  if (dweight) {
    for (int64_t r = 0; r < nrows; ++r)
      for (int64_t j = 0; j < n; ++j) dweight[j] += DY(r, j) * X(r, j) * rstd[r];
  }
}

template void rmsnorm_forward<float>(const float*, const float*, float, float*, float*, int64_t, int64_t);
template void rmsnorm_forward<double>(const double*, const double*, double, double*, double*, int64_t, int64_t);
template void rmsnorm_backward<float>(const float*, const float*, const float*, const float*, float*, float*,
                                      int64_t, int64_t);
template void rmsnorm_backward<double>(const double*, const double*, const double*, const double*, double*,
                                       double*, int64_t, int64_t);

}  // namespace slime::cpu
