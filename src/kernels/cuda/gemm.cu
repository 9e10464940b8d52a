// Matrix products on the GPU through cuBLASLt, with the row-major semantics of kernels/cpu/gemm.h.
//
// cuBLASLt is column-major. A row-major C [M, N] is the column-major C^T [N, M], and C^T = op(B)^T op(A)^T, so
// each call asks cuBLASLt for m = N, n = M, k = K with the operands swapped: its "A" is our B and its "B" is our
// A, each transposed exactly when ours is. Types: A and B in `in` (fp32 or bf16), C in `out`; products are
// accumulated in fp32 (CUBLAS_COMPUTE_32F: no TF32 for fp32 inputs, so fp32 GEMMs match the CPU to ~1e-6).
// The matmul descriptors, layouts and the heuristic's algorithm are cached per shape; one 32 MiB workspace per
// process. Not thread-safe: one thread drives the GPU.
#include <cublasLt.h>

#include <map>
#include <memory>
#include <tuple>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/ops.h"

#define cublasCheck(call)                                                                                     \
  do {                                                                                                        \
    cublasStatus_t st_ = (call);                                                                              \
    if (st_ != CUBLAS_STATUS_SUCCESS)                                                                         \
      ::slime::throw_error(::slime::cat("cuBLASLt error ", static_cast<int>(st_), " (", cublasLtGetStatusString(st_), \
                                        ") in ", #call, " at ", __FILE__, ":", __LINE__));                    \
  } while (0)

namespace slime::cuda {
namespace {

constexpr size_t kWorkspaceBytes = 32ull << 20;

cudaDataType_t data_type(Precision p) { return p == Precision::BF16 ? CUDA_R_16BF : CUDA_R_32F; }

// One shape's descriptors and chosen algorithm.
struct Plan {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulAlgo_t algo{};
  ~Plan() {
    if (c) cublasLtMatrixLayoutDestroy(c);
    if (b) cublasLtMatrixLayoutDestroy(b);
    if (a) cublasLtMatrixLayoutDestroy(a);
    if (op) cublasLtMatmulDescDestroy(op);
  }
};

using Key = std::tuple<int, int, bool, bool, int64_t, int64_t, int64_t>;

struct Context {
  cublasLtHandle_t handle = nullptr;
  void* workspace = nullptr;
  std::map<Key, std::unique_ptr<Plan>> plans;
  Context() {
    cublasCheck(cublasLtCreate(&handle));
    cudaCheck(cudaMalloc(&workspace, kWorkspaceBytes));
  }
};

Context& context() {
  static Context* ctx = new Context();  // lives for the process: destroying it after the CUDA runtime is unsafe
  return *ctx;
}

const Plan& plan_for(Precision in, Precision out, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K) {
  Context& ctx = context();
  const Key key{static_cast<int>(in), static_cast<int>(out), trans_a, trans_b, M, N, K};
  auto found = ctx.plans.find(key);
  if (found != ctx.plans.end()) return *found->second;

  auto plan = std::make_unique<Plan>();
  cublasCheck(cublasLtMatmulDescCreate(&plan->op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  // cuBLASLt's A is our B, its B is our A (see the file comment).
  const cublasOperation_t lt_ta = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t lt_tb = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  cublasCheck(cublasLtMatmulDescSetAttribute(plan->op, CUBLASLT_MATMUL_DESC_TRANSA, &lt_ta, sizeof lt_ta));
  cublasCheck(cublasLtMatmulDescSetAttribute(plan->op, CUBLASLT_MATMUL_DESC_TRANSB, &lt_tb, sizeof lt_tb));
  // Column-major views of the row-major buffers: our B is [K, N] (or [N, K] when transposed), A is [M, K] (or [K, M]).
  if (trans_b) cublasCheck(cublasLtMatrixLayoutCreate(&plan->a, data_type(in), K, N, K));
  else cublasCheck(cublasLtMatrixLayoutCreate(&plan->a, data_type(in), N, K, N));
  if (trans_a) cublasCheck(cublasLtMatrixLayoutCreate(&plan->b, data_type(in), M, K, M));
  else cublasCheck(cublasLtMatrixLayoutCreate(&plan->b, data_type(in), K, M, K));
  cublasCheck(cublasLtMatrixLayoutCreate(&plan->c, data_type(out), N, M, N));

  cublasLtMatmulPreference_t pref = nullptr;
  cublasCheck(cublasLtMatmulPreferenceCreate(&pref));
  const size_t ws = kWorkspaceBytes;
  cublasCheck(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws));
  cublasLtMatmulHeuristicResult_t result{};
  int found_count = 0;
  const cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(ctx.handle, plan->op, plan->a, plan->b, plan->c,
                                                           plan->c, pref, 1, &result, &found_count);
  cublasLtMatmulPreferenceDestroy(pref);
  SLIME_CHECK(st == CUBLAS_STATUS_SUCCESS && found_count > 0, "cuBLASLt has no algorithm for the GEMM ",
              trans_a ? "T" : "N", trans_b ? "T" : "N", " M=", M, " N=", N, " K=", K, " (",
              in == Precision::BF16 ? "bf16" : "fp32", " -> ", out == Precision::BF16 ? "bf16" : "fp32", ")");
  plan->algo = result.algo;
  return *ctx.plans.emplace(key, std::move(plan)).first->second;
}

}  // namespace

void gemm(Precision in, Precision out, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
          const void* A, const void* B, float beta, void* C, cudaStream_t stream) {
  SLIME_CHECK(M > 0 && N > 0 && K > 0, "gemm: empty shape M=", M, " N=", N, " K=", K);
  const Plan& plan = plan_for(in, out, trans_a, trans_b, M, N, K);
  Context& ctx = context();
  cublasCheck(cublasLtMatmul(ctx.handle, plan.op, &alpha, B, plan.a, A, plan.b, &beta, C, plan.c, C, plan.c,
                             &plan.algo, ctx.workspace, kWorkspaceBytes, stream));
}

}  // namespace slime::cuda
