#include "kernels/cpu/heads.h"

#include <cstring>

#include "kernels/cpu/views.h"

namespace slime::cpu {
namespace {

// Where head `slot` of group g starts within a qkv row: slots 0..H/G-1 are queries, then K, then V.
inline int64_t qkv_offset(int64_t group, int64_t slot, int64_t per_group, int64_t head_dim) {
  return (group * (per_group + 2) + slot) * head_dim;
}

}  // namespace

template <class T>
void qkv_to_heads(const T* qkv, T* q, T* k, T* v, int64_t tokens, int64_t heads, int64_t groups, int64_t head_dim) {
  const int64_t per_group = heads / groups;
  const int64_t width = (heads + 2 * groups) * head_dim;
  const size_t bytes = static_cast<size_t>(head_dim) * sizeof(T);
  Kokkos::parallel_for("qkv_to_heads", rows(tokens), [=](int64_t t) {
    const T* row = qkv + t * width;
    for (int64_t g = 0; g < groups; ++g) {
      for (int64_t j = 0; j < per_group; ++j) {
        int64_t h = g * per_group + j;
        std::memcpy(q + (h * tokens + t) * head_dim, row + qkv_offset(g, j, per_group, head_dim), bytes);
      }
      std::memcpy(k + (g * tokens + t) * head_dim, row + qkv_offset(g, per_group, per_group, head_dim), bytes);
      std::memcpy(v + (g * tokens + t) * head_dim, row + qkv_offset(g, per_group + 1, per_group, head_dim), bytes);
    }
  });
}

template <class T>
void heads_to_qkv(const T* q, const T* k, const T* v, T* qkv, int64_t tokens, int64_t heads, int64_t groups,
                  int64_t head_dim) {
  const int64_t per_group = heads / groups;
  const int64_t width = (heads + 2 * groups) * head_dim;
  const size_t bytes = static_cast<size_t>(head_dim) * sizeof(T);
  Kokkos::parallel_for("heads_to_qkv", rows(tokens), [=](int64_t t) {
    T* row = qkv + t * width;
    for (int64_t g = 0; g < groups; ++g) {
      for (int64_t j = 0; j < per_group; ++j) {
        int64_t h = g * per_group + j;
        std::memcpy(row + qkv_offset(g, j, per_group, head_dim), q + (h * tokens + t) * head_dim, bytes);
      }
      std::memcpy(row + qkv_offset(g, per_group, per_group, head_dim), k + (g * tokens + t) * head_dim, bytes);
      std::memcpy(row + qkv_offset(g, per_group + 1, per_group, head_dim), v + (g * tokens + t) * head_dim, bytes);
    }
  });
}

template <class T>
void heads_to_tokens(const T* x, T* y, int64_t tokens, int64_t heads, int64_t head_dim) {
  const size_t bytes = static_cast<size_t>(head_dim) * sizeof(T);
  Kokkos::parallel_for("heads_to_tokens", rows(tokens), [=](int64_t t) {
    for (int64_t h = 0; h < heads; ++h)
      std::memcpy(y + (t * heads + h) * head_dim, x + (h * tokens + t) * head_dim, bytes);
  });
}

template <class T>
void tokens_to_heads(const T* y, T* x, int64_t tokens, int64_t heads, int64_t head_dim) {
  const size_t bytes = static_cast<size_t>(head_dim) * sizeof(T);
  Kokkos::parallel_for("tokens_to_heads", rows(tokens), [=](int64_t t) {
    for (int64_t h = 0; h < heads; ++h)
      std::memcpy(x + (h * tokens + t) * head_dim, y + (t * heads + h) * head_dim, bytes);
  });
}

#define SLIME_INSTANTIATE_HEADS(T)                                                                         \
  template void qkv_to_heads<T>(const T*, T*, T*, T*, int64_t, int64_t, int64_t, int64_t);                 \
  template void heads_to_qkv<T>(const T*, const T*, const T*, T*, int64_t, int64_t, int64_t, int64_t);     \
  template void heads_to_tokens<T>(const T*, T*, int64_t, int64_t, int64_t);                               \
  template void tokens_to_heads<T>(const T*, T*, int64_t, int64_t, int64_t);
SLIME_INSTANTIATE_HEADS(float)
SLIME_INSTANTIATE_HEADS(double)

}  // namespace slime::cpu
