// The decoder on the CUDA backend: model/decoder.h's math (the CPU Decoder is its reference), run as bf16 (or fp32)
// activations with fp32 master weights and fp32 gradients on the GPU.
//
// Per layer (T tokens, activations in the chosen precision, every GEMM through cuBLASLt with fp32 accumulation):
//   RMSNorm -> QKV GEMM -> qkv_forward (bias, QK-norm, RoPE) -> flash attention -> proj GEMM (+ residual)
//   RMSNorm -> fc1 GEMM -> SwiGLU -> fc2 GEMM (+ residual)
// The LM head and the log-prob/entropy run over row chunks of fp32 logits (one [chunk, vocab] buffer), so no
// [tokens, vocab] tensor beyond one chunk is ever held. When the batch fits in one chunk (4096 tokens of a 152K
// vocabulary do under the default 3 GiB) its logits stay for the backward pass; otherwise each chunk's logits are
// recomputed there.
//
// Weights: the registry (DecoderWeights) lives on the GPU in fp32 (the master copy the optimizer updates) together
// with its gradients; with bf16 activations a flat bf16 copy of every parameter feeds the GEMMs (the optimizer
// refreshes it, see train/cuda_optimizer.h). Activations of a batch are carved from one device arena sized for the
// largest batch seen, so steady-state steps allocate nothing.
//
// Tensor parallelism (Megatron, as model/decoder.h on the CPU): given a TP group and its device communicator, each
// rank holds its shard of the weights (DecoderWeights' layout: whole KV groups of the fused QKV, its slice of
// [gate | up], the matching columns of the output projection and fc2, its rows of the vocabulary). The row-parallel
// outputs (output projection, fc2) and the vocab-parallel embedding are all-reduced in the activations' precision,
// the LM head's log-softmax statistics are all-gathered ([TP, T, 4] fp32) and merged, and the backward all-reduces
// the column-parallel input gradients, the LM head's hidden-state gradient and the QK-norm weight gradients. The
// residual stream is replicated: every rank computes the same norms, so their gradients agree across the group.
//
// --recompute-granularity: "full" keeps only each layer's input and recomputes the layer in the backward pass;
// "selective" (Megatron: recompute the core attention) costs nothing extra here because the flash-attention kernel
// never stores the [s, s] probabilities (its backward recomputes them), so it keeps the same activations as none.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/carver.h"
#include "comm/parallel.h"
#include "core/tensor.h"
#include "kernels/cuda/ops.h"
#include "model/config.h"
#include "model/decoder.h"
#include "model/device_weights.h"

namespace slime::comm {
class DeviceComm;
}

namespace slime::model {

// RoPE cos/sin tables [positions, head_dim / 2] fp32 on the GPU, one row per position 0 .. positions - 1, with the
// CPU's values (cpu::rope_tables); a step gathers its tokens' rows (cuda::gather_rows).
void rope_tables_on_device(const ModelConfig& config, int64_t positions, Tensor* cos, Tensor* sin);

struct CudaDecoderOptions {
  cuda::Precision precision = cuda::Precision::BF16;
  int64_t lm_head_chunk_rows = 0;       // 0: as many rows as fit 3 GiB of fp32 logits
  std::string recompute_granularity;    // "" (none), "selective" or "full"
  int64_t param_padding = 1;            // the flat weight/gradient buffers hold a multiple of this many elements
                                        // (zero padding: equal per-rank blocks for the data-parallel collectives)
};

class CudaDecoder {
 public:
  // Registers this rank's parameters (zero) on the GPU; cuda::init_device must have run. Language-model head. With a
  // TP group of several ranks, tp_comm is its device communicator (it must outlive the decoder).
  explicit CudaDecoder(const ModelConfig& config, const CudaDecoderOptions& options = {},
                       const comm::Group& tp = comm::Group{}, comm::DeviceComm* tp_comm = nullptr);
  ~CudaDecoder();
  CudaDecoder(const CudaDecoder&) = delete;
  CudaDecoder& operator=(const CudaDecoder&) = delete;

  const ModelConfig& config() const { return config_; }
  const CudaDecoderOptions& options() const { return options_; }
  const comm::Group& tp() const { return tp_; }
  ParamRegistry& params() { return w_.registry; }  // fp32 values and gradients in GPU memory
  const ParamRegistry& params() const { return w_.registry; }
  // The bf16 copy of every parameter (flat, the registry's offsets); null with fp32 activations.
  void* compute_copy() { return compute_copy_.defined() ? compute_copy_.raw() : nullptr; }

  // Copies the values of a host registry of the same model (e.g. a CPU Decoder's) into the master weights and
  // refreshes the bf16 copy.
  void upload(const ParamRegistry& host);
  // Copies the master weights (and, with grads, the gradients) into a host registry of the same model.
  void download(ParamRegistry& host, bool grads);
  // Random weights on the GPU (benchmarks): matrices N(0, stddev^2), norm weights 1, biases 0.
  void init_random(uint64_t seed, float stddev = 0.02f);
  // Re-derives the bf16 copy from the master weights (after changing them outside the optimizer).
  void refresh_compute_copy();
  // The gradients count as zero from here (ParamRegistry::discard_grads: the next backward overwrites them).
  void zero_grad();
  // The weights as weight sync on the GPU reads them (model/device_weights.h): the bf16 copy (or, with fp32
  // activations, the master weights), the fp32 master and where its 1-D parameters lie.
  DeviceWeights device_weights();

  // Training forward over a packed batch: log-probabilities [T] of targets under softmax(logits / temperature)
  // and, if entropy is not null, the entropy [T] (host tensors, as the CPU Decoder returns them). Keeps the
  // activations backward() needs.
  void forward(const PackedBatch& batch, const std::vector<int64_t>& targets, float temperature, Tensor* logprobs,
               Tensor* entropy);
  // Accumulates the parameter gradients (fp32, on the GPU) of a loss given dloss/dlogprob [T] and dloss/dentropy
  // [T] (host tensors; undefined means zero). Call after forward().
  void backward(const Tensor& dlogprobs, const Tensor& dentropy);

  // Bytes of the activation arena (what a batch of the largest size seen needs).
  size_t arena_bytes() const { return arena_.defined() ? arena_.nbytes() : 0; }
  int64_t lm_head_chunk_rows() const;

 private:
  struct Layer;         // device pointers of one layer's activations
  struct Buffers;       // everything a batch needs, carved from the arena

  void plan(Carver& carver, int64_t tokens, int64_t sequences, int64_t unique_tokens, Buffers& b) const;
  void prepare_batch(const PackedBatch& batch, const std::vector<int64_t>& targets);
  void layer_forward(int64_t l, bool write_output);
  void layer_backward(int64_t l, const void* dy, void* dx);
  void lm_head_logits(int64_t r0, int64_t rows);
  const void* wc(const Param& p) const;  // the weights the GEMMs read: bf16 copy or fp32 master
  // Ints per batch: tokens, targets [T], cu_seqlens [B + 1], positions, embedding order [T], unique starts [U + 1].
  static int64_t batch_ints(int64_t T, int64_t B, int64_t U) { return 4 * T + B + U + 2; }
  size_t act_bytes(int64_t elements) const { return static_cast<size_t>(elements) * (bf16() ? 2 : 4); }
  bool bf16() const { return options_.precision == cuda::Precision::BF16; }
  // Sums `elements` activations over the TP group (nothing with one rank).
  void tp_all_reduce(void* x, int64_t elements);
  // The GEMM coefficient of a row-parallel output onto the residual already in C: the residual is added on TP rank
  // 0 only (the others write their partial product), so the all-reduce that follows adds it once.
  float residual_beta() const { return tp_.rank == 0 ? 1.0f : 0.0f; }
  // Local (this TP rank's) sizes.
  int64_t local_heads() const { return config_.num_heads / tp_.size; }
  int64_t local_groups() const { return config_.num_kv_heads / tp_.size; }
  int64_t local_ffn() const { return config_.intermediate_size / tp_.size; }
  int64_t local_vocab() const { return config_.padded_vocab_size / tp_.size; }
  int64_t vocab_begin() const { return w_.embedding->blocks[0].global_start; }

  ModelConfig config_;
  CudaDecoderOptions options_;
  comm::Group tp_;
  comm::DeviceComm* tp_comm_ = nullptr;
  DecoderWeights w_;
  Tensor compute_copy_;  // bf16 [numel] or undefined
  Tensor arena_;         // U8 device bytes
  Tensor rope_cos_, rope_sin_;  // [rope_positions_, d/2] fp32: RoPE tables by position
  int64_t rope_positions_ = 0;
  std::unique_ptr<Buffers> buf_;
  int64_t T_ = 0, B_ = 0, max_seqlen_ = 0, U_ = 0;
  float inv_temperature_ = 1.0f;
  bool with_entropy_ = false, valid_ = false, logits_kept_ = false;
};

}  // namespace slime::model
