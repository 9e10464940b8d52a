// Bump allocation over one preallocated buffer (the CUDA decoder's and the GPU engine's step arenas): take() hands
// out 256-byte aligned pieces in order. With a null base nothing is handed out and used() measures what a plan
// needs, so one function both sizes an arena and carves it.
#pragma once

#include <cstddef>

namespace slime {

class Carver {
 public:
  explicit Carver(char* base) : base_(base) {}
  template <class T = void>
  T* take(size_t bytes) {
    const size_t offset = (used_ + 255) / 256 * 256;
    used_ = offset + bytes;
    return base_ ? reinterpret_cast<T*>(base_ + offset) : nullptr;
  }
  size_t used() const { return used_; }

 private:
  char* base_;
  size_t used_ = 0;
};

}  // namespace slime
