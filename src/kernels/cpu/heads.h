// Layout changes between token-major activations and head-major attention operands.
//
// Megatron's fused QKV rows are grouped per KV head: for group g, its H/G query heads, then K_g, then V_g, each
// head_dim wide. Attention wants each head's [tokens, head_dim] block contiguous (so its products are plain
// GEMMs), hence head-major q [H, T, d], k [G, T, d], v [G, T, d].
#pragma once

#include <cstdint>

namespace slime::cpu {

// qkv [T, (H + 2G) * d] -> q [H, T, d], k [G, T, d], v [G, T, d].
template <class T>
void qkv_to_heads(const T* qkv, T* q, T* k, T* v, int64_t tokens, int64_t heads, int64_t groups, int64_t head_dim);

// The adjoint (used for gradients): q, k, v head-major -> qkv [T, (H + 2G) * d], overwritten.
template <class T>
void heads_to_qkv(const T* q, const T* k, const T* v, T* qkv, int64_t tokens, int64_t heads, int64_t groups,
                  int64_t head_dim);

// x [H, T, d] -> y [T, H * d]
template <class T>
void heads_to_tokens(const T* x, T* y, int64_t tokens, int64_t heads, int64_t head_dim);

// y [T, H * d] -> x [H, T, d]
template <class T>
void tokens_to_heads(const T* y, T* x, int64_t tokens, int64_t heads, int64_t head_dim);

}  // namespace slime::cpu
