// Hopper attention kernels (attention_sm90.cu, built for sm_90a when the build targets sm_90): the bf16 forward and
// backward of attention.cu on warpgroup tensor cores. attention.cu calls them through attention_forward and
// attention_backward (same operands, same layouts) when hopper_attention_active(head_dim) says so.
#pragma once

#include <cstdint>

#include <cuda_runtime.h>

namespace slime::cuda::sm90 {

// Whether this build carries the kernels (SLIME_HAVE_SM90A).
bool built();

// out, lse as attention_forward; head_dim 64 or 128.
void attention_forward(const void* q, const void* k, const void* v, const int* cu_seqlens, int64_t tokens,
                       int64_t sequences, int64_t max_seqlen, int64_t heads, int64_t groups, int64_t head_dim,
                       float scale, void* out, float* lse, cudaStream_t stream);

// Adds into the fp32 accumulators dq_acc [T, H, d], dk_acc, dv_acc [T, G, d] (zeroed by the caller) from delta
// [H, T] = rowsum(dout * out); head_dim 64 or 128.
void attention_backward(const void* q, const void* k, const void* v, const float* lse, const float* delta,
                        const void* dout, const int* cu_seqlens, int64_t tokens, int64_t sequences,
                        int64_t max_seqlen, int64_t heads, int64_t groups, int64_t head_dim, float scale,
                        float* dq_acc, float* dk_acc, float* dv_acc, cudaStream_t stream);

}  // namespace slime::cuda::sm90
