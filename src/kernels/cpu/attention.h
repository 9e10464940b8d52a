// Causal self-attention over packed variable-length sequences with grouped-query heads, forward and backward.
//
// Sequences are concatenated along the token axis; cu_seqlens [B + 1] gives their boundaries, and a token attends
// only to earlier tokens of its own sequence. Query head h reads KV group h / (H / G). Operands are head-major so
// every product is a GEMM. The forward keeps only the log-sum-exp of each score row; the backward recomputes the
// probabilities block by block (FlashAttention's recipe), so memory stays O(block x sequence length).
#pragma once

#include <cstdint>

namespace slime::cpu {

struct AttentionShape {
  int64_t tokens;      // T, total over all sequences
  int64_t heads;       // H query heads
  int64_t groups;      // G key/value heads (H % G == 0)
  int64_t head_dim;    // d
  int64_t sequences;   // B
};

// q [H, T, d], k/v [G, T, d] -> out [H, T, d], lse [H, T]. scale is usually 1/sqrt(d).
template <class T>
void attention_forward(const AttentionShape& shape, const int64_t* cu_seqlens, const T* q, const T* k, const T* v,
                       T scale, T* out, T* lse);

// Gradients: dq [H, T, d], dk/dv [G, T, d], all overwritten.
template <class T>
void attention_backward(const AttentionShape& shape, const int64_t* cu_seqlens, const T* q, const T* k, const T* v,
                        const T* out, const T* lse, const T* dout, T scale, T* dq, T* dk, T* dv);

}  // namespace slime::cpu
