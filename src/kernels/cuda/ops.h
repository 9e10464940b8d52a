// CUDA ops callable from plain C++ (device pointers in, a stream; shapes in comments). Each op's kernels and
// launcher live in their own .cu file (llm.c style); the CPU version in kernels/cpu is the reference.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

typedef struct CUstream_st* cudaStream_t;

namespace slime::cuda {

enum class Precision { F32, BF16 };  // element type of activations (x, y, dy, dx); weights and stats are fp32

// rmsnorm.cu — x, y [rows, n] in `precision`; weight [n] fp32; rstd [rows] fp32.
void rmsnorm_forward(Precision precision, const void* x, const float* weight, float eps, void* y, float* rstd,
                     int64_t rows, int64_t n, cudaStream_t stream);
// dx [rows, n] overwritten (plus residual [rows, n] where given: a residual branch's gradient joins in the same
// pass); dweight [n] fp32 accumulated (+=), in a fixed order (deterministic).
void rmsnorm_backward(Precision precision, const void* x, const float* weight, const float* rstd, const void* dy,
                      const void* residual, void* dx, float* dweight, int64_t rows, int64_t n, cudaStream_t stream);

// gemm.cu — C[M, N] = alpha * op(A) @ op(B) + beta * C, row-major and contiguous like cpu::gemm: op(A) is A [M, K]
// or, with trans_a, A^T of A stored [K, M]; likewise op(B) is B [K, N] or B^T of B stored [N, K]. A and B in `in`,
// C in `out` (bf16 inputs with an fp32 C accumulate gradients in fp32); fp32 accumulation (cuBLASLt).
void gemm(Precision in, Precision out, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
          const void* A, const void* B, float beta, void* C, cudaStream_t stream);

// swiglu_rope.cu — gate_up [T, 2F] (gate | up per token) -> out [T, F] = silu(gate) * up.
void swiglu_forward(Precision precision, const void* gate_up, void* out, int64_t tokens, int64_t ffn,
                    cudaStream_t stream);
// dgate_up [T, 2F] (overwritten) from dout [T, F].
void swiglu_backward(Precision precision, const void* gate_up, const void* dout, void* dgate_up, int64_t tokens,
                     int64_t ffn, cudaStream_t stream);
// In place on x [heads, tokens, head_dim] with cos, sin [tokens, head_dim / 2] fp32 (cpu::rope_tables); inverse
// rotates by -angle (the backward pass).
void rope_apply(Precision precision, void* x, const float* cos, const float* sin, int64_t heads, int64_t tokens,
                int64_t head_dim, bool inverse, cudaStream_t stream);

// attention.cu — causal self-attention over packed variable-length sequences with grouped-query heads, token-major:
// q [T, H, d], k and v [T, G, d], out [T, H, d] (out is the output projection's input [T, H * d] as is); query head
// h reads KV group h / (H / G). cu_seqlens [B + 1] int32 on the device (sequence boundaries, back() = T);
// max_seqlen is the longest sequence. lse [H, T] fp32 = log-sum-exp of each scaled score row (kept for backward).
// BF16: a FlashAttention-2 style tensor-core kernel (head_dim 64 or 128); F32: a plain fp32 kernel (the reference
// path for tests of the whole model). Scale is usually 1/sqrt(d).
void attention_forward(Precision precision, const void* q, const void* k, const void* v, const int* cu_seqlens,
                       int64_t tokens, int64_t sequences, int64_t max_seqlen, int64_t heads, int64_t groups,
                       int64_t head_dim, float scale, void* out, float* lse, cudaStream_t stream);
// Which bf16 kernels attention_forward and attention_backward run. Auto: the Hopper kernels (attention_sm90.cu,
// wgmma) on a compute-capability 9.0 GPU when the build carries them, else the portable mma.sync kernels; the
// environment variable SLIME_ATTENTION_KERNELS=portable|hopper overrides Auto (for comparisons). Hopper where they
// cannot run is an error at the next launch. Process-wide; set it between launches, not during them.
enum class AttentionKernels { Auto, Portable, Hopper };
void set_attention_kernels(AttentionKernels kernels);
// SLIME_ATTENTION_KERNELS's value: "" -> Auto, "portable", "hopper"; anything else is an error naming it.
AttentionKernels parse_attention_kernels(const std::string& text);
// The kernels the next bf16 launch on the current device runs: the set chosen, or what Auto resolves to (never Auto).
AttentionKernels attention_kernels_in_use();
// dq [T, H, d], dk and dv [T, G, d] overwritten, from dout [T, H, d] and the forward's out and lse. Uses an internal
// fp32 workspace (grown on demand, reused; one stream at a time).
void attention_backward(Precision precision, const void* q, const void* k, const void* v, const void* out,
                        const float* lse, const void* dout, const int* cu_seqlens, int64_t tokens, int64_t sequences,
                        int64_t max_seqlen, int64_t heads, int64_t groups, int64_t head_dim, float scale, void* dq,
                        void* dk, void* dv, cudaStream_t stream);

// qkv.cu — the fused QKV projection's output to attention operands and back (cpu::qkv_to_heads' grouped layout:
// per KV group g, its H/G query heads, then K_g, then V_g, each head_dim wide).
struct QkvShape {
  int64_t tokens, heads, groups, head_dim;  // local (per tensor-parallel rank) heads and groups
};
// qkv [T, (H + 2G) d] (no bias yet) -> q [T, H, d], k [T, G, d], v [T, G, d]: adds bias [(H + 2G) d] (fp32, or
// null), applies RMSNorm over each q and k head vector with q_norm, k_norm [d] (fp32, or null for no QK-norm; eps),
// then RoPE with cos, sin [T, d / 2] (cpu::rope_tables). All activations in `precision`.
void qkv_forward(Precision precision, const QkvShape& shape, const void* qkv, const float* bias, const float* q_norm,
                 const float* k_norm, float eps, const float* cos, const float* sin, void* q, void* k, void* v,
                 cudaStream_t stream);
// The adjoint: dqkv [T, (H + 2G) d] (overwritten) from dq, dk, dv (gradients w.r.t. the rotated q, k and v), given the
// same qkv, bias and norm weights as the forward (QK-norm statistics are recomputed). dbias [(H + 2G) d],
// dq_norm [d] and dk_norm [d] are fp32 and accumulated (+=) in a fixed order (deterministic); pass null when the
// model has no bias / no QK-norm.
void qkv_backward(Precision precision, const QkvShape& shape, const void* qkv, const float* bias, const float* q_norm,
                  const float* k_norm, float eps, const float* cos, const float* sin, const void* dq, const void* dk,
                  const void* dv, void* dqkv, float* dbias, float* dq_norm, float* dk_norm, cudaStream_t stream);

// embedding.cu — vocab-parallel embedding over this rank's rows [vocab_begin, vocab_begin + vocab_rows) of the table.
// x [T, h] in `precision` from weight [vocab_rows, h] (in `precision`); tokens outside the slice give zero rows.
void embedding_forward(Precision precision, const int* tokens, int64_t num_tokens, const void* weight,
                       int64_t vocab_begin, int64_t vocab_rows, int64_t hidden, void* x, cudaStream_t stream);
// dweight [vocab_rows, h] fp32 += the rows of dx [T, h] of each token in the slice, summed in token order
// (deterministic). `order` [T] lists token indices sorted by (token id, index) and `unique_starts` [U + 1] where each
// distinct id begins in it (embedding_sort_tokens builds both on the host).
void embedding_backward(Precision precision, const int* tokens, const int* order, const int* unique_starts,
                        int64_t num_unique, const void* dx, int64_t vocab_begin, int64_t vocab_rows, int64_t hidden,
                        float* dweight, cudaStream_t stream);
void embedding_sort_tokens(const std::vector<int>& tokens, std::vector<int>* order, std::vector<int>* unique_starts);

// logprob.cu — token log-probabilities and entropy from fp32 logits, vocab-parallel (cpu/logprob.h's semantics):
// z = logits * inv_temperature over this rank's columns; local column j is token vocab_begin + j and columns whose
// token id is >= vocab are padding. One online pass per row gives this rank's partial statistics
// stats [rows, 4] = (max z, sum exp(z - max), sum exp(z - max) (z - max), z[target] or 0 if the target is elsewhere);
// the third sum is centred on the max so that the entropy does not lose precision to cancellation.
struct LogitsShape {
  int64_t rows, cols;       // local logits [rows, cols], row stride cols
  int64_t vocab;            // true global vocabulary size
  int64_t vocab_begin = 0;  // global id of local column 0
};
void logprob_partial_stats(const LogitsShape& shape, const float* logits, const int* targets, float inv_temperature,
                           float* stats, cudaStream_t stream);
// Merges the partial statistics of `ranks` slices, stats [ranks, rows, 4] (all-gathered across the TP group; one
// slice on a single GPU): lse = log sum exp z, mean_z = E_p[z], logprob = z[target] - lse, entropy = lse - mean_z,
// all [rows] fp32 (entropy may be null).
void logprob_combine(const float* stats, int64_t ranks, int64_t rows, float* lse, float* mean_z, float* logprob,
                     float* entropy, cudaStream_t stream);
// dlogits [rows, cols] in `out` precision (overwritten; padding columns 0) from dlogprob [rows] and dentropy [rows]
// (either may be null), given the global lse and mean_z: d logprob / dz = onehot - p, d entropy / dz = -p (z - E_p z),
// times inv_temperature for d / dlogits.
void logprob_backward(Precision out, const LogitsShape& shape, const float* logits, const int* targets,
                      float inv_temperature, const float* lse, const float* mean_z, const float* dlogprob,
                      const float* dentropy, void* dlogits, cudaStream_t stream);

// swiglu_rope.cu, the small elementwise ops of a step. y [n] += x [n] (both in `precision`).
void add_inplace(Precision precision, void* y, const void* x, int64_t n, cudaStream_t stream);
// y [n] (in `out`) = x [n] fp32, rounded to nearest even for bf16.
void cast_from_f32(Precision out, const float* x, void* y, int64_t n, cudaStream_t stream);
void scale_inplace(float* x, float scale, int64_t n, cudaStream_t stream);
// out [n, width] = table[rows[i]] for each i (fp32; e.g. RoPE cos/sin of each token's position).
void gather_rows(const float* table, const int* rows, int64_t n, int64_t width, float* out, cudaStream_t stream);
// x [n] = mean + stddev * N(0, 1) from a counter-based hash of (seed, index): the same values for any launch shape.
void fill_normal(float* x, int64_t n, uint64_t seed, float mean, float stddev, cudaStream_t stream);

// optimizer.cu — one AdamW step (train/adamw.h's arithmetic; fp32 results equal the CPU's bit for bit) over many
// tensors in one launch. Each tensor's fp32 param, exp_avg, exp_avg_sq are updated in place from grad; param_bf16
// (optional) receives the updated parameters rounded to bf16. Stream-ordered on `stream`.
struct AdamWTensor {
  float* param;
  const float* grad;
  float* exp_avg;
  float* exp_avg_sq;
  void* param_bf16;  // bf16 [n] or nullptr
  int64_t n;
  double weight_decay;  // per tensor (0 for biases and norms: train::megatron_no_weight_decay)
};
// grad_scale multiplies every gradient first (the clipping coefficient, applied in the same pass instead of
// rewriting the gradients; the grads themselves are left as they are). 1 keeps them exact.
void adamw_step(const std::vector<AdamWTensor>& tensors, int64_t step, double beta1, double beta2, double eps,
                double lr, cudaStream_t stream, float grad_scale = 1.0f);
// *total (device double) += sum of x[i]^2, in double, in a fixed order (deterministic). For the gradient norm.
void sum_of_squares_accumulate(const float* x, int64_t n, double* total, cudaStream_t stream);

// paged_attention.cu — the rollout engine's attention over a paged KV cache (kernels/cpu/paged_attention.h's
// semantics, token-major). One layer's cache holds k_cache, v_cache [num_slots, G, d] in `precision`
// (num_slots = num_blocks * block_size); the token at position p of a sequence sits in slot
// block_table[p / block_size] * block_size + p % block_size.
// kv_cache_write: the new tokens' k, v [T, G, d] into their slots, slots [T] int32 on the device.
void kv_cache_write(Precision precision, const void* k, const void* v, const int* slots, int64_t tokens,
                    int64_t groups, int64_t head_dim, void* k_cache, void* v_cache, cudaStream_t stream);
// The step's sequences, device arrays. Sequence b brings n_b = cu_seqlens[b + 1] - cu_seqlens[b] new tokens (rows
// cu_seqlens[b] .. of q and out) at positions context_lens[b] - n_b .. context_lens[b] - 1, already written to the
// cache; new token i attends to positions 0 .. context_lens[b] - n_b + i of its sequence (causal).
struct PagedBatch {
  const int* cu_seqlens = nullptr;    // [B + 1]
  const int* context_lens = nullptr;  // [B] cached tokens after this step (old + new)
  const int* block_tables = nullptr;  // [B, max_blocks] row-major, block ids of each sequence
  int64_t sequences = 0;              // B
  int64_t tokens = 0;                 // T = cu_seqlens[B]
  int64_t max_blocks = 0;             // row stride of block_tables
  int64_t block_size = 0;
  int64_t max_context = 0;            // upper bound of context_lens (fixes the launch shape: CUDA-graph friendly)
  int64_t max_new_tokens = 0;         // upper bound of n_b (1 for a decode step)
};
// Bytes of the workspace paged_attention_forward needs for this batch shape and head layout (depends only on the
// bounds in `batch` and the current device's SM count, not on the device arrays' contents; 0 when no split-KV
// merge is needed).
size_t paged_attention_workspace_bytes(const PagedBatch& batch, int64_t heads, int64_t head_dim);
// out [T, H, d] in `precision` from q [T, H, d] (after RoPE): query head h reads KV group h / (H / G); fp32
// accumulation; split-KV (flash decoding) over the context, GQA-aware (a group's query heads share each K/V read).
// `workspace` holds paged_attention_workspace_bytes(batch, heads, head_dim) bytes. Launches depend only on the
// bounds in `batch` (and the device), so a decode step can be captured in a CUDA graph and replayed with new array
// contents. kv_cache_write skips tokens whose slot is negative (padding rows of such a graph).
void paged_attention_forward(Precision precision, const PagedBatch& batch, const void* q, const void* k_cache,
                             const void* v_cache, int64_t heads, int64_t groups, int64_t head_dim, float scale,
                             void* out, void* workspace, cudaStream_t stream);

// sampling.cu — the rollout engine's sampler on the GPU (model::sample_token's semantics, the CPU reference): per
// row of fp32 logits [rows, cols] (the first `vocab` columns are tokens), z = logits / temperature; greedy
// (temperature 0) takes the first maximum; otherwise top-k then top-p truncate by descending probability (ties by
// id) and the draw `uniform` picks the token whose cumulative kept probability, walking the kept tokens in id order,
// first exceeds uniform * kept mass. logprob = log softmax(z)[token] before truncation (what SGLang reports).
struct SamplingRow {
  float temperature;  // 0 = greedy
  int top_k;          // <= 0: off
  float top_p;        // 1 = off
  float uniform;      // the draw in [0, 1)
};
// params [rows] on the device; tokens [rows] int32 and logprobs [rows] fp32 written on the device. Launches depend
// only on rows/cols/vocab (CUDA-graph friendly).
void sample_tokens(const float* logits, int64_t rows, int64_t cols, int64_t vocab, const SamplingRow* params,
                   int* tokens, float* logprobs, cudaStream_t stream);

}  // namespace slime::cuda
