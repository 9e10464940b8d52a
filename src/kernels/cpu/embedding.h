// Token embedding lookup and its backward (scatter-add into the table's gradient).
#pragma once

#include <cstdint>

namespace slime::cpu {

// out [T, hidden] = table[ids[t]]; ids must lie in [0, rows) (checked by the caller).
template <class T>
void embedding_forward(const int64_t* ids, const T* table, T* out, int64_t tokens, int64_t hidden);

// dtable [rows, hidden] += dout[t] at row ids[t]. Sequential over tokens so repeated ids accumulate in a fixed order.
template <class T>
void embedding_backward(const int64_t* ids, const T* dout, T* dtable, int64_t tokens, int64_t hidden);

}  // namespace slime::cpu
