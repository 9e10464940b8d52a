// The rollout engine's model runner on the GPU: the host model's weights in bf16 on the device, a paged bf16 KV
// cache, the whole step (forward, LM head of the sampling rows, sampling) on one stream, CUDA graphs for decode.
//
// One step (T new tokens of B sequences, S of which sample):
//   embedding -> L x [ RMSNorm -> QKV GEMM -> qkv_forward (bias, QK-norm, RoPE) -> kv_cache_write
//                      -> attention (flash attention over the chunks when every chunk starts a sequence; otherwise
//                         paged attention over the cache: decode and chunked/prefix-cached prefill)
//                      -> x += proj GEMM;  RMSNorm -> fc1 GEMM -> SwiGLU -> x += fc2 GEMM ]
//   -> the S sampling rows -> final RMSNorm -> LM head (fp32 logits [S, vocab]) -> sample_tokens (temperature,
//   top-k, top-p, per-request Philox draws; model::sample_token's semantics) -> S tokens and log-probs to the host.
// Only the sampled tokens and their log-probs cross PCIe: 8 bytes a sequence a step.
//
// Decode steps (every sequence one new token) of up to EngineConfig::cuda_graph_max_bs sequences replay a CUDA graph
// captured per (batch-size bucket, context bucket): the batch is padded to the bucket with rows that write no K/V,
// attend to a reserved (zeroed) padding block and sample greedily, and the attention's launch shape follows the context bucket (a power of
// two), so one graph serves every step that fits it. The first step of a bucket runs eagerly and then captures.
//
// The device copy mirrors the host model (model::Decoder, where weight sync lands): reload_weights() rounds the fp32
// values to bf16 (round to nearest even, the trainer's compute copy bit for bit), copying from the host buffer
// page-locked in place (cudaHostRegister, once). Models whose head_dim has no bf16 attention kernel (not 64 or 128),
// or EngineConfig::cuda_fp32, run in fp32 (the reference path of the tests).
//
// Tensor parallel (a sharded model: --rollout-num-gpus-per-engine > 1, rollout/tensor_parallel_runner.h): this rank's
// shard of the weights and the KV cache of its KV heads; the row-parallel outputs and the vocab-parallel embedding
// are all-reduced on the step's stream (comm::DeviceComm over the model's TP group), and the LM head's logit slices
// all-gathered before sampling, so every rank samples the same tokens. With NCCL the collectives are captured in the
// decode graphs; ranks sharing a GPU exchange through host memory and run without graphs. The KV pool is the
// smallest any rank can hold (the block ids are the engine's).
//
// The KV cache takes what --sglang-mem-fraction-static leaves (SGLang's rule): after the weights and the step
// buffers are allocated, cache bytes = free device memory - total device memory * (1 - fraction) - 256 MiB (kept for
// cuBLAS, the CUDA graphs and the sampler).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <utility>
#include <vector>

#include "comm/device_comm.h"
#include "comm/parallel.h"
#include "core/tensor.h"
#include "kernels/cuda/ops.h"
#include "rollout/engine.h"
#include "rollout/model_runner.h"

namespace slime::rollout {

struct CudaRunnerStats {
  int64_t eager_steps = 0, graph_replays = 0, graphs_captured = 0;
};

class CudaModelRunner : public ModelRunner {
 public:
  // Binds the GPU (cuda::init_device(device), device = the process's local rank modulo the visible devices when -1)
  // if no device was bound yet, uploads the weights, allocates the step buffers and the KV cache. Sets
  // config.num_blocks when it is 0. Collective over the model's TP group. Errors: a KV cache of no blocks.
  CudaModelRunner(model::Decoder& model, EngineConfig& config);
  ~CudaModelRunner() override;
  CudaModelRunner(const CudaModelRunner&) = delete;
  CudaModelRunner& operator=(const CudaModelRunner&) = delete;

  std::vector<SampledToken> run(const std::vector<ScheduledChunk>& chunks) override;
  void reload_weights() override;
  const model::DeviceWeights* device_weights_for_sync() override;

  cuda::Precision precision() const { return precision_; }
  const CudaRunnerStats& stats() const { return stats_; }
  // The device weights (flat, the host registry's offsets, in precision()): what weight-sync checks compare.
  const Tensor& device_weights() const { return weights_; }
  int64_t kv_cache_bytes() const { return k_cache_.nbytes() + v_cache_.nbytes(); }

 private:
  struct Buffers;  // device pointers of one step's activations and inputs, carved from the arena
  // A step's sizes: T tokens, B sequences, S sampling rows, block-table stride, and the paged-attention bounds.
  struct Shape {
    int64_t T = 0, B = 0, S = 0, stride = 0, max_context = 0, max_new = 0;
  };
  struct Step;     // the host description of one step (what gets uploaded)
  struct Graph;

  // Pointers into the arena for a step of this shape; returns the bytes it needs (a null base only measures).
  size_t plan(char* base, const Shape& shape, Buffers& b) const;
  // Carves the arena for `shape`, reallocating it (and dropping the graphs, which point into it) when too small.
  void ensure_arena(const Shape& shape, size_t at_least = 0);
  Step describe(const std::vector<ScheduledChunk>& chunks, int64_t pad_to, int64_t context_bound) const;
  void upload(const Step& step);
  void enqueue_forward(const Step& step);
  // The first `rows` of the step's `sampled` sampling rows' tokens and log-probs (waits for the step).
  std::vector<SampledToken> download(int64_t sampled, int64_t rows);
  const void* w(const model::Param* p) const;  // matrix weights (precision_)
  const float* vec(const model::Param* p) const;  // norm weights and biases (fp32); null for a null param
  void size_kv_cache(EngineConfig& config);
  // This TP rank's heads, KV groups and FFN columns.
  int64_t local_heads() const { return mc_.num_heads / tp_.size; }
  int64_t local_groups() const { return mc_.num_kv_heads / tp_.size; }
  int64_t local_ffn() const { return mc_.intermediate_size / tp_.size; }

  model::Decoder& model_;
  model::ModelConfig mc_;
  comm::Group tp_;                              // the engine's tensor-parallel group (one rank: single)
  std::unique_ptr<comm::DeviceComm> tp_comm_;   // its collectives on the GPU (null with one rank)
  cuda::Precision precision_;
  int device_ = 0;
  int64_t block_size_ = 0, num_blocks_ = 0, max_context_ = 0, graph_max_bs_ = 0;
  cudaStream_t stream_ = nullptr;
  Tensor weights_;                          // [numel] in precision_
  Tensor vectors_;                          // fp32 copies of the 1-D parameters (bf16 mode)
  std::map<int64_t, int64_t> vector_offset_;  // flat offset of a 1-D parameter -> its offset in vectors_
  model::DeviceWeights sync_view_;          // device_weights_for_sync()'s answer (set with the buffers)
  Tensor k_cache_, v_cache_;                // [L, (num_blocks + 1) * block_size, G, d]; the last block pads graphs
  Tensor rope_cos_, rope_sin_;              // [max_context, d/2] fp32, by position
  Tensor arena_;                            // U8: step inputs and activations
  std::unique_ptr<Buffers> buf_;
  std::vector<int> host_ints_;              // staging of a step's integer inputs (pinned)
  int* pinned_ints_ = nullptr;
  size_t pinned_ints_capacity_ = 0;
  void* pinned_out_ = nullptr;              // S tokens + S log-probs
  const float* pinned_host_ = nullptr;      // the host model's values, page-locked by reload_weights()
  std::map<std::pair<int64_t, int64_t>, std::unique_ptr<Graph>> graphs_;  // (batch bucket, context bucket)
  CudaRunnerStats stats_;
};

}  // namespace slime::rollout
