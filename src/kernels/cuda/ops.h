// CUDA ops callable from plain C++ (device pointers in, a stream; shapes in comments). Each op's kernels and
// launcher live in their own .cu file (llm.c style); the CPU version in kernels/cpu is the reference.
#pragma once

#include <cstdint>

typedef struct CUstream_st* cudaStream_t;

namespace slime::cuda {

enum class Precision { F32, BF16 };  // element type of activations (x, y, dy, dx); weights and stats are fp32

// rmsnorm.cu — x, y [rows, n] in `precision`; weight [n] fp32; rstd [rows] fp32.
void rmsnorm_forward(Precision precision, const void* x, const float* weight, float eps, void* y, float* rstd,
                     int64_t rows, int64_t n, cudaStream_t stream);
// dx [rows, n] overwritten; dweight [n] fp32 accumulated (+=), in a fixed order (deterministic).
void rmsnorm_backward(Precision precision, const void* x, const float* weight, const float* rstd, const void* dy,
                      void* dx, float* dweight, int64_t rows, int64_t n, cudaStream_t stream);

}  // namespace slime::cuda
