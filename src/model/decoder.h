// The decoder-only transformer on the CPU backend (fp32): forward and backward over packed sequences.
//
//   tokens -> embedding -> L x [ RMSNorm -> fused QKV (+bias) -> [QK-norm] -> RoPE -> causal GQA attention
//                                 -> output projection -> +residual
//                                 RMSNorm -> fused fc1 [gate | up] -> SwiGLU -> fc2 -> +residual ]
//          -> final RMSNorm -> LM head (tied or own weight) -> log-softmax(logits / temperature)
//
// Training never materialises [tokens, vocab] logits for the whole batch: the LM head and the log-prob/entropy
// are computed in row chunks, and the backward recomputes each chunk's logits.
//
// Tensor parallelism (Megatron): QKV and fc1 are column-parallel (each rank holds whole KV groups and its slice of
// [gate | up]), the output projection and fc2 are row-parallel (their outputs are summed across the TP group),
// the embedding and LM head are vocab-parallel (the log-softmax statistics are reduced across the group). The
// backward all-reduces the input gradients of the column-parallel layers and the QK-norm weight gradients (each
// rank sees only its heads). With a TP group of one rank none of this communicates.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "comm/parallel.h"
#include "core/tensor.h"
#include "kernels/cpu/paged_attention.h"
#include "model/config.h"
#include "model/params.h"

namespace slime::model {

// Sequences packed end to end (Megatron's "thd" layout): no padding between them.
struct PackedBatch {
  std::vector<int64_t> tokens;      // [T]
  std::vector<int64_t> positions;   // [T] position of each token in its sequence (RoPE)
  std::vector<int64_t> cu_seqlens;  // [B + 1] sequence boundaries, cu_seqlens[0] = 0, back() = T

  static PackedBatch from_sequences(const std::vector<std::vector<int64_t>>& sequences);
  int64_t num_tokens() const { return static_cast<int64_t>(tokens.size()); }
  int64_t num_sequences() const { return static_cast<int64_t>(cu_seqlens.size()) - 1; }
  // Checks shapes and that every token id is below vocab_size; errors say which token is wrong.
  void validate(int64_t vocab_size) const;
};

// The checks of a training forward's inputs (both decoders): one target per token, each inside the true vocabulary,
// and a positive temperature. Errors say which target is wrong.
void check_forward_inputs(const PackedBatch& batch, const std::vector<int64_t>& targets, float temperature,
                          int64_t vocab_size);

// The paged key/value cache of an inference engine: for every layer, fixed-size blocks of this rank's KV heads.
struct KvCache {
  int64_t layers = 0, num_blocks = 0, block_size = 0, groups = 0, head_dim = 0;
  Tensor k, v;  // [layers, num_blocks * block_size, G (local), d]

  static KvCache allocate(const ModelConfig& config, int tensor_parallel_size, int64_t num_blocks,
                          int64_t block_size);
  static int64_t bytes_per_block(const ModelConfig& config, int tensor_parallel_size, int64_t block_size);
  int64_t layer_elements() const { return num_blocks * block_size * groups * head_dim; }
};

// What sits on top of the final norm: the LM head (log-probs over the vocabulary), or the critic's value head
// (slime's LinearForLastLayer: hidden -> 1 with a bias, replicated across tensor-parallel ranks).
enum class Head { LanguageModel, Value };

// The parameters of a decoder, registered under their Megatron names with this rank's tensor-parallel shards, and
// handles to them. The CPU Decoder allocates the registry in host memory; the CUDA decoder on the GPU.
struct DecoderWeights {
  struct Layer {
    Param* input_norm;    // linear_qkv.layer_norm_weight [h]
    Param* qkv_weight;    // linear_qkv.weight [(H + 2G) d, h]
    Param* qkv_bias;      // linear_qkv.bias [(H + 2G) d] or null
    Param* q_norm;        // q_layernorm.weight [d] or null
    Param* k_norm;        // k_layernorm.weight [d] or null
    Param* proj_weight;   // linear_proj.weight [h, H d]
    Param* mlp_norm;      // linear_fc1.layer_norm_weight [h]
    Param* fc1_weight;    // linear_fc1.weight [2F, h]
    Param* fc2_weight;    // linear_fc2.weight [h, F]
  };

  ParamRegistry registry;
  Param* embedding = nullptr;   // embedding.word_embeddings.weight [padded vocab (slice), h]
  Param* final_norm = nullptr;  // decoder.final_layernorm.weight [h]
  Param* output = nullptr;      // output_layer.weight; null when tied to the embedding; the value head's for Head::Value
  Param* value_bias = nullptr;  // output_layer.bias of the value head
  std::vector<Layer> layers;

  // Registers every parameter (call registry.allocate() next). Errors if the TP size does not divide the KV heads,
  // the FFN size or the padded vocab.
  DecoderWeights(const ModelConfig& config, const comm::Group& tp, Head head);
  DecoderWeights(const DecoderWeights&) = delete;
  DecoderWeights& operator=(const DecoderWeights&) = delete;

  const Param& output_weight() const { return output ? *output : *embedding; }
  Param& output_weight() { return output ? *output : *embedding; }
};

class Decoder {
 public:
  // Registers every parameter (zero-initialised, host memory) under its Megatron name; with a TP group of several
  // ranks, each holds its shard (DecoderWeights).
  explicit Decoder(const ModelConfig& config, const comm::Group& tp = comm::Group{},
                   Head head = Head::LanguageModel);

  const ModelConfig& config() const { return config_; }
  ParamRegistry& params() { return w_.registry; }
  const ParamRegistry& params() const { return w_.registry; }
  const DecoderWeights& weights() const { return w_; }

  const comm::Group& tp() const { return tp_; }

  // Logits [T, padded_vocab / TP] for every token (this rank's vocab slice); keeps no activations.
  Tensor forward_logits(const PackedBatch& batch);

  // Training forward: log-probability [T] of targets[t] under softmax(logits_t / temperature) and, if entropy is
  // not null, that distribution's entropy [T]. Keeps the activations backward() needs.
  void forward(const PackedBatch& batch, const std::vector<int64_t>& targets, float temperature, Tensor* logprobs,
               Tensor* entropy);

  // Accumulates parameter gradients (params().all()[i].grad) of a loss given dloss/dlogprob [T] and
  // dloss/dentropy [T] (an undefined tensor means zero). Call after forward(); releases the activations.
  void backward(const Tensor& dlogprobs, const Tensor& dentropy);

  // Inference over a paged KV cache (the rollout engine). `tokens` [T] are the new tokens of each sequence in
  // `seqs` (a chunk of a prompt, or the latest sampled token); their K/V are written into `cache` and they attend
  // to everything cached before them. Returns the logits [rows, padded_vocab / TP] of the new tokens listed in
  // `logit_rows` (indices into `tokens`). Keeps no activations.
  Tensor forward_paged(const cpu::PagedSequences& seqs, const std::vector<int64_t>& tokens, KvCache& cache,
                       const std::vector<int64_t>& logit_rows);

  // Critic (Head::Value): one value per token [T], keeping the activations for backward_values().
  void forward_values(const PackedBatch& batch, Tensor* values);
  // Accumulates parameter gradients given dloss/dvalue [T]. Call after forward_values().
  void backward_values(const Tensor& dvalues);
  Head head() const { return head_; }

  // Rows of the LM head processed at once (bounds the [rows, vocab] logits buffer): --log-probs-chunk-size when
  // set (> 0), else as many rows as fit 64 MiB of fp32 logits.
  int64_t lm_head_chunk_rows() const;
  void set_lm_head_chunk_rows(int64_t rows) { lm_head_chunk_rows_ = rows; }

 private:
  // What one layer keeps for its backward pass.
  struct LayerActivations {
    Tensor x_in;              // [T, h] layer input (residual stream)
    Tensor rstd_attn;         // [T]
    Tensor xn_attn;           // [T, h] normed input of the QKV projection
    Tensor q_raw, k_raw;      // [H|G, T, d] before QK-norm (Qwen3 only)
    Tensor q_rstd, k_rstd;    // [H|G * T]
    Tensor q, k, v;           // [H|G, T, d] attention operands (after QK-norm and RoPE)
    Tensor attn_out, lse;     // [H, T, d], [H, T]
    Tensor attn_tokens;       // [T, H d] input of the output projection
    Tensor x_mid;             // [T, h] after the attention residual
    Tensor rstd_mlp;          // [T]
    Tensor xn_mlp;            // [T, h]
    Tensor gate_up;           // [T, 2F]
    Tensor act;               // [T, F]
  };
  struct BatchState {
    PackedBatch batch;
    Tensor rope_cos, rope_sin;  // [T, d/2]
    std::vector<LayerActivations> layers;
    Tensor x_final;             // [T, h] input of the final norm
    Tensor rstd_final;          // [T]
    Tensor hidden;              // [T, h] final normed hidden states
    std::vector<int64_t> targets;
    float inv_temperature = 1.0f;
    Tensor lse;                 // [T] of logits / temperature
    Tensor mean_z;              // [T] E_p[logits / temperature] (entropy gradient)
    bool with_entropy = false;
    bool valid = false;
  };

  // Fills a.attn_out (and a.lse when the backward needs it) from a.q, a.k, a.v of layer `layer`.
  using AttentionCore = std::function<void(int64_t layer, LayerActivations& a, BatchState& s)>;
  Tensor run_layers(const PackedBatch& batch, bool keep, BatchState* state, const AttentionCore& core = nullptr);
  void layer_forward(int64_t layer, const Tensor& x, LayerActivations& a, BatchState& s, const AttentionCore& core);
  Tensor layer_backward(const DecoderWeights::Layer& p, const Tensor& dx, LayerActivations& a, BatchState& s);
  // From d loss / d hidden (final norm output) to every parameter below the head; releases the activations.
  void backward_from_hidden(const Tensor& dhidden);

  // Local (per-TP-rank) sizes.
  int64_t local_heads() const { return config_.num_heads / tp_.size; }
  int64_t local_groups() const { return config_.num_kv_heads / tp_.size; }
  int64_t local_ffn() const { return config_.intermediate_size / tp_.size; }
  int64_t local_vocab() const { return config_.padded_vocab_size / tp_.size; }
  int64_t local_qkv_rows() const { return (local_heads() + 2 * local_groups()) * config_.head_dim; }
  // LM head on rows [r0, r0 + rows) of the hidden states: local logits into `logits`.
  void lm_head_logits(const Tensor& hidden, int64_t r0, int64_t rows, Tensor& logits);

  ModelConfig config_;
  comm::Group tp_;
  Head head_ = Head::LanguageModel;
  DecoderWeights w_;
  int64_t lm_head_chunk_rows_ = -1;
  std::vector<float> inv_freq_;
  BatchState state_;
};

}  // namespace slime::model
