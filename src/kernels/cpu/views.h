// Kokkos views over raw host memory, and the execution policy every CPU op uses.
// Ops take raw pointers with shapes in comments; inside, they wrap them in unmanaged LayoutRight views.
#pragma once

#include <Kokkos_Core.hpp>
#include <cstdint>

namespace slime::cpu {

using HostSpace = Kokkos::HostSpace;
using HostExec = Kokkos::DefaultHostExecutionSpace;
using Unmanaged = Kokkos::MemoryTraits<Kokkos::Unmanaged>;

template <class T>
using Vec = Kokkos::View<T*, Kokkos::LayoutRight, HostSpace, Unmanaged>;
template <class T>
using Mat = Kokkos::View<T**, Kokkos::LayoutRight, HostSpace, Unmanaged>;

inline Kokkos::RangePolicy<HostExec> rows(int64_t n) { return Kokkos::RangePolicy<HostExec>(0, n); }

}  // namespace slime::cpu
