// Matrix products for the CPU backend: KokkosBlas::gemm over contiguous row-major matrices (OpenBLAS underneath).
// Every call is counted (calls, FLOPs, seconds) so benchmarks can report the share of time spent in GEMMs.
#pragma once

#include <cstdint>
#include <map>
#include <string>

namespace slime::cpu {

// C[M, N] = alpha * op(A) @ op(B) + beta * C, all row-major and contiguous.
// op(A) is A [M, K] (trans_a = false) or A^T where A is stored [K, M]; likewise op(B) is B [K, N] or B^T of [N, K].
template <class T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, const T* B, T beta, T* C);

struct GemmStats {
  int64_t calls = 0;
  double flops = 0;
  double seconds = 0;
};
GemmStats& gemm_stats();
void reset_gemm_stats();

// Per-shape totals ("NT 2048x1152x384" -> stats), kept only while enabled (benchmarks, profiling).
void set_gemm_shape_profiling(bool enabled);
const std::map<std::string, GemmStats>& gemm_shape_stats();

}  // namespace slime::cpu
