#include "kernels/cpu/gemm.h"

#include <KokkosBlas3_gemm.hpp>
#include <chrono>

#include "kernels/cpu/views.h"

namespace slime::cpu {

GemmStats& gemm_stats() {
  static GemmStats stats;
  return stats;
}

namespace {
bool g_shape_profiling = false;
std::map<std::string, GemmStats>& shape_table() {
  static std::map<std::string, GemmStats> table;
  return table;
}
}  // namespace

void reset_gemm_stats() {
  gemm_stats() = GemmStats{};
  shape_table().clear();
}

void set_gemm_shape_profiling(bool enabled) { g_shape_profiling = enabled; }
const std::map<std::string, GemmStats>& gemm_shape_stats() { return shape_table(); }

template <class T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, const T* B, T beta,
          T* C) {
  if (M == 0 || N == 0) return;
  auto start = std::chrono::steady_clock::now();
  using ConstMat = Kokkos::View<const T**, Kokkos::LayoutRight, HostSpace, Unmanaged>;
  ConstMat a(A, trans_a ? K : M, trans_a ? M : K);
  ConstMat b(B, trans_b ? N : K, trans_b ? K : N);
  Mat<T> c(C, M, N);
  if (K == 0) {
    // BLAS leaves C untouched when K == 0 only if beta == 1; make the beta scaling explicit.
    Kokkos::parallel_for("gemm_scale", rows(M), [=](int64_t i) {
      for (int64_t j = 0; j < N; ++j) c(i, j) = beta == T(0) ? T(0) : beta * c(i, j);
    });
  } else {
    KokkosBlas::gemm(trans_a ? "T" : "N", trans_b ? "T" : "N", alpha, a, b, beta, c);
  }
  const double flops = 2.0 * static_cast<double>(M) * static_cast<double>(N) * static_cast<double>(K);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  GemmStats& stats = gemm_stats();
  stats.calls += 1;
  stats.flops += flops;
  stats.seconds += seconds;
  if (g_shape_profiling) {
    GemmStats& shape = shape_table()[std::string(trans_a ? "T" : "N") + (trans_b ? "T " : "N ") + std::to_string(M) +
                                     "x" + std::to_string(N) + "x" + std::to_string(K)];
    shape.calls += 1;
    shape.flops += flops;
    shape.seconds += seconds;
  }
}

template void gemm<float>(bool, bool, int64_t, int64_t, int64_t, float, const float*, const float*, float, float*);
template void gemm<double>(bool, bool, int64_t, int64_t, int64_t, double, const double*, const double*, double,
                           double*);

}  // namespace slime::cpu
