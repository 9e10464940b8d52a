// Linear layers y = x W^T (+ b) with Megatron's weight layout W [out, in], forward and backward through gemm.
#pragma once

#include <cstdint>

namespace slime::cpu {

// y [T, out] = x [T, in] @ W^T (+ bias [out] if not null).
template <class T>
void linear_forward(const T* x, const T* weight, const T* bias, T* y, int64_t tokens, int64_t in, int64_t out);

// dx [T, in] = dy @ W (overwritten, skipped if dx is null); dW [out, in] += dy^T @ x; dbias [out] += sum_t dy.
template <class T>
void linear_backward(const T* x, const T* weight, const T* dy, T* dx, T* dweight, T* dbias, int64_t tokens,
                     int64_t in, int64_t out);

}  // namespace slime::cpu
