#include "model/decoder.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "core/error.h"
#include "kernels/cpu/ops.h"

namespace slime::model {
namespace {

float* F(const Tensor& t) { return t.data<float>(); }
Tensor empty_f32(const Shape& shape) { return Tensor::empty(shape, DType::F32); }

std::string layer_name(int64_t layer, const std::string& suffix) {
  return cat("decoder.layers.", layer, ".", suffix);
}

void add_inplace(float* y, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += x[i];
}

}  // namespace

PackedBatch PackedBatch::from_sequences(const std::vector<std::vector<int64_t>>& sequences) {
  PackedBatch b;
  b.cu_seqlens.push_back(0);
  for (const auto& seq : sequences) {
    for (size_t i = 0; i < seq.size(); ++i) {
      b.tokens.push_back(seq[i]);
      b.positions.push_back(static_cast<int64_t>(i));
    }
    b.cu_seqlens.push_back(static_cast<int64_t>(b.tokens.size()));
  }
  return b;
}

void PackedBatch::validate(int64_t vocab_size) const {
  SLIME_CHECK(!cu_seqlens.empty() && cu_seqlens.front() == 0 && cu_seqlens.back() == num_tokens(),
              "packed batch: cu_seqlens must start at 0 and end at the token count ", num_tokens());
  for (size_t i = 1; i < cu_seqlens.size(); ++i)
    SLIME_CHECK(cu_seqlens[i] >= cu_seqlens[i - 1], "packed batch: cu_seqlens must not decrease (at ", i, ")");
  SLIME_CHECK(positions.size() == tokens.size(), "packed batch: ", positions.size(), " positions for ",
              tokens.size(), " tokens");
  for (size_t t = 0; t < tokens.size(); ++t) {
    SLIME_CHECK(tokens[t] >= 0 && tokens[t] < vocab_size, "packed batch: token ", t, " has id ", tokens[t],
                ", outside the vocabulary [0, ", vocab_size, ")");
    SLIME_CHECK(positions[t] >= 0, "packed batch: token ", t, " has negative position ", positions[t]);
  }
}

DecoderWeights::DecoderWeights(const ModelConfig& c, const comm::Group& tp, Head head) {
  const int tp_size = tp.size, r = tp.rank;
  SLIME_CHECK(c.padded_vocab_size >= c.vocab_size, "padded vocab size ", c.padded_vocab_size, " < vocab size ",
              c.vocab_size);
  SLIME_CHECK(c.num_kv_heads % tp_size == 0, "the tensor-parallel size ", tp_size,
              " (--tensor-model-parallel-size for the trainer, --rollout-num-gpus-per-engine for an engine)",
              " must divide the number of KV heads (num_key_value_heads = ", c.num_kv_heads, ")");
  const int64_t h = c.hidden_size, d = c.head_dim, F = c.intermediate_size, per = c.heads_per_group();
  const int64_t group_rows = (per + 2) * d;  // fused QKV rows of one KV group
  // Fused QKV rows are grouped per KV group, so rank r's whole groups are one contiguous block of rows.
  const auto groups = contiguous_shard(c.num_kv_heads, r, tp_size, "num_key_value_heads");
  const std::vector<ShardBlock> qkv_blocks = {{groups[0].global_start * group_rows, 0, groups[0].size * group_rows}};
  // fc1 is [gate; up]: rank r holds gate rows [rF/tp, (r+1)F/tp) and the matching up rows, as [gate_r; up_r].
  const auto ffn = contiguous_shard(F, r, tp_size, "intermediate_size");
  const std::vector<ShardBlock> fc1_blocks = {{ffn[0].global_start, 0, ffn[0].size},
                                              {F + ffn[0].global_start, ffn[0].size, ffn[0].size}};
  const auto vocab = contiguous_shard(c.padded_vocab_size, r, tp_size, "the padded vocabulary");
  const auto proj_cols = contiguous_shard(c.num_heads * d, r, tp_size, "num_attention_heads * head_dim");

  embedding = &registry.add("embedding.word_embeddings.weight", {c.padded_vocab_size, h}, 0, vocab);
  layers.resize(c.num_layers);
  for (int64_t l = 0; l < c.num_layers; ++l) {
    Layer& p = layers[l];
    p.input_norm = &registry.add(layer_name(l, "self_attention.linear_qkv.layer_norm_weight"), {h});
    p.qkv_weight = &registry.add(layer_name(l, "self_attention.linear_qkv.weight"), {c.qkv_rows(), h}, 0,
                                 qkv_blocks);
    p.qkv_bias = c.qkv_bias ? &registry.add(layer_name(l, "self_attention.linear_qkv.bias"), {c.qkv_rows()}, 0,
                                            qkv_blocks)
                            : nullptr;
    p.q_norm = c.qk_norm ? &registry.add(layer_name(l, "self_attention.q_layernorm.weight"), {d}) : nullptr;
    p.k_norm = c.qk_norm ? &registry.add(layer_name(l, "self_attention.k_layernorm.weight"), {d}) : nullptr;
    p.proj_weight = &registry.add(layer_name(l, "self_attention.linear_proj.weight"), {h, c.num_heads * d}, 1,
                                  proj_cols);
    p.mlp_norm = &registry.add(layer_name(l, "mlp.linear_fc1.layer_norm_weight"), {h});
    p.fc1_weight = &registry.add(layer_name(l, "mlp.linear_fc1.weight"), {2 * F, h}, 0, fc1_blocks);
    p.fc2_weight = &registry.add(layer_name(l, "mlp.linear_fc2.weight"), {h, F}, 1, ffn);
  }
  final_norm = &registry.add("decoder.final_layernorm.weight", {h});
  if (head == Head::Value) {
    output = &registry.add("output_layer.weight", {1, h});
    value_bias = &registry.add("output_layer.bias", {1});
  } else if (!c.tie_word_embeddings) {
    output = &registry.add("output_layer.weight", {c.padded_vocab_size, h}, 0, vocab);
  }
}

void check_forward_inputs(const PackedBatch& batch, const std::vector<int64_t>& targets, float temperature,
                          int64_t vocab_size) {
  SLIME_CHECK(static_cast<int64_t>(targets.size()) == batch.num_tokens(), "forward: ", targets.size(),
              " targets for ", batch.num_tokens(), " tokens");
  for (size_t t = 0; t < targets.size(); ++t)
    SLIME_CHECK(targets[t] >= 0 && targets[t] < vocab_size, "forward: target ", t, " is ", targets[t],
                ", outside the vocabulary [0, ", vocab_size, ")");
  SLIME_CHECK(temperature > 0, "forward: temperature must be positive, got ", temperature);
}

Decoder::Decoder(const ModelConfig& config, const comm::Group& tp, Head head)
    : config_(config), tp_(tp), head_(head), w_(config, tp, head) {
  w_.registry.allocate();
  inv_freq_ = rope_inv_freq(config_);
}

int64_t Decoder::lm_head_chunk_rows() const {
  if (lm_head_chunk_rows_ > 0) return lm_head_chunk_rows_;
  const int64_t budget_floats = int64_t{16} << 20;  // 64 MiB of fp32 logits per chunk
  return std::max<int64_t>(1, budget_floats / local_vocab());
}

void Decoder::lm_head_logits(const Tensor& hidden, int64_t r0, int64_t rows, Tensor& logits) {
  cpu::linear_forward<float>(F(hidden) + r0 * config_.hidden_size, F(w_.output_weight().value), nullptr, F(logits),
                             rows, config_.hidden_size, local_vocab());
}

void Decoder::layer_forward(int64_t layer, const Tensor& x, LayerActivations& a, BatchState& s,
                            const AttentionCore& core) {
  const DecoderWeights::Layer& p = w_.layers[layer];
  const ModelConfig& c = config_;
  const int64_t T = x.dim(0), h = c.hidden_size, H = local_heads(), G = local_groups(), d = c.head_dim;
  const int64_t F_ = local_ffn();
  const float eps = static_cast<float>(c.rms_norm_eps);
  a.x_in = x;

  // Attention block.
  a.rstd_attn = empty_f32({T});
  a.xn_attn = empty_f32({T, h});
  cpu::rmsnorm_forward<float>(F(x), F(p.input_norm->value), eps, F(a.xn_attn), F(a.rstd_attn), T, h);
  Tensor qkv = empty_f32({T, local_qkv_rows()});
  cpu::linear_forward<float>(F(a.xn_attn), F(p.qkv_weight->value), p.qkv_bias ? F(p.qkv_bias->value) : nullptr,
                             F(qkv), T, h, local_qkv_rows());
  a.q = empty_f32({H, T, d});
  a.k = empty_f32({G, T, d});
  a.v = empty_f32({G, T, d});
  if (c.qk_norm) {
    a.q_raw = empty_f32({H, T, d});
    a.k_raw = empty_f32({G, T, d});
    cpu::qkv_to_heads<float>(F(qkv), F(a.q_raw), F(a.k_raw), F(a.v), T, H, G, d);
    a.q_rstd = empty_f32({H * T});
    a.k_rstd = empty_f32({G * T});
    cpu::rmsnorm_forward<float>(F(a.q_raw), F(p.q_norm->value), eps, F(a.q), F(a.q_rstd), H * T, d);
    cpu::rmsnorm_forward<float>(F(a.k_raw), F(p.k_norm->value), eps, F(a.k), F(a.k_rstd), G * T, d);
  } else {
    cpu::qkv_to_heads<float>(F(qkv), F(a.q), F(a.k), F(a.v), T, H, G, d);
  }
  cpu::rope_apply<float>(F(a.q), F(s.rope_cos), F(s.rope_sin), H, T, d, false);
  cpu::rope_apply<float>(F(a.k), F(s.rope_cos), F(s.rope_sin), G, T, d, false);
  a.attn_out = empty_f32({H, T, d});
  if (core) {
    core(layer, a, s);
  } else {  // training: causal attention within each packed sequence
    a.lse = empty_f32({H, T});
    const cpu::AttentionShape shape{T, H, G, d, s.batch.num_sequences()};
    cpu::attention_forward<float>(shape, s.batch.cu_seqlens.data(), F(a.q), F(a.k), F(a.v),
                                  1.0f / std::sqrt(static_cast<float>(d)), F(a.attn_out), F(a.lse));
  }
  a.attn_tokens = empty_f32({T, H * d});
  cpu::heads_to_tokens<float>(F(a.attn_out), F(a.attn_tokens), T, H, d);
  a.x_mid = empty_f32({T, h});
  cpu::linear_forward<float>(F(a.attn_tokens), F(p.proj_weight->value), nullptr, F(a.x_mid), T, H * d, h);
  tp_.allreduce_sum(F(a.x_mid), T * h);  // row-parallel output
  add_inplace(F(a.x_mid), F(x), T * h);

  // MLP block (fc2 happens in run_layers so x_mid stays intact for backward).
  a.rstd_mlp = empty_f32({T});
  a.xn_mlp = empty_f32({T, h});
  cpu::rmsnorm_forward<float>(F(a.x_mid), F(p.mlp_norm->value), eps, F(a.xn_mlp), F(a.rstd_mlp), T, h);
  a.gate_up = empty_f32({T, 2 * F_});
  cpu::linear_forward<float>(F(a.xn_mlp), F(p.fc1_weight->value), nullptr, F(a.gate_up), T, h, 2 * F_);
  a.act = empty_f32({T, F_});
  cpu::swiglu_forward<float>(F(a.gate_up), F(a.act), T, F_);
}

Tensor Decoder::run_layers(const PackedBatch& batch, bool keep, BatchState* state, const AttentionCore& core) {
  const ModelConfig& c = config_;
  batch.validate(c.vocab_size);
  const int64_t T = batch.num_tokens(), h = c.hidden_size;
  BatchState& s = *state;
  s.batch = batch;
  s.rope_cos = empty_f32({T, c.head_dim / 2});
  s.rope_sin = empty_f32({T, c.head_dim / 2});
  cpu::rope_tables<float>(inv_freq_.data(), c.head_dim / 2, batch.positions.data(), T, F(s.rope_cos),
                          F(s.rope_sin));
  // Vocab-parallel embedding: each rank looks up the tokens of its vocab slice, the group sums.
  Tensor x = empty_f32({T, h});
  if (tp_.single()) {
    cpu::embedding_forward<float>(batch.tokens.data(), F(w_.embedding->value), F(x), T, h);
  } else {
    x.fill_zero();
    const int64_t v0 = w_.embedding->blocks[0].global_start, vn = w_.embedding->blocks[0].size;
    for (int64_t t = 0; t < T; ++t) {
      const int64_t local = batch.tokens[t] - v0;
      if (local >= 0 && local < vn) std::memcpy(F(x) + t * h, F(w_.embedding->value) + local * h, h * sizeof(float));
    }
    tp_.allreduce_sum(F(x), T * h);
  }
  s.layers.assign(keep ? c.num_layers : 1, LayerActivations{});
  for (int64_t l = 0; l < c.num_layers; ++l) {
    LayerActivations& a = s.layers[keep ? l : 0];
    layer_forward(l, x, a, s, core);
    Tensor y = empty_f32({T, h});
    cpu::linear_forward<float>(F(a.act), F(w_.layers[l].fc2_weight->value), nullptr, F(y), T, local_ffn(), h);
    tp_.allreduce_sum(F(y), T * h);  // row-parallel output
    add_inplace(F(y), F(a.x_mid), T * h);
    x = y;
  }
  s.x_final = x;
  s.rstd_final = empty_f32({T});
  s.hidden = empty_f32({T, h});
  cpu::rmsnorm_forward<float>(F(x), F(w_.final_norm->value), static_cast<float>(c.rms_norm_eps), F(s.hidden),
                              F(s.rstd_final), T, h);
  return s.hidden;
}

KvCache KvCache::allocate(const ModelConfig& config, int tensor_parallel_size, int64_t num_blocks,
                          int64_t block_size) {
  SLIME_CHECK(num_blocks > 0 && block_size > 0, "KV cache: need positive block count and size, got ", num_blocks,
              " blocks of ", block_size);
  KvCache cache;
  cache.layers = config.num_layers;
  cache.num_blocks = num_blocks;
  cache.block_size = block_size;
  cache.groups = config.num_kv_heads / tensor_parallel_size;
  cache.head_dim = config.head_dim;
  const Shape shape = {cache.layers, num_blocks * block_size, cache.groups, cache.head_dim};
  // Not zero-filled: a slot is always written before it is read, and untouched pages of a large cache cost nothing.
  cache.k = Tensor::empty(shape, DType::F32);
  cache.v = Tensor::empty(shape, DType::F32);
  return cache;
}

int64_t KvCache::bytes_per_block(const ModelConfig& config, int tensor_parallel_size, int64_t block_size) {
  return 2 * config.num_layers * block_size * (config.num_kv_heads / tensor_parallel_size) * config.head_dim *
         static_cast<int64_t>(sizeof(float));
}

Tensor Decoder::forward_paged(const cpu::PagedSequences& seqs, const std::vector<int64_t>& tokens, KvCache& cache,
                              const std::vector<int64_t>& logit_rows) {
  SLIME_ASSERT(head_ == Head::LanguageModel, "forward_paged() needs the LM head");
  SLIME_ASSERT(cache.groups == local_groups() && cache.head_dim == config_.head_dim && cache.layers == config_.num_layers,
               "KV cache shaped for another model");
  PackedBatch batch;
  batch.tokens = tokens;
  batch.positions = seqs.positions;
  batch.cu_seqlens = seqs.cu_seqlens;
  SLIME_CHECK(static_cast<int64_t>(seqs.positions.size()) == batch.num_tokens() &&
                  seqs.context_lens.size() + 1 == seqs.cu_seqlens.size() &&
                  seqs.block_tables.size() == seqs.context_lens.size(),
              "forward_paged: inconsistent sequence description");
  const int64_t T = batch.num_tokens(), d = config_.head_dim;
  const cpu::PagedAttentionShape shape{T, local_heads(), local_groups(), d, cache.block_size};
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  AttentionCore paged = [&](int64_t layer, LayerActivations& a, BatchState&) {
    float* k_cache = F(cache.k) + layer * cache.layer_elements();
    float* v_cache = F(cache.v) + layer * cache.layer_elements();
    cpu::kv_cache_write<float>(shape, seqs, F(a.k), F(a.v), k_cache, v_cache);
    cpu::paged_attention_forward<float>(shape, seqs, F(a.q), k_cache, v_cache, scale, F(a.attn_out));
  };
  BatchState scratch;
  Tensor hidden = run_layers(batch, false, &scratch, paged);
  const int64_t rows = static_cast<int64_t>(logit_rows.size()), h = config_.hidden_size;
  Tensor selected = empty_f32({rows, h});
  for (int64_t r = 0; r < rows; ++r) {
    SLIME_ASSERT(logit_rows[r] >= 0 && logit_rows[r] < T, "forward_paged: logit row out of range");
    std::memcpy(F(selected) + r * h, F(hidden) + logit_rows[r] * h, h * sizeof(float));
  }
  Tensor logits = empty_f32({rows, local_vocab()});
  lm_head_logits(selected, 0, rows, logits);
  return logits;
}

Tensor Decoder::forward_logits(const PackedBatch& batch) {
  SLIME_ASSERT(head_ == Head::LanguageModel, "forward_logits() needs the LM head");
  BatchState scratch;
  Tensor hidden = run_layers(batch, false, &scratch);
  const int64_t T = batch.num_tokens();
  Tensor logits = empty_f32({T, local_vocab()});
  lm_head_logits(hidden, 0, T, logits);
  return logits;
}

void Decoder::forward(const PackedBatch& batch, const std::vector<int64_t>& targets, float temperature,
                      Tensor* logprobs, Tensor* entropy) {
  SLIME_ASSERT(head_ == Head::LanguageModel, "forward() needs the LM head; the critic uses forward_values()");
  const ModelConfig& c = config_;
  check_forward_inputs(batch, targets, temperature, c.vocab_size);
  state_ = BatchState{};
  run_layers(batch, true, &state_);
  BatchState& s = state_;
  const int64_t T = batch.num_tokens(), V = local_vocab();
  s.targets = targets;
  s.inv_temperature = 1.0f / temperature;
  s.with_entropy = entropy != nullptr;
  s.lse = empty_f32({T});
  s.mean_z = empty_f32({T});
  *logprobs = empty_f32({T});
  if (entropy) *entropy = empty_f32({T});
  const int64_t chunk = lm_head_chunk_rows();
  Tensor logits = empty_f32({std::min(chunk, std::max<int64_t>(T, 1)), V});
  std::vector<float> row_max;
  std::vector<double> sums;  // [3, rows]: sum exp, sum exp*z, target z
  for (int64_t r0 = 0; r0 < T; r0 += chunk) {
    const int64_t rows = std::min(chunk, T - r0);
    lm_head_logits(s.hidden, r0, rows, logits);
    const cpu::LogitsShape shape{rows, V, c.vocab_size, w_.output_weight().blocks[0].global_start};
    row_max.resize(rows);
    sums.resize(3 * rows);
    cpu::logprob_partial_max<float>(shape, F(logits), s.inv_temperature, row_max.data());
    tp_.allreduce_max(row_max.data(), rows);
    cpu::logprob_partial_sums<float>(shape, F(logits), s.targets.data() + r0, s.inv_temperature, row_max.data(),
                                     sums.data(), sums.data() + rows, sums.data() + 2 * rows);
    tp_.allreduce_sum(sums.data(), 3 * rows);
    for (int64_t i = 0; i < rows; ++i) {
      const double log_z = row_max[i] + std::log(sums[i]);
      const double mean_z = sums[rows + i] / sums[i];
      F(s.lse)[r0 + i] = static_cast<float>(log_z);
      F(s.mean_z)[r0 + i] = static_cast<float>(mean_z);
      F(*logprobs)[r0 + i] = static_cast<float>(sums[2 * rows + i] - log_z);
      if (entropy) F(*entropy)[r0 + i] = static_cast<float>(log_z - mean_z);
    }
  }
  s.valid = true;
}

Tensor Decoder::layer_backward(const DecoderWeights::Layer& p, const Tensor& dy, LayerActivations& a, BatchState& s) {
  const ModelConfig& c = config_;
  const int64_t T = dy.dim(0), h = c.hidden_size, H = local_heads(), G = local_groups(), d = c.head_dim;
  const int64_t F_ = local_ffn();

  // MLP block: y = x_mid + fc2(swiglu(fc1(norm(x_mid)))).
  Tensor dact = empty_f32({T, F_});
  cpu::linear_backward<float>(F(a.act), F(p.fc2_weight->value), F(dy), F(dact), F(p.fc2_weight->grad), nullptr, T,
                              F_, h);
  Tensor dgate_up = empty_f32({T, 2 * F_});
  cpu::swiglu_backward<float>(F(a.gate_up), F(dact), F(dgate_up), T, F_);
  Tensor dxn = empty_f32({T, h});
  cpu::linear_backward<float>(F(a.xn_mlp), F(p.fc1_weight->value), F(dgate_up), F(dxn), F(p.fc1_weight->grad),
                              nullptr, T, h, 2 * F_);
  tp_.allreduce_sum(F(dxn), T * h);  // column-parallel input gradient
  Tensor dx_mid = empty_f32({T, h});
  cpu::rmsnorm_backward<float>(F(a.x_mid), F(p.mlp_norm->value), F(a.rstd_mlp), F(dxn), F(dx_mid),
                               F(p.mlp_norm->grad), T, h);
  add_inplace(F(dx_mid), F(dy), T * h);

  // Attention block: x_mid = x_in + proj(attention(rope(norm_qk(split(qkv(norm(x_in))))))).
  Tensor dattn_tokens = empty_f32({T, H * d});
  cpu::linear_backward<float>(F(a.attn_tokens), F(p.proj_weight->value), F(dx_mid), F(dattn_tokens),
                              F(p.proj_weight->grad), nullptr, T, H * d, h);
  Tensor dattn = empty_f32({H, T, d});
  cpu::tokens_to_heads<float>(F(dattn_tokens), F(dattn), T, H, d);
  Tensor dq = empty_f32({H, T, d}), dk = empty_f32({G, T, d}), dv = empty_f32({G, T, d});
  const cpu::AttentionShape shape{T, H, G, d, s.batch.num_sequences()};
  cpu::attention_backward<float>(shape, s.batch.cu_seqlens.data(), F(a.q), F(a.k), F(a.v), F(a.attn_out), F(a.lse),
                                 F(dattn), 1.0f / std::sqrt(static_cast<float>(d)), F(dq), F(dk), F(dv));
  cpu::rope_apply<float>(F(dq), F(s.rope_cos), F(s.rope_sin), H, T, d, true);
  cpu::rope_apply<float>(F(dk), F(s.rope_cos), F(s.rope_sin), G, T, d, true);
  if (c.qk_norm) {
    // QK-norm weights act on every head but this rank holds only its heads: the weight gradient of this batch is a
    // partial sum over the TP group (reduced before it joins the accumulated gradient).
    Tensor dq_raw = empty_f32({H, T, d}), dk_raw = empty_f32({G, T, d});
    Tensor dw = Tensor::zeros({2, d}, DType::F32);
    cpu::rmsnorm_backward<float>(F(a.q_raw), F(p.q_norm->value), F(a.q_rstd), F(dq), F(dq_raw), F(dw), H * T, d);
    cpu::rmsnorm_backward<float>(F(a.k_raw), F(p.k_norm->value), F(a.k_rstd), F(dk), F(dk_raw), F(dw) + d, G * T, d);
    tp_.allreduce_sum(F(dw), 2 * d);
    add_inplace(F(p.q_norm->grad), F(dw), d);
    add_inplace(F(p.k_norm->grad), F(dw) + d, d);
    dq = dq_raw;
    dk = dk_raw;
  }
  Tensor dqkv = empty_f32({T, local_qkv_rows()});
  cpu::heads_to_qkv<float>(F(dq), F(dk), F(dv), F(dqkv), T, H, G, d);
  Tensor dxn_attn = empty_f32({T, h});
  cpu::linear_backward<float>(F(a.xn_attn), F(p.qkv_weight->value), F(dqkv), F(dxn_attn), F(p.qkv_weight->grad),
                              p.qkv_bias ? F(p.qkv_bias->grad) : nullptr, T, h, local_qkv_rows());
  tp_.allreduce_sum(F(dxn_attn), T * h);  // column-parallel input gradient
  Tensor dx = empty_f32({T, h});
  cpu::rmsnorm_backward<float>(F(a.x_in), F(p.input_norm->value), F(a.rstd_attn), F(dxn_attn), F(dx),
                               F(p.input_norm->grad), T, h);
  add_inplace(F(dx), F(dx_mid), T * h);
  return dx;
}

void Decoder::backward(const Tensor& dlogprobs, const Tensor& dentropy) {
  SLIME_CHECK(state_.valid && head_ == Head::LanguageModel, "backward() needs a preceding forward() with the "
                                                            "activations kept");
  BatchState& s = state_;
  const ModelConfig& c = config_;
  const int64_t T = s.batch.num_tokens(), h = c.hidden_size, V = local_vocab();
  SLIME_CHECK(dlogprobs.numel() == T, "backward: dlogprobs has ", dlogprobs.numel(), " values for ", T, " tokens");
  SLIME_CHECK(!dentropy.defined() || dentropy.numel() == T, "backward: dentropy has ", dentropy.numel(),
              " values for ", T, " tokens");
  SLIME_CHECK(!dentropy.defined() || s.with_entropy, "backward: entropy gradient given but forward() computed none");

  // LM head, chunk by chunk: recompute logits, turn d(logprob, entropy) into dlogits, then into dhidden and dW.
  // Each rank only sees its vocab slice, so dhidden is a partial sum over the TP group.
  Tensor dhidden = empty_f32({T, h});
  Param& out = w_.output_weight();
  const int64_t chunk = lm_head_chunk_rows();
  Tensor logits = empty_f32({std::min(chunk, std::max<int64_t>(T, 1)), V});
  Tensor dlogits = empty_f32({std::min(chunk, std::max<int64_t>(T, 1)), V});
  for (int64_t r0 = 0; r0 < T; r0 += chunk) {
    const int64_t rows = std::min(chunk, T - r0);
    lm_head_logits(s.hidden, r0, rows, logits);
    const cpu::LogitsShape shape{rows, V, c.vocab_size, out.blocks[0].global_start};
    cpu::logprob_entropy_backward<float>(shape, F(logits), s.targets.data() + r0, s.inv_temperature, F(s.lse) + r0,
                                         F(s.mean_z) + r0, F(dlogprobs) + r0,
                                         dentropy.defined() ? F(dentropy) + r0 : nullptr, F(dlogits));
    cpu::linear_backward<float>(F(s.hidden) + r0 * h, F(out.value), F(dlogits), F(dhidden) + r0 * h, F(out.grad),
                                nullptr, rows, h, V);
  }
  tp_.allreduce_sum(F(dhidden), T * h);
  backward_from_hidden(dhidden);
}

void Decoder::forward_values(const PackedBatch& batch, Tensor* values) {
  SLIME_ASSERT(head_ == Head::Value, "forward_values() needs the value head");
  state_ = BatchState{};
  run_layers(batch, true, &state_);
  const int64_t T = batch.num_tokens(), h = config_.hidden_size;
  *values = empty_f32({T});
  cpu::linear_forward<float>(F(state_.hidden), F(w_.output->value), F(w_.value_bias->value), F(*values), T, h, 1);
  state_.valid = true;
}

void Decoder::backward_values(const Tensor& dvalues) {
  SLIME_CHECK(state_.valid && head_ == Head::Value, "backward_values() needs a preceding forward_values()");
  const int64_t T = state_.batch.num_tokens(), h = config_.hidden_size;
  SLIME_CHECK(dvalues.numel() == T, "backward_values: ", dvalues.numel(), " values for ", T, " tokens");
  Tensor dhidden = empty_f32({T, h});
  cpu::linear_backward<float>(F(state_.hidden), F(w_.output->value), F(dvalues), F(dhidden), F(w_.output->grad),
                              F(w_.value_bias->grad), T, h, 1);
  backward_from_hidden(dhidden);
}

void Decoder::backward_from_hidden(const Tensor& dhidden) {
  BatchState& s = state_;
  const ModelConfig& c = config_;
  const int64_t T = s.batch.num_tokens(), h = c.hidden_size;
  Tensor dx = empty_f32({T, h});
  cpu::rmsnorm_backward<float>(F(s.x_final), F(w_.final_norm->value), F(s.rstd_final), F(dhidden), F(dx),
                               F(w_.final_norm->grad), T, h);
  for (int64_t l = c.num_layers - 1; l >= 0; --l) {
    dx = layer_backward(w_.layers[l], dx, s.layers[l], s);
    s.layers[l] = LayerActivations{};  // free as we go
  }
  // Vocab-parallel embedding: rows of this rank's slice only.
  const int64_t v0 = w_.embedding->blocks[0].global_start, vn = w_.embedding->blocks[0].size;
  for (int64_t t = 0; t < T; ++t) {
    const int64_t local = s.batch.tokens[t] - v0;
    if (local < 0 || local >= vn) continue;
    float* row = F(w_.embedding->grad) + local * h;
    const float* g = F(dx) + t * h;
    for (int64_t j = 0; j < h; ++j) row[j] += g[j];
  }
  state_ = BatchState{};
}

}  // namespace slime::model
