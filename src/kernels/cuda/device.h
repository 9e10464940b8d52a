// The CUDA device as the rest of the program sees it (plain C++ header: no CUDA types).
#pragma once

#include <cstddef>
#include <string>

typedef struct CUstream_st* cudaStream_t;

namespace slime::cuda {

int device_count();  // 0 when no driver or no GPU
// Binds this process to `device` and registers the Device::CUDA allocator for slime::Tensor.
void init_device(int device);
// Binds the process's GPU on a node: the launcher's node-local rank (Open MPI, Slurm, MPICH) modulo the visible
// devices. Returns the device. Errors when no GPU is visible.
int init_local_device();
std::string device_name(int device);
void synchronize();

// Host <-> device copies of raw bytes (device pointers from Tensor::raw() of CUDA tensors).
void copy_to_device(void* device_dst, const void* host_src, size_t bytes);
void copy_to_host(void* host_dst, const void* device_src, size_t bytes);
// Page-locks host memory in place (cudaHostRegister) so copies from and to it run at the link's speed. Returns
// false where the system refuses (the memory then stays pageable and copies only run slower).
bool pin_host_memory(void* host, size_t bytes);
void unpin_host_memory(void* host);
// Stream-ordered device-to-device copy.
void copy_async(void* device_dst, const void* device_src, size_t bytes, cudaStream_t stream);
// Stream-ordered device-to-device copy of `height` rows of `width_bytes`, rows `dst_pitch` / `src_pitch` bytes apart.
void copy_2d_async(void* device_dst, size_t dst_pitch, const void* device_src, size_t src_pitch, size_t width_bytes,
                   size_t height, cudaStream_t stream);
// Device memory in use (total - free, all processes), in bytes.
size_t memory_used();
// Fills device memory with a byte pattern (tests poison outputs with 0xFF = NaN for fp32/bf16).
void fill_bytes(void* device_dst, int byte, size_t bytes);

// A GPU-time profile by section (SLIME_CUDA_PROFILE=1; otherwise these do nothing): profile_mark(name) ends the
// section `name` on the default stream (an event; the time since the previous mark is added to `name`), and
// profile_report() synchronises, prints the sections' totals (ms, share) under `title` and starts afresh.
bool profile_enabled();
void profile_mark(const char* name);
void profile_report(const char* title);
void profile_reset();  // drops the marks so far

}  // namespace slime::cuda
