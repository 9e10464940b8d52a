// CUDA ops callable from plain C++ (device pointers in, a stream; shapes in comments). Each op's kernels and
// launcher live in their own .cu file (llm.c style); the CPU version in kernels/cpu is the reference.
#pragma once

#include <cstdint>
#include <vector>

typedef struct CUstream_st* cudaStream_t;

namespace slime::cuda {

enum class Precision { F32, BF16 };  // element type of activations (x, y, dy, dx); weights and stats are fp32

// rmsnorm.cu — x, y [rows, n] in `precision`; weight [n] fp32; rstd [rows] fp32.
void rmsnorm_forward(Precision precision, const void* x, const float* weight, float eps, void* y, float* rstd,
                     int64_t rows, int64_t n, cudaStream_t stream);
// dx [rows, n] overwritten; dweight [n] fp32 accumulated (+=), in a fixed order (deterministic).
void rmsnorm_backward(Precision precision, const void* x, const float* weight, const float* rstd, const void* dy,
                      void* dx, float* dweight, int64_t rows, int64_t n, cudaStream_t stream);

// gemm.cu — C[M, N] = alpha * op(A) @ op(B) + beta * C, row-major and contiguous like cpu::gemm: op(A) is A [M, K]
// or, with trans_a, A^T of A stored [K, M]; likewise op(B) is B [K, N] or B^T of B stored [N, K]. A and B in `in`,
// C in `out` (bf16 inputs with an fp32 C accumulate gradients in fp32); fp32 accumulation (cuBLASLt).
void gemm(Precision in, Precision out, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
          const void* A, const void* B, float beta, void* C, cudaStream_t stream);

// swiglu_rope.cu — gate_up [T, 2F] (gate | up per token) -> out [T, F] = silu(gate) * up.
void swiglu_forward(Precision precision, const void* gate_up, void* out, int64_t tokens, int64_t ffn,
                    cudaStream_t stream);
// dgate_up [T, 2F] (overwritten) from dout [T, F].
void swiglu_backward(Precision precision, const void* gate_up, const void* dout, void* dgate_up, int64_t tokens,
                     int64_t ffn, cudaStream_t stream);
// In place on x [heads, tokens, head_dim] with cos, sin [tokens, head_dim / 2] fp32 (cpu::rope_tables); inverse
// rotates by -angle (the backward pass).
void rope_apply(Precision precision, void* x, const float* cos, const float* sin, int64_t heads, int64_t tokens,
                int64_t head_dim, bool inverse, cudaStream_t stream);

// optimizer.cu — one AdamW step (train/adamw.h's arithmetic; fp32 results equal the CPU's bit for bit) over many
// tensors in one launch. Each tensor's fp32 param, exp_avg, exp_avg_sq are updated in place from grad; param_bf16
// (optional) receives the updated parameters rounded to bf16. Stream-ordered on `stream`.
struct AdamWTensor {
  float* param;
  const float* grad;
  float* exp_avg;
  float* exp_avg_sq;
  void* param_bf16;  // bf16 [n] or nullptr
  int64_t n;
  double weight_decay;  // per tensor (0 for biases and norms: train::megatron_no_weight_decay)
};
void adamw_step(const std::vector<AdamWTensor>& tensors, int64_t step, double beta1, double beta2, double eps,
                double lr, cudaStream_t stream);
// *total (device double) += sum of x[i]^2, in double, in a fixed order (deterministic). For the gradient norm.
void sum_of_squares_accumulate(const float* x, int64_t n, double* total, cudaStream_t stream);

}  // namespace slime::cuda
