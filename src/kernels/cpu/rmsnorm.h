// RMSNorm (Zhang & Sennrich 2019) as in HF/Megatron: y = w * x / sqrt(mean(x^2) + eps), per row.
// Also used per attention head for Qwen3's QK-norm (rows = heads x tokens, n = head_dim).
#pragma once

#include <cstdint>

namespace slime::cpu {

// x, y [rows, n]; weight [n]; rstd [rows] receives 1/sqrt(mean(x^2)+eps) for the backward pass.
template <class T>
void rmsnorm_forward(const T* x, const T* weight, T eps, T* y, T* rstd, int64_t rows, int64_t n);

// dx [rows, n] (overwritten); dweight [n] += sum over rows of dy * x * rstd.
template <class T>
void rmsnorm_backward(const T* x, const T* weight, const T* rstd, const T* dy, T* dx, T* dweight, int64_t rows,
                      int64_t n);

}  // namespace slime::cpu
