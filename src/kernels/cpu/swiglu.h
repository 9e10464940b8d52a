// SwiGLU (Shazeer 2020): out = silu(gate) * up, with Megatron's fused fc1 output [gate | up] per token.
#pragma once

#include <cstdint>

namespace slime::cpu {

// gate_up [T, 2F] -> out [T, F]
template <class T>
void swiglu_forward(const T* gate_up, T* out, int64_t tokens, int64_t ffn);

// dgate_up [T, 2F] (overwritten) from dout [T, F].
template <class T>
void swiglu_backward(const T* gate_up, const T* dout, T* dgate_up, int64_t tokens, int64_t ffn);

}  // namespace slime::cpu
