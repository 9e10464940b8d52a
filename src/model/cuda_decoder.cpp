#include "model/cuda_decoder.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/carver.h"
#include "comm/device_comm.h"
#include "core/error.h"
#include "kernels/cpu/rope.h"
#include "kernels/cuda/device.h"

namespace slime::model {

using cuda::Precision;

// One layer's activations. With full recomputation every layer shares one set except its input x_in.
struct CudaDecoder::Layer {
  void* x_in = nullptr;      // [T, h] residual stream entering the layer
  float* rstd_attn = nullptr;  // [T]
  void* xn_attn = nullptr;   // [T, h]
  void* qkv = nullptr;       // [T, (H + 2G) d] QKV GEMM output (no bias)
  void* q = nullptr;         // [T, H, d] after bias, QK-norm, RoPE
  void* k = nullptr;         // [T, G, d]
  void* v = nullptr;         // [T, G, d]
  void* attn_out = nullptr;  // [T, H, d]
  float* lse = nullptr;      // [H, T]
  void* x_mid = nullptr;     // [T, h] after the attention residual
  float* rstd_mlp = nullptr; // [T]
  void* xn_mlp = nullptr;    // [T, h]
  void* gate_up = nullptr;   // [T, 2F]
  void* act = nullptr;       // [T, F]
};

struct CudaDecoder::Buffers {
  int* tokens = nullptr;         // [T], first of the batch ints (one block, batch_ints)
  int* targets = nullptr;        // [T]
  int* cu_seqlens = nullptr;     // [B + 1]
  int* positions = nullptr;      // [T]
  int* order = nullptr;          // [T] token indices sorted by id (embedding backward)
  int* unique_starts = nullptr;  // [U + 1]
  float* cos = nullptr;          // [T, d/2]
  float* sin = nullptr;
  std::vector<Layer> layers;     // [L]
  void* x_final = nullptr;       // [T, h] input of the final norm
  float* rstd_final = nullptr;   // [T]
  void* hidden = nullptr;        // [T, h]
  float* logits = nullptr;       // [chunk, V] fp32
  void* dlogits = nullptr;       // [chunk, V]
  float* stats = nullptr;        // [TP, T, 4]: every TP rank's partial statistics (this rank's in block tp.rank)
  float* qk_norm_dw = nullptr;   // [2, d] one batch's QK-norm weight gradients (TP: summed over the group)
  float* lse = nullptr;          // [T] of logits / temperature
  float* mean_z = nullptr;       // [T]
  float* logprob = nullptr;      // [T]
  float* entropy = nullptr;      // [T]
  float* dlogprob = nullptr;     // [T]
  float* dentropy = nullptr;     // [T]
  // Backward scratch.
  void* dres_a = nullptr;        // [T, h] residual-stream gradients (ping-pong)
  void* dres_b = nullptr;
  void* dx_mid = nullptr;        // [T, h]
  void* dxn = nullptr;           // [T, h]
  void* dact = nullptr;          // [T, F]
  void* dgate_up = nullptr;      // [T, 2F]
  void* dattn = nullptr;         // [T, H, d]
  void* dq = nullptr;            // [T, H, d]
  void* dk = nullptr;            // [T, G, d]
  void* dv = nullptr;
  void* dqkv = nullptr;          // [T, (H + 2G) d]
};

void rope_tables_on_device(const ModelConfig& config, int64_t positions, Tensor* cos, Tensor* sin) {
  const int64_t half = config.head_dim / 2;
  const std::vector<float> inv_freq = rope_inv_freq(config);
  std::vector<int64_t> all(positions);
  for (int64_t i = 0; i < positions; ++i) all[i] = i;
  std::vector<float> c(positions * half), s(positions * half);
  cpu::rope_tables<float>(inv_freq.data(), half, all.data(), positions, c.data(), s.data());
  *cos = Tensor::empty({positions, half}, DType::F32, Device::CUDA);
  *sin = Tensor::empty({positions, half}, DType::F32, Device::CUDA);
  cuda::copy_to_device(cos->raw(), c.data(), c.size() * 4);
  cuda::copy_to_device(sin->raw(), s.data(), s.size() * 4);
}

CudaDecoder::CudaDecoder(const ModelConfig& config, const CudaDecoderOptions& options, const comm::Group& tp,
                         comm::DeviceComm* tp_comm)
    : config_(config), options_(options), tp_(tp), tp_comm_(tp_comm), w_(config, tp, Head::LanguageModel) {
  SLIME_CHECK(tp_.single() || (tp_comm_ && tp_comm_->size() == tp_.size && tp_comm_->rank() == tp_.rank),
              "CudaDecoder: a tensor-parallel group of ", tp_.size, " ranks needs its device communicator");
  const std::string& r = options_.recompute_granularity;
  SLIME_CHECK(r.empty() || r == "full" || r == "selective", "--recompute-granularity must be full or selective, got '",
              r, "'");
  if (bf16())
    SLIME_CHECK(config_.head_dim == 64 || config_.head_dim == 128, "the bf16 CUDA attention kernel handles head_dim 64 "
                "and 128; this model has head_dim ", config_.head_dim);
  SLIME_CHECK(options_.param_padding >= 1, "CudaDecoderOptions::param_padding must be at least 1");
  const int64_t n = w_.registry.numel(), pad = options_.param_padding;
  w_.registry.allocate(Device::CUDA, (n + pad - 1) / pad * pad);
  if (bf16()) {
    compute_copy_ = Tensor::empty({w_.registry.numel()}, DType::BF16, Device::CUDA);
    refresh_compute_copy();
  }
  buf_ = std::make_unique<Buffers>();
}

CudaDecoder::~CudaDecoder() = default;

const void* CudaDecoder::wc(const Param& p) const {
  if (!bf16()) return p.value.raw();
  return static_cast<const char*>(compute_copy_.raw()) + p.flat_offset * 2;
}

void CudaDecoder::refresh_compute_copy() {
  if (!bf16()) return;
  cuda::cast_from_f32(Precision::BF16, w_.registry.flat_values().data<float>(), compute_copy_.raw(),
                      w_.registry.numel(), nullptr);
}

void CudaDecoder::zero_grad() { w_.registry.discard_grads(); }

void CudaDecoder::tp_all_reduce(void* x, int64_t elements) {
  if (tp_.single()) return;
  tp_comm_->all_reduce_sum(x, elements, bf16() ? DType::BF16 : DType::F32);
  cuda::profile_mark("tensor-parallel all-reduce");
}

DeviceWeights CudaDecoder::device_weights() {
  DeviceWeights w;
  w.bf16 = bf16();
  w.master = w_.registry.flat_values().data<float>();
  w.flat = w.bf16 ? compute_copy_.raw() : w_.registry.flat_values().raw();
  w.numel = w_.registry.numel();
  w.layout = &w_.registry;
  for (const Param& p : w_.registry.all()) {
    if (!w.bf16 || p.global_shape.size() != 1) continue;
    w.vector_runs.push_back({p.flat_offset, p.value.numel()});
    w.vector_numel += p.value.numel();
  }
  return w;
}

void CudaDecoder::upload(const ParamRegistry& host) {
  SLIME_CHECK(host.numel() == w_.registry.numel(), "CudaDecoder::upload: the host model has ", host.numel(),
              " parameters, this one ", w_.registry.numel());
  cuda::copy_to_device(w_.registry.flat_values().raw(), host.flat_values().raw(), host.numel() * sizeof(float));
  refresh_compute_copy();
}

void CudaDecoder::download(ParamRegistry& host, bool grads) {
  SLIME_CHECK(host.numel() == w_.registry.numel(), "CudaDecoder::download: the host model has ", host.numel(),
              " parameters, this one ", w_.registry.numel());
  cuda::copy_to_host(host.flat_values().raw(), w_.registry.flat_values().raw(), host.numel() * sizeof(float));
  if (grads)
    cuda::copy_to_host(host.flat_grads().raw(), w_.registry.flat_grads().raw(), host.numel() * sizeof(float));
}

void CudaDecoder::init_random(uint64_t seed, float stddev) {
  for (Param& p : w_.registry.all()) {
    const bool vector = p.global_shape.size() == 1;
    const bool bias = p.name.size() >= 5 && p.name.compare(p.name.size() - 5, 5, ".bias") == 0;
    const float mean = vector && !bias ? 1.0f : 0.0f;  // norm weights 1, biases 0
    cuda::fill_normal(p.value.data<float>(), p.value.numel(), seed + p.flat_offset, mean, vector ? 0.0f : stddev,
                      nullptr);
  }
  refresh_compute_copy();
}

int64_t CudaDecoder::lm_head_chunk_rows() const {
  if (options_.lm_head_chunk_rows > 0) return options_.lm_head_chunk_rows;
  const int64_t budget_floats = int64_t{768} << 20;  // 3 GiB of fp32 logits
  return std::max<int64_t>(1, budget_floats / local_vocab());
}

void CudaDecoder::plan(Carver& c, int64_t T, int64_t B, int64_t U, Buffers& b) const {
  const ModelConfig& m = config_;
  const int64_t h = m.hidden_size, H = local_heads(), G = local_groups(), d = m.head_dim, F = local_ffn();
  const int64_t QKV = (H + 2 * G) * d, V = local_vocab(), L = m.num_layers;
  const int64_t chunk = std::min(lm_head_chunk_rows(), std::max<int64_t>(T, 1));
  // The batch's integer arrays back to back (batch_ints' layout: one upload).
  b.tokens = c.take<int>(batch_ints(T, B, U) * 4);
  b.targets = b.tokens ? b.tokens + T : nullptr;
  b.cu_seqlens = b.tokens ? b.targets + T : nullptr;
  b.positions = b.tokens ? b.cu_seqlens + B + 1 : nullptr;
  b.order = b.tokens ? b.positions + T : nullptr;
  b.unique_starts = b.tokens ? b.order + T : nullptr;
  b.cos = c.take<float>(T * (d / 2) * 4);
  b.sin = c.take<float>(T * (d / 2) * 4);
  const bool full = options_.recompute_granularity == "full";
  b.layers.assign(L, Layer{});
  for (int64_t l = 0; l < L; ++l) {
    Layer& a = b.layers[l];
    a.x_in = c.take(act_bytes(T * h));
    if (full && l > 0) {  // shares layer 0's set: the backward recomputes each layer into it
      void* x_in = a.x_in;
      a = b.layers[0];
      a.x_in = x_in;
      continue;
    }
    a.rstd_attn = c.take<float>(T * 4);
    a.xn_attn = c.take(act_bytes(T * h));
    a.qkv = c.take(act_bytes(T * QKV));
    a.q = c.take(act_bytes(T * H * d));
    a.k = c.take(act_bytes(T * G * d));
    a.v = c.take(act_bytes(T * G * d));
    a.attn_out = c.take(act_bytes(T * H * d));
    a.lse = c.take<float>(H * T * 4);
    a.x_mid = c.take(act_bytes(T * h));
    a.rstd_mlp = c.take<float>(T * 4);
    a.xn_mlp = c.take(act_bytes(T * h));
    a.gate_up = c.take(act_bytes(T * 2 * F));
    a.act = c.take(act_bytes(T * F));
  }
  b.x_final = c.take(act_bytes(T * h));
  b.rstd_final = c.take<float>(T * 4);
  b.hidden = c.take(act_bytes(T * h));
  b.logits = c.take<float>(chunk * V * 4);
  b.dlogits = c.take(act_bytes(chunk * V));
  b.stats = c.take<float>(tp_.size * T * 4 * 4);
  b.qk_norm_dw = c.take<float>(2 * d * 4);
  for (float** p : {&b.lse, &b.mean_z, &b.logprob, &b.entropy, &b.dlogprob, &b.dentropy}) *p = c.take<float>(T * 4);
  b.dres_a = c.take(act_bytes(T * h));
  b.dres_b = c.take(act_bytes(T * h));
  b.dx_mid = c.take(act_bytes(T * h));
  b.dxn = c.take(act_bytes(T * h));
  b.dact = c.take(act_bytes(T * F));
  b.dgate_up = c.take(act_bytes(T * 2 * F));
  b.dattn = c.take(act_bytes(T * H * d));
  b.dq = c.take(act_bytes(T * H * d));
  b.dk = c.take(act_bytes(T * G * d));
  b.dv = c.take(act_bytes(T * G * d));
  b.dqkv = c.take(act_bytes(T * QKV));
}

void CudaDecoder::prepare_batch(const PackedBatch& batch, const std::vector<int64_t>& targets) {
  const int64_t T = batch.num_tokens(), B = batch.num_sequences(), d = config_.head_dim;
  std::vector<int> tokens(T), order, unique_starts;
  for (int64_t t = 0; t < T; ++t) tokens[t] = static_cast<int>(batch.tokens[t]);
  int64_t max_seqlen = 0, max_position = 0;
  for (int64_t i = 0; i < B; ++i)
    max_seqlen = std::max<int64_t>(max_seqlen, batch.cu_seqlens[i + 1] - batch.cu_seqlens[i]);
  for (int64_t t = 0; t < T; ++t) max_position = std::max<int64_t>(max_position, batch.positions[t]);
  cuda::embedding_sort_tokens(tokens, &order, &unique_starts);
  const int64_t U = static_cast<int64_t>(unique_starts.size()) - 1;

  // Size the arena for this batch (grow only), then carve it.
  Carver measure(nullptr);
  plan(measure, T, B, U, *buf_);
  if (!arena_.defined() || arena_.nbytes() < measure.used()) {
    arena_ = Tensor();  // free the old arena before allocating the larger one
    arena_ = Tensor::empty({static_cast<int64_t>(measure.used())}, DType::U8, Device::CUDA);
  }
  Carver carve(static_cast<char*>(arena_.raw()));
  plan(carve, T, B, U, *buf_);
  T_ = T;
  B_ = B;
  U_ = U;
  max_seqlen_ = max_seqlen;

  Buffers& b = *buf_;
  std::vector<int> ints = tokens;  // batch_ints' layout
  ints.reserve(batch_ints(T, B, U));
  for (int64_t t = 0; t < T; ++t) ints.push_back(static_cast<int>(targets[t]));
  for (int64_t i = 0; i <= B; ++i) ints.push_back(static_cast<int>(batch.cu_seqlens[i]));
  for (int64_t t = 0; t < T; ++t) ints.push_back(static_cast<int>(batch.positions[t]));
  ints.insert(ints.end(), order.begin(), order.end());
  ints.insert(ints.end(), unique_starts.begin(), unique_starts.end());
  cuda::copy_to_device(b.tokens, ints.data(), ints.size() * 4);
  // RoPE cos/sin of each token: rows of per-position tables (cpu::rope_tables, so the values are the CPU's),
  // built on the host once for positions [0, rope_positions_) and grown when a batch goes further.
  if (max_position >= rope_positions_) {
    rope_positions_ = std::max<int64_t>({max_position + 1, 2 * rope_positions_, 4096});
    rope_tables_on_device(config_, rope_positions_, &rope_cos_, &rope_sin_);
  }
  cuda::gather_rows(rope_cos_.data<float>(), b.positions, T, d / 2, b.cos, nullptr);
  cuda::gather_rows(rope_sin_.data<float>(), b.positions, T, d / 2, b.sin, nullptr);
}

void CudaDecoder::layer_forward(int64_t l, bool write_output) {
  const ModelConfig& m = config_;
  const DecoderWeights::Layer& p = w_.layers[l];
  Layer& a = buf_->layers[l];
  const Buffers& b = *buf_;
  const Precision P = options_.precision;
  const int64_t T = T_, h = m.hidden_size, H = local_heads(), G = local_groups(), d = m.head_dim;
  const int64_t F = local_ffn(), QKV = (H + 2 * G) * d;
  const float eps = static_cast<float>(m.rms_norm_eps);
  void* y = l + 1 < m.num_layers ? buf_->layers[l + 1].x_in : b.x_final;

  cuda::rmsnorm_forward(P, a.x_in, p.input_norm->value.data<float>(), eps, a.xn_attn, a.rstd_attn, T, h, nullptr);
  cuda::profile_mark("fwd rmsnorm");
  cuda::gemm(P, P, false, true, T, QKV, h, 1.0f, a.xn_attn, wc(*p.qkv_weight), 0.0f, a.qkv, nullptr);
  cuda::profile_mark("fwd linears");
  const cuda::QkvShape qs{T, H, G, d};
  cuda::qkv_forward(P, qs, a.qkv, p.qkv_bias ? p.qkv_bias->value.data<float>() : nullptr,
                    p.q_norm ? p.q_norm->value.data<float>() : nullptr,
                    p.k_norm ? p.k_norm->value.data<float>() : nullptr, eps, b.cos, b.sin, a.q, a.k, a.v, nullptr);
  cuda::profile_mark("fwd qkv (bias, norm, rope)");
  cuda::attention_forward(P, a.q, a.k, a.v, b.cu_seqlens, T, B_, max_seqlen_, H, G, d,
                          1.0f / std::sqrt(static_cast<float>(d)), a.attn_out, a.lse, nullptr);
  cuda::profile_mark("fwd attention");
  // Residual, then += proj(attn) (row-parallel: partial products summed over the TP group).
  if (tp_.rank == 0) cuda::copy_async(a.x_mid, a.x_in, act_bytes(T * h), nullptr);
  cuda::gemm(P, P, false, true, T, h, H * d, 1.0f, a.attn_out, wc(*p.proj_weight), residual_beta(), a.x_mid, nullptr);
  cuda::profile_mark("fwd linears");
  tp_all_reduce(a.x_mid, T * h);
  cuda::rmsnorm_forward(P, a.x_mid, p.mlp_norm->value.data<float>(), eps, a.xn_mlp, a.rstd_mlp, T, h, nullptr);
  cuda::profile_mark("fwd rmsnorm");
  cuda::gemm(P, P, false, true, T, 2 * F, h, 1.0f, a.xn_mlp, wc(*p.fc1_weight), 0.0f, a.gate_up, nullptr);
  cuda::profile_mark("fwd linears");
  cuda::swiglu_forward(P, a.gate_up, a.act, T, F, nullptr);
  cuda::profile_mark("fwd swiglu");
  if (!write_output) return;  // recomputation: the layer's output is the next layer's kept input already
  if (tp_.rank == 0) cuda::copy_async(y, a.x_mid, act_bytes(T * h), nullptr);
  cuda::gemm(P, P, false, true, T, h, F, 1.0f, a.act, wc(*p.fc2_weight), residual_beta(), y, nullptr);
  cuda::profile_mark("fwd linears");
  tp_all_reduce(y, T * h);
}

void CudaDecoder::lm_head_logits(int64_t r0, int64_t rows) {
  const int64_t h = config_.hidden_size, V = local_vocab();
  const void* hidden = static_cast<const char*>(buf_->hidden) + act_bytes(r0 * h);
  cuda::gemm(options_.precision, Precision::F32, false, true, rows, V, h, 1.0f, hidden, wc(w_.output_weight()), 0.0f,
             buf_->logits, nullptr);
}

void CudaDecoder::forward(const PackedBatch& batch, const std::vector<int64_t>& targets, float temperature,
                          Tensor* logprobs, Tensor* entropy) {
  const ModelConfig& m = config_;
  batch.validate(m.vocab_size);
  check_forward_inputs(batch, targets, temperature, m.vocab_size);
  SLIME_CHECK(batch.num_tokens() > 0, "forward: the packed batch has no tokens");
  valid_ = false;
  cuda::profile_mark("host: before forward");
  prepare_batch(batch, targets);
  cuda::profile_mark("host: batch upload");
  Buffers& b = *buf_;
  const int64_t T = T_, h = m.hidden_size, V = local_vocab();
  const Precision P = options_.precision;
  inv_temperature_ = 1.0f / temperature;
  with_entropy_ = entropy != nullptr;

  // Vocab-parallel embedding: each rank's rows give the tokens of its slice (zero rows elsewhere), the group sums.
  cuda::embedding_forward(P, b.tokens, T, wc(*w_.embedding), vocab_begin(), V, h, b.layers[0].x_in, nullptr);
  cuda::profile_mark("embedding");
  tp_all_reduce(b.layers[0].x_in, T * h);
  for (int64_t l = 0; l < m.num_layers; ++l) layer_forward(l, true);
  cuda::rmsnorm_forward(P, b.x_final, w_.final_norm->value.data<float>(), static_cast<float>(m.rms_norm_eps),
                        b.hidden, b.rstd_final, T, h, nullptr);
  cuda::profile_mark("fwd rmsnorm");
  const int64_t chunk = lm_head_chunk_rows();
  logits_kept_ = T <= chunk;  // one chunk: its logits stay for the backward pass
  float* my_stats = b.stats + tp_.rank * T * 4;
  for (int64_t r0 = 0; r0 < T; r0 += chunk) {
    const int64_t rows = std::min(chunk, T - r0);
    lm_head_logits(r0, rows);
    cuda::logprob_partial_stats(cuda::LogitsShape{rows, V, m.vocab_size, vocab_begin()}, b.logits, b.targets + r0,
                                inv_temperature_, my_stats + r0 * 4, nullptr);
    cuda::profile_mark("lm head + logprob");
  }
  // Vocab-parallel log-softmax: every rank's partial statistics, merged.
  if (!tp_.single()) {
    tp_comm_->all_gather_inplace(b.stats, T * 4);
    cuda::profile_mark("tensor-parallel all-gather");
  }
  cuda::logprob_combine(b.stats, tp_.size, T, b.lse, b.mean_z, b.logprob, b.entropy, nullptr);
  *logprobs = Tensor::empty({T}, DType::F32);
  cuda::copy_to_host(logprobs->raw(), b.logprob, T * 4);
  if (entropy) {
    *entropy = Tensor::empty({T}, DType::F32);
    cuda::copy_to_host(entropy->raw(), b.entropy, T * 4);
  }
  valid_ = true;
}

void CudaDecoder::layer_backward(int64_t l, const void* dy, void* dx) {
  const ModelConfig& m = config_;
  const DecoderWeights::Layer& p = w_.layers[l];
  Buffers& b = *buf_;
  if (options_.recompute_granularity == "full") layer_forward(l, false);
  cuda::profile_mark("bwd host gaps");
  const Layer& a = b.layers[l];
  const Precision P = options_.precision, F32 = Precision::F32;
  const int64_t T = T_, h = m.hidden_size, H = local_heads(), G = local_groups(), d = m.head_dim;
  const int64_t F = local_ffn(), QKV = (H + 2 * G) * d;
  const float eps = static_cast<float>(m.rms_norm_eps);
  // Gradients may be discarded (ParamRegistry::discard_grads): GEMMs overwrite them first (beta), the other kernels
  // add into zeroed ones.
  ParamRegistry& reg = w_.registry;
  auto grad = [](Param* q) { return q ? q->grad.data<float>() : nullptr; };
  auto zeroed = [&reg](Param* q) { return reg.grad_zeroed(q); };
  auto value = [](Param* q) { return q ? q->value.data<float>() : nullptr; };

  // MLP block: y = x_mid + fc2(swiglu(fc1(norm(x_mid)))).
  cuda::gemm(P, P, false, false, T, F, h, 1.0f, dy, wc(*p.fc2_weight), 0.0f, b.dact, nullptr);
  cuda::gemm(P, F32, true, false, h, F, T, 1.0f, dy, a.act, reg.grad_beta(*p.fc2_weight), grad(p.fc2_weight), nullptr);
  cuda::profile_mark("bwd linears");
  cuda::swiglu_backward(P, a.gate_up, b.dact, b.dgate_up, T, F, nullptr);
  cuda::profile_mark("bwd swiglu");
  cuda::gemm(P, P, false, false, T, h, 2 * F, 1.0f, b.dgate_up, wc(*p.fc1_weight), 0.0f, b.dxn, nullptr);
  cuda::gemm(P, F32, true, false, 2 * F, h, T, 1.0f, b.dgate_up, a.xn_mlp, reg.grad_beta(*p.fc1_weight),
             grad(p.fc1_weight), nullptr);
  cuda::profile_mark("bwd linears");
  tp_all_reduce(b.dxn, T * h);  // column-parallel input gradient
  cuda::rmsnorm_backward(P, a.x_mid, value(p.mlp_norm), a.rstd_mlp, b.dxn, dy, b.dx_mid, zeroed(p.mlp_norm), T, h,
                         nullptr);  // + dy: the residual branch
  cuda::profile_mark("bwd rmsnorm + residual");

  // Attention block: x_mid = x_in + proj(attention(qkv_forward(qkv(norm(x_in))))).
  cuda::gemm(P, P, false, false, T, H * d, h, 1.0f, b.dx_mid, wc(*p.proj_weight), 0.0f, b.dattn, nullptr);
  cuda::gemm(P, F32, true, false, h, H * d, T, 1.0f, b.dx_mid, a.attn_out, reg.grad_beta(*p.proj_weight),
             grad(p.proj_weight), nullptr);
  cuda::profile_mark("bwd linears");
  cuda::attention_backward(P, a.q, a.k, a.v, a.attn_out, a.lse, b.dattn, b.cu_seqlens, T, B_, max_seqlen_, H, G, d,
                           1.0f / std::sqrt(static_cast<float>(d)), b.dq, b.dk, b.dv, nullptr);
  cuda::profile_mark("bwd attention");
  // QK-norm weights act on every head but a TP rank sees only its own: this batch's gradient goes to a scratch
  // pair, is summed over the group, then joins the accumulated gradient.
  const bool qk_norm_partial = p.q_norm && !tp_.single();
  float* dq_norm = qk_norm_partial ? b.qk_norm_dw : zeroed(p.q_norm);
  float* dk_norm = qk_norm_partial ? b.qk_norm_dw + d : zeroed(p.k_norm);
  if (qk_norm_partial) cuda::fill_bytes(b.qk_norm_dw, 0, 2 * d * sizeof(float));
  cuda::qkv_backward(P, cuda::QkvShape{T, H, G, d}, a.qkv, value(p.qkv_bias), value(p.q_norm), value(p.k_norm), eps,
                     b.cos, b.sin, b.dq, b.dk, b.dv, b.dqkv, zeroed(p.qkv_bias), dq_norm, dk_norm, nullptr);
  cuda::profile_mark("bwd qkv (bias, norm, rope)");
  if (qk_norm_partial) {
    tp_comm_->all_reduce_sum(b.qk_norm_dw, 2 * d);
    cuda::add_inplace(F32, zeroed(p.q_norm), b.qk_norm_dw, d, nullptr);
    cuda::add_inplace(F32, zeroed(p.k_norm), b.qk_norm_dw + d, d, nullptr);
  }
  cuda::gemm(P, P, false, false, T, h, QKV, 1.0f, b.dqkv, wc(*p.qkv_weight), 0.0f, b.dxn, nullptr);
  cuda::gemm(P, F32, true, false, QKV, h, T, 1.0f, b.dqkv, a.xn_attn, reg.grad_beta(*p.qkv_weight),
             grad(p.qkv_weight), nullptr);
  cuda::profile_mark("bwd linears");
  tp_all_reduce(b.dxn, T * h);  // column-parallel input gradient
  cuda::rmsnorm_backward(P, a.x_in, value(p.input_norm), a.rstd_attn, b.dxn, b.dx_mid, dx, zeroed(p.input_norm), T,
                         h, nullptr);  // + dx_mid: the residual branch
  cuda::profile_mark("bwd rmsnorm + residual");
}

void CudaDecoder::backward(const Tensor& dlogprobs, const Tensor& dentropy) {
  SLIME_CHECK(valid_, "backward() needs a preceding forward() with the activations kept");
  const ModelConfig& m = config_;
  Buffers& b = *buf_;
  const int64_t T = T_, h = m.hidden_size, V = local_vocab();
  const Precision P = options_.precision;
  SLIME_CHECK(dlogprobs.numel() == T, "backward: dlogprobs has ", dlogprobs.numel(), " values for ", T, " tokens");
  SLIME_CHECK(!dentropy.defined() || dentropy.numel() == T, "backward: dentropy has ", dentropy.numel(),
              " values for ", T, " tokens");
  SLIME_CHECK(!dentropy.defined() || with_entropy_, "backward: entropy gradient given but forward() computed none");
  cuda::copy_to_device(b.dlogprob, dlogprobs.to_f32().raw(), T * 4);
  if (dentropy.defined()) cuda::copy_to_device(b.dentropy, dentropy.to_f32().raw(), T * 4);
  cuda::profile_mark("host: forward -> backward");

  // LM head, chunk by chunk: recompute the logits (unless the batch was one chunk and they are still there), turn
  // d(logprob, entropy) into dlogits, then into dhidden and dW.
  Param& out = w_.output_weight();
  void* dhidden = b.dres_a;
  const int64_t chunk = lm_head_chunk_rows();
  for (int64_t r0 = 0; r0 < T; r0 += chunk) {
    const int64_t rows = std::min(chunk, T - r0);
    if (!logits_kept_) lm_head_logits(r0, rows);
    cuda::logprob_backward(P, cuda::LogitsShape{rows, V, m.vocab_size, vocab_begin()}, b.logits, b.targets + r0,
                           inv_temperature_, b.lse + r0, b.mean_z + r0, b.dlogprob + r0,
                           dentropy.defined() ? b.dentropy + r0 : nullptr, b.dlogits, nullptr);
    cuda::gemm(P, P, false, false, rows, h, V, 1.0f, b.dlogits, wc(out),
               0.0f, static_cast<char*>(dhidden) + act_bytes(r0 * h), nullptr);
    cuda::gemm(P, Precision::F32, true, false, V, h, rows, 1.0f, b.dlogits,
               static_cast<const char*>(b.hidden) + act_bytes(r0 * h), w_.registry.grad_beta(out),
               out.grad.data<float>(), nullptr);
    cuda::profile_mark("lm head + logprob");
  }
  tp_all_reduce(dhidden, T * h);  // each rank saw only its vocab slice
  void* dx = b.dres_b;
  cuda::rmsnorm_backward(P, b.x_final, w_.final_norm->value.data<float>(), b.rstd_final, dhidden, nullptr, dx,
                         w_.registry.grad_zeroed(w_.final_norm), T, h, nullptr);
  cuda::profile_mark("bwd rmsnorm + residual");
  for (int64_t l = m.num_layers - 1; l >= 0; --l) {
    void* next = dx == b.dres_a ? b.dres_b : b.dres_a;
    layer_backward(l, dx, next);
    dx = next;
  }
  cuda::embedding_backward(P, b.tokens, b.order, b.unique_starts, U_, dx, vocab_begin(), V, h,
                           w_.registry.grad_zeroed(w_.embedding), nullptr);
  cuda::profile_mark("embedding");
  valid_ = false;
}

}  // namespace slime::model
