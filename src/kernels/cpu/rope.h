// Rotary position embedding (Su et al. 2021) in the HF "rotate_half" convention: the pair (i, i + d/2) of each head
// vector is rotated by angle position * inv_freq[i]. Angles are formed in fp32 exactly as transformers does.
#pragma once

#include <cstdint>

namespace slime::cpu {

// cos, sin [tokens, half] for each token's position. inv_freq [half] comes from the model config (rope scaling).
template <class T>
void rope_tables(const float* inv_freq, int64_t half, const int64_t* positions, int64_t tokens, T* cos, T* sin);

// In place on x [heads, tokens, head_dim] (head-major). inverse = true rotates by -angle, which is the backward
// pass of the forward rotation (a rotation's transpose is its inverse).
template <class T>
void rope_apply(T* x, const T* cos, const T* sin, int64_t heads, int64_t tokens, int64_t head_dim, bool inverse);

}  // namespace slime::cpu
