#include "kernels/cpu/embedding.h"

#include <cstring>

#include "kernels/cpu/views.h"

namespace slime::cpu {

template <class T>
void embedding_forward(const int64_t* ids, const T* table, T* out, int64_t tokens, int64_t hidden) {
  Kokkos::parallel_for("embedding_fwd", rows(tokens), [=](int64_t t) {
    std::memcpy(out + t * hidden, table + ids[t] * hidden, static_cast<size_t>(hidden) * sizeof(T));
  });
}

template <class T>
void embedding_backward(const int64_t* ids, const T* dout, T* dtable, int64_t tokens, int64_t hidden) {
  for (int64_t t = 0; t < tokens; ++t) {
    T* row = dtable + ids[t] * hidden;
    const T* g = dout + t * hidden;
    for (int64_t j = 0; j < hidden; ++j) row[j] += g[j];
  }
}

template void embedding_forward<float>(const int64_t*, const float*, float*, int64_t, int64_t);
template void embedding_forward<double>(const int64_t*, const double*, double*, int64_t, int64_t);
template void embedding_backward<float>(const int64_t*, const float*, float*, int64_t, int64_t);
template void embedding_backward<double>(const int64_t*, const double*, double*, int64_t, int64_t);

}  // namespace slime::cpu
