#include "rollout/cuda_model_runner.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "comm/mpi_utils.h"
#include "core/carver.h"
#include "core/error.h"
#include "core/log.h"
#include "kernels/cuda/device.h"
#include "model/cuda_decoder.h"

namespace slime::rollout {

using cuda::Precision;

namespace {

void check(cudaError_t err, const char* what) {
  SLIME_CHECK(err == cudaSuccess, "CUDA rollout engine: ", what, ": ", cudaGetErrorString(err));
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

int64_t next_pow2(int64_t x) {
  int64_t p = 1;
  while (p < x) p <<= 1;
  return p;
}

// Batch-size buckets of the decode graphs: 1, 2, 4, 8, then multiples of 16 up to the limit (and the limit itself).
int64_t graph_bucket(int64_t batch, int64_t limit) {
  int64_t b = batch <= 8 ? next_pow2(batch) : ceil_div(batch, 16) * 16;
  return std::min(b, limit);
}

}  // namespace

struct CudaModelRunner::Buffers {
  // Step inputs, uploaded in one copy: ints (tokens, positions, slots [T], cu_seqlens [B + 1], context_lens [B],
  // block tables [B, stride], sample rows [S]) then the sampling rows [S].
  int* ints = nullptr;
  int *tokens = nullptr, *positions = nullptr, *slots = nullptr, *cu_seqlens = nullptr, *context_lens = nullptr;
  int *block_tables = nullptr, *sample_rows = nullptr;
  cuda::SamplingRow* sampling = nullptr;
  float *cos = nullptr, *sin = nullptr;  // [T, d/2]
  float* rstd = nullptr;                 // [max(T, S)]
  void *x = nullptr, *xn = nullptr;      // [T, h] residual stream and normed input
  void* qkv = nullptr;                   // [T, (H + 2G) d]
  void *q = nullptr, *k = nullptr, *v = nullptr, *attn = nullptr;
  float* lse = nullptr;                  // [H, T] (flash attention)
  void *gate_up = nullptr, *act = nullptr;
  void *xs = nullptr, *hs = nullptr;     // [S, h] sampling rows of x, after the final norm
  float* logits = nullptr;               // [S, V]
  float* logits_slices = nullptr;        // tensor parallel: [TP, S, V / TP], every rank's slice (all-gathered)
  int* out_tokens = nullptr;             // [S], followed by out_logprobs [S] (one download)
  float* out_logprobs = nullptr;
  void* workspace = nullptr;             // paged attention
  size_t workspace_bytes = 0;
  size_t capacity = 0;                   // arena bytes these pointers were planned within
};

struct CudaModelRunner::Step : Shape {
  bool fresh = false;                    // every chunk starts its sequence: flash attention over the chunks
  bool rows_identity = false;            // the sampling rows are rows 0..S-1 (decode): no gather
  std::vector<int> ints;                 // Buffers::ints' layout
  std::vector<cuda::SamplingRow> sampling;
};

struct CudaModelRunner::Graph {
  cudaGraphExec_t exec = nullptr;
  ~Graph() {
    if (exec) cudaGraphExecDestroy(exec);
  }
};

CudaModelRunner::CudaModelRunner(model::Decoder& model, EngineConfig& config)
    : model_(model), mc_(model.config()), tp_(model.tp()) {
  SLIME_CHECK(model_.head() == model::Head::LanguageModel, "rollout engine: the model has no LM head");
  const bool bf16_kernels = mc_.head_dim == 64 || mc_.head_dim == 128;
  precision_ = config.cuda_fp32 || !bf16_kernels ? Precision::F32 : Precision::BF16;
  block_size_ = config.block_size;
  max_context_ = config.max_context_len;
  SLIME_CHECK(max_context_ > 0, "rollout engine: no context length (EngineConfig::max_context_len)");
  graph_max_bs_ = std::min(config.cuda_graph_max_bs, config.max_running);
  device_ = cuda::init_local_device();
  check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "stream");
  if (!tp_.single()) {
    // Tensor parallel inside the engine: this rank's shard; the activations' collectives on the step's stream. CUDA
    // graphs need them capturable (NCCL); ranks sharing a GPU exchange through host memory, so they run eagerly.
    tp_comm_ = std::make_unique<comm::DeviceComm>(tp_, "rollout engine tensor-parallel");
    if (!tp_comm_->capturable() && graph_max_bs_ > 0) {
      if (tp_.rank == 0)
        SLIME_INFO("rollout engine: tensor-parallel ranks share a GPU (host-staged collectives): no CUDA graphs");
      graph_max_bs_ = 0;
    }
  }

  // Weights: one flat copy in the compute precision (the host registry's offsets); in bf16 mode the 1-D
  // parameters (norm weights, biases) also in fp32, which the kernels read.
  const model::ParamRegistry& reg = model_.params();
  weights_ = Tensor::empty({reg.numel()}, precision_ == Precision::BF16 ? DType::BF16 : DType::F32, Device::CUDA);
  if (precision_ == Precision::BF16) {
    int64_t n = 0;
    for (const model::Param& p : reg.all()) {
      if (p.global_shape.size() != 1) continue;
      vector_offset_[p.flat_offset] = n;
      n += p.value.numel();
    }
    vectors_ = Tensor::empty({std::max<int64_t>(n, 1)}, DType::F32, Device::CUDA);
    sync_view_.vectors = vectors_.data<float>();
    sync_view_.vector_numel = n;
  }
  sync_view_.bf16 = precision_ == Precision::BF16;
  sync_view_.flat = weights_.raw();
  sync_view_.numel = weights_.numel();
  sync_view_.layout = &model_.params();
  reload_weights();

  model::rope_tables_on_device(mc_, max_context_, &rope_cos_, &rope_sin_);

  // Step buffers for the largest step the scheduler makes: a prefill of max_batched_tokens, or a decode of
  // max_running sequences at the longest context (the graphs' block-table stride).
  buf_ = std::make_unique<Buffers>();
  const int64_t R = config.max_running, stride = ceil_div(next_pow2(max_context_), block_size_);
  const Shape prefill{std::max(config.max_batched_tokens, R), R, R, stride, next_pow2(max_context_),
                      config.max_batched_tokens};
  size_t need = 0;
  Buffers measure;
  for (const Shape& shape : {prefill, Shape{R, R, R, stride, next_pow2(max_context_), 1},
                             Shape{1, 1, 1, stride, next_pow2(max_context_), 1}})
    need = std::max(need, plan(nullptr, shape, measure));
  ensure_arena(prefill, need);
  size_kv_cache(config);
  check(cudaMallocHost(&pinned_out_, static_cast<size_t>(config.max_running) * 8 + 64), "pinned output buffer");
  SLIME_INFO("rollout engine on ", cuda::device_name(device_), ": ",
             precision_ == Precision::BF16 ? "bf16" : "fp32", " weights ", weights_.nbytes() >> 20, " MiB, KV cache ",
             num_blocks_, " blocks of ", block_size_, " tokens (", kv_cache_bytes() >> 20, " MiB), step buffers ",
             arena_.nbytes() >> 20, " MiB, CUDA graphs up to batch ", graph_max_bs_);
}

CudaModelRunner::~CudaModelRunner() {
  graphs_.clear();
  if (pinned_host_) cuda::unpin_host_memory(const_cast<float*>(pinned_host_));
  if (pinned_ints_) cudaFreeHost(pinned_ints_);
  if (pinned_out_) cudaFreeHost(pinned_out_);
  if (stream_) cudaStreamDestroy(stream_);
}

void CudaModelRunner::size_kv_cache(EngineConfig& config) {
  const int64_t elem = precision_ == Precision::BF16 ? 2 : 4;
  const int64_t L = mc_.num_layers, G = local_groups(), d = mc_.head_dim;
  const int64_t per_block = 2 * L * block_size_ * G * d * elem;
  if (config.num_blocks <= 0) {
    size_t free = 0, total = 0;
    check(cudaMemGetInfo(&free, &total), "cudaMemGetInfo");
    // SGLang: the static share (weights + KV pool) is fraction * total; what is free beyond the rest is the pool.
    // 256 MiB stay for cuBLAS, the CUDA graphs and the sampler's temporaries.
    const double keep = static_cast<double>(total) * (1.0 - config.mem_fraction_static) + double(256 << 20);
    const double bytes = static_cast<double>(free) - keep;
    config.num_blocks = bytes > 0 ? static_cast<int64_t>(bytes / static_cast<double>(per_block)) - 1 : 0;
    // Tensor parallel: the block ids are the engine's (TP rank 0's), so every rank takes the smallest pool.
    if (!tp_.single())
      mpiCheck(MPI_Allreduce(MPI_IN_PLACE, &config.num_blocks, 1, MPI_INT64_T, MPI_MIN, tp_.comm));
    SLIME_CHECK(config.num_blocks > 0, "rollout engine: --sglang-mem-fraction-static ", config.mem_fraction_static,
                " leaves no device memory for the KV cache (", free >> 20, " MiB free of ", total >> 20,
                " MiB after the weights and step buffers); raise it or set --sglang-max-total-tokens");
  }
  num_blocks_ = config.num_blocks;
  const int64_t slots = (num_blocks_ + 1) * block_size_;  // + the padding block of graph batches
  const DType dt = precision_ == Precision::BF16 ? DType::BF16 : DType::F32;
  k_cache_ = Tensor::empty({L, slots, G, d}, dt, Device::CUDA);  // this rank's KV heads
  v_cache_ = Tensor::empty({L, slots, G, d}, dt, Device::CUDA);
  // Zero, so that padding rows attend to finite values.
  check(cudaMemset(k_cache_.raw(), 0, k_cache_.nbytes()), "KV cache");
  check(cudaMemset(v_cache_.raw(), 0, v_cache_.nbytes()), "KV cache");
  cuda::synchronize();
}

const model::DeviceWeights* CudaModelRunner::device_weights_for_sync() {
  check(cudaStreamSynchronize(stream_), "rollout engine step");  // no step may still read the weights
  return &sync_view_;
}

void CudaModelRunner::reload_weights() {
  const model::ParamRegistry& reg = model_.params();
  const float* host = reg.flat_values().data<float>();
  const int64_t n = reg.numel();
  const size_t bytes = static_cast<size_t>(n) * 4;
  check(cudaStreamSynchronize(stream_), "rollout engine step");  // no step may still read the weights
  // The host buffer is page-locked once (where the system allows it): copies then run at the link's speed instead
  // of through the driver's pageable staging.
  if (pinned_host_ != host) {
    if (pinned_host_) cuda::unpin_host_memory(const_cast<float*>(pinned_host_));
    pinned_host_ = cuda::pin_host_memory(const_cast<float*>(host), bytes) ? host : nullptr;
  }
  if (precision_ == Precision::F32) {
    check(cudaMemcpyAsync(weights_.raw(), host, bytes, cudaMemcpyHostToDevice, stream_), "weight upload");
  } else {
    // fp32 chunks through a device staging buffer, rounded on the device (cast_from_f32: the trainer's rounding);
    // copy and cast are ordered on the stream.
    const int64_t chunk = std::min<int64_t>(n, int64_t{32} << 20);
    Tensor staging = Tensor::empty({chunk}, DType::F32, Device::CUDA);
    for (int64_t off = 0; off < n; off += chunk) {
      const int64_t m = std::min(chunk, n - off);
      check(cudaMemcpyAsync(staging.raw(), host + off, static_cast<size_t>(m) * 4, cudaMemcpyHostToDevice, stream_),
            "weight upload");
      cuda::cast_from_f32(Precision::BF16, staging.data<float>(), static_cast<char*>(weights_.raw()) + off * 2, m,
                          stream_);
    }
    std::vector<float> vectors(static_cast<size_t>(vectors_.numel()));
    for (const model::Param& p : reg.all()) {
      const auto at = vector_offset_.find(p.flat_offset);
      if (at != vector_offset_.end() && p.global_shape.size() == 1)
        std::memcpy(vectors.data() + at->second, host + p.flat_offset, static_cast<size_t>(p.value.numel()) * 4);
    }
    check(cudaStreamSynchronize(stream_), "weight upload");  // staging is freed below
    cuda::copy_to_device(vectors_.raw(), vectors.data(), vectors.size() * 4);
  }
  check(cudaStreamSynchronize(stream_), "weight upload");
}

const void* CudaModelRunner::w(const model::Param* p) const {
  const size_t elem = precision_ == Precision::BF16 ? 2 : 4;
  return static_cast<const char*>(weights_.raw()) + static_cast<size_t>(p->flat_offset) * elem;
}

const float* CudaModelRunner::vec(const model::Param* p) const {
  if (!p) return nullptr;
  if (precision_ == Precision::F32) return static_cast<const float*>(w(p));
  return vectors_.data<float>() + vector_offset_.at(p->flat_offset);
}

size_t CudaModelRunner::plan(char* base, const Shape& shape, Buffers& b) const {
  const int64_t T = shape.T, B = shape.B, S = shape.S, stride = shape.stride;
  const int64_t h = mc_.hidden_size, H = local_heads(), G = local_groups(), d = mc_.head_dim;
  const int64_t F = local_ffn(), QKV = (H + 2 * G) * d, V = mc_.padded_vocab_size;
  const size_t e = precision_ == Precision::BF16 ? 2 : 4;
  Carver c(base);
  const int64_t ints = 3 * T + (B + 1) + B + B * stride + S;
  b.ints = c.take<int>(static_cast<size_t>(ints + 4 * S) * 4);
  if (base) {
    b.tokens = b.ints;
    b.positions = b.tokens + T;
    b.slots = b.positions + T;
    b.cu_seqlens = b.slots + T;
    b.context_lens = b.cu_seqlens + B + 1;
    b.block_tables = b.context_lens + B;
    b.sample_rows = b.block_tables + B * stride;
    b.sampling = reinterpret_cast<cuda::SamplingRow*>(b.sample_rows + S);
  }
  b.cos = c.take<float>(T * (d / 2) * 4);
  b.sin = c.take<float>(T * (d / 2) * 4);
  b.rstd = c.take<float>(std::max(T, S) * 4);
  b.x = c.take(T * h * e);
  b.xn = c.take(T * h * e);
  b.qkv = c.take(T * QKV * e);
  b.q = c.take(T * H * d * e);
  b.k = c.take(T * G * d * e);
  b.v = c.take(T * G * d * e);
  b.attn = c.take(T * H * d * e);
  b.lse = c.take<float>(H * T * 4);
  b.gate_up = c.take(T * 2 * F * e);
  b.act = c.take(T * F * e);
  b.xs = c.take(S * h * e);
  b.hs = c.take(S * h * e);
  b.logits = c.take<float>(S * V * 4);
  b.logits_slices = tp_.single() ? nullptr : c.take<float>(S * V * 4);
  b.out_tokens = c.take<int>(S * 8);
  b.out_logprobs = base ? reinterpret_cast<float*>(b.out_tokens + S) : nullptr;
  cuda::PagedBatch bounds;
  bounds.sequences = B;
  bounds.tokens = T;
  bounds.max_blocks = stride;
  bounds.block_size = block_size_;
  bounds.max_context = shape.max_context;
  bounds.max_new_tokens = shape.max_new;
  b.workspace_bytes = cuda::paged_attention_workspace_bytes(bounds, H, d);
  b.workspace = c.take(b.workspace_bytes);
  return c.used();
}

void CudaModelRunner::ensure_arena(const Shape& shape, size_t at_least) {
  Buffers measure;
  const size_t need = std::max(plan(nullptr, shape, measure), at_least);
  if (!arena_.defined() || arena_.nbytes() < need) {
    graphs_.clear();  // they point into the old arena
    cuda::synchronize();
    arena_ = Tensor();
    arena_ = Tensor::empty({static_cast<int64_t>(need)}, DType::U8, Device::CUDA);
  }
  plan(static_cast<char*>(arena_.raw()), shape, *buf_);
}

CudaModelRunner::Step CudaModelRunner::describe(const std::vector<ScheduledChunk>& chunks, int64_t pad_to,
                                                int64_t context_bound) const {
  Step s;
  const int64_t real = static_cast<int64_t>(chunks.size());
  s.B = std::max(real, pad_to);
  int64_t max_ctx = 0;
  s.fresh = true;
  for (const ScheduledChunk& c : chunks) {
    s.T += c.count;
    s.S += c.samples ? 1 : 0;
    s.max_new = std::max(s.max_new, c.count);
    max_ctx = std::max(max_ctx, c.start + c.count);
    s.stride = std::max<int64_t>(s.stride, static_cast<int64_t>(c.seq->block_table.size()));
    s.fresh = s.fresh && c.start == 0;
  }
  s.T += s.B - real;  // padding rows: one token each, sampling
  s.S += s.B - real;
  s.max_context = std::max(max_ctx, context_bound);
  s.stride = std::max(s.stride, ceil_div(s.max_context, block_size_));
  s.rows_identity = s.S == s.T;

  const int64_t T = s.T, B = s.B, S = s.S, stride = s.stride;
  s.ints.assign(3 * T + (B + 1) + B + B * stride + S, 0);
  int* tokens = s.ints.data();
  int* positions = tokens + T;
  int* slots = positions + T;
  int* cu = slots + T;
  int* ctx = cu + B + 1;
  int* tables = ctx + B;
  int* rows = tables + B * stride;
  const int pad_block = static_cast<int>(num_blocks_);
  std::fill(tables, tables + B * stride, pad_block);
  int64_t t = 0, r = 0;
  for (int64_t i = 0; i < B; ++i) {
    cu[i] = static_cast<int>(t);
    if (i >= real) {  // a padding row: token 0 at position 0 of the padding block, sampled greedily
      tokens[t] = 0;
      positions[t] = 0;
      slots[t] = -1;  // kv_cache_write skips it; attention reads the (finite) padding block
      ctx[i] = 1;
      rows[r] = static_cast<int>(t);
      s.sampling.push_back(cuda::SamplingRow{0.0f, 0, 1.0f, 0.0f});
      ++t;
      ++r;
      continue;
    }
    const ScheduledChunk& c = chunks[i];
    const std::vector<int32_t>& table = c.seq->block_table;
    std::copy(table.begin(), table.end(), tables + i * stride);
    for (int64_t j = 0; j < c.count; ++j, ++t) {
      const int64_t p = c.start + j;
      tokens[t] = static_cast<int>(c.seq->tokens[p]);
      positions[t] = static_cast<int>(p);
      slots[t] = table[p / block_size_] * static_cast<int>(block_size_) + static_cast<int>(p % block_size_);
    }
    ctx[i] = static_cast<int>(c.start + c.count);
    if (c.samples) {
      rows[r++] = static_cast<int>(t - 1);
      float uniform = 0;
      const model::SamplingParams sp = next_token_sampling(*c.seq, &uniform);
      s.sampling.push_back(cuda::SamplingRow{sp.temperature, static_cast<int>(sp.top_k), sp.top_p, uniform});
    }
    s.rows_identity = s.rows_identity && (!c.samples || rows[r - 1] == r - 1);
  }
  cu[B] = static_cast<int>(t);
  return s;
}

void CudaModelRunner::upload(const Step& s) {
  const size_t bytes = (s.ints.size() + 4 * s.sampling.size()) * 4;
  if (pinned_ints_capacity_ < bytes) {
    if (pinned_ints_) cudaFreeHost(pinned_ints_);
    pinned_ints_capacity_ = std::max(bytes, 2 * pinned_ints_capacity_);
    check(cudaMallocHost(reinterpret_cast<void**>(&pinned_ints_), pinned_ints_capacity_), "pinned input buffer");
  }
  std::memcpy(pinned_ints_, s.ints.data(), s.ints.size() * 4);
  std::memcpy(pinned_ints_ + s.ints.size(), s.sampling.data(), s.sampling.size() * sizeof(cuda::SamplingRow));
  check(cudaMemcpyAsync(buf_->ints, pinned_ints_, bytes, cudaMemcpyHostToDevice, stream_), "step upload");
}

void CudaModelRunner::enqueue_forward(const Step& s) {
  const model::DecoderWeights& wt = model_.weights();
  const Buffers& b = *buf_;
  const Precision P = precision_;
  const int64_t T = s.T, S = s.S, h = mc_.hidden_size, H = local_heads(), G = local_groups(), d = mc_.head_dim;
  const int64_t F = local_ffn(), QKV = (H + 2 * G) * d, V = mc_.padded_vocab_size, Vl = V / tp_.size;
  // Row-parallel outputs onto the residual stream x: TP rank 0 adds its partial product to x, the others write
  // theirs over it, and the all-reduce sums them (x + the whole product).
  const float residual = tp_.rank == 0 ? 1.0f : 0.0f;
  const DType act = P == Precision::BF16 ? DType::BF16 : DType::F32;
  auto all_reduce = [&](void* data, int64_t n) {
    if (tp_comm_) tp_comm_->all_reduce_sum(data, n, act, stream_);
  };
  const size_t e = P == Precision::BF16 ? 2 : 4;
  const float eps = static_cast<float>(mc_.rms_norm_eps), scale = 1.0f / std::sqrt(static_cast<float>(d));
  const size_t layer_elems = static_cast<size_t>(k_cache_.numel() / mc_.num_layers);
  cuda::PagedBatch pb;
  pb.cu_seqlens = b.cu_seqlens;
  pb.context_lens = b.context_lens;
  pb.block_tables = b.block_tables;
  pb.sequences = s.B;
  pb.tokens = T;
  pb.max_blocks = s.stride;
  pb.block_size = block_size_;
  pb.max_context = s.max_context;
  pb.max_new_tokens = s.max_new;
  cudaStream_t st = stream_;

  // Vocab-parallel embedding: each rank's rows give its slice's tokens (zero rows elsewhere), the group sums.
  cuda::embedding_forward(P, b.tokens, T, w(wt.embedding), wt.embedding->blocks[0].global_start, Vl, h, b.x, st);
  all_reduce(b.x, T * h);
  cuda::gather_rows(rope_cos_.data<float>(), b.positions, T, d / 2, b.cos, st);
  cuda::gather_rows(rope_sin_.data<float>(), b.positions, T, d / 2, b.sin, st);
  for (int64_t l = 0; l < mc_.num_layers; ++l) {
    const model::DecoderWeights::Layer& p = wt.layers[l];
    void* kc = static_cast<char*>(k_cache_.raw()) + l * layer_elems * e;
    void* vc = static_cast<char*>(v_cache_.raw()) + l * layer_elems * e;
    cuda::rmsnorm_forward(P, b.x, vec(p.input_norm), eps, b.xn, b.rstd, T, h, st);
    cuda::gemm(P, P, false, true, T, QKV, h, 1.0f, b.xn, w(p.qkv_weight), 0.0f, b.qkv, st);
    cuda::qkv_forward(P, cuda::QkvShape{T, H, G, d}, b.qkv, vec(p.qkv_bias), vec(p.q_norm), vec(p.k_norm), eps, b.cos,
                      b.sin, b.q, b.k, b.v, st);
    cuda::kv_cache_write(P, b.k, b.v, b.slots, T, G, d, kc, vc, st);
    if (s.fresh) {  // every chunk starts its sequence: its own K/V are the whole context
      cuda::attention_forward(P, b.q, b.k, b.v, b.cu_seqlens, T, s.B, s.max_new, H, G, d, scale, b.attn, b.lse, st);
    } else {
      cuda::paged_attention_forward(P, pb, b.q, kc, vc, H, G, d, scale, b.attn, b.workspace, st);
    }
    cuda::gemm(P, P, false, true, T, h, H * d, 1.0f, b.attn, w(p.proj_weight), residual, b.x, st);  // x += proj
    all_reduce(b.x, T * h);
    cuda::rmsnorm_forward(P, b.x, vec(p.mlp_norm), eps, b.xn, b.rstd, T, h, st);
    cuda::gemm(P, P, false, true, T, 2 * F, h, 1.0f, b.xn, w(p.fc1_weight), 0.0f, b.gate_up, st);
    cuda::swiglu_forward(P, b.gate_up, b.act, T, F, st);
    cuda::gemm(P, P, false, true, T, h, F, 1.0f, b.act, w(p.fc2_weight), residual, b.x, st);  // x += fc2
    all_reduce(b.x, T * h);
  }
  // The sampling rows only: final norm, LM head, sampler (a prefill step whose chunks all stop short has none).
  if (S == 0) return;
  const void* xs = b.x;
  if (!s.rows_identity) {  // rows of h elements copied as (h * e / 4) floats
    cuda::gather_rows(static_cast<const float*>(b.x), b.sample_rows, S, static_cast<int64_t>(h * e / 4),
                      static_cast<float*>(b.xs), st);
    xs = b.xs;
  }
  cuda::rmsnorm_forward(P, xs, vec(wt.final_norm), eps, b.hs, b.rstd, S, h, st);
  if (tp_.single()) {
    cuda::gemm(P, Precision::F32, false, true, S, V, h, 1.0f, b.hs, w(&wt.output_weight()), 0.0f, b.logits, st);
  } else {
    // Vocab-parallel LM head: every rank's [S, V / TP] slice, all-gathered ([TP, S, V / TP]), then laid out as
    // [S, V] so that every rank samples the same tokens from the whole vocabulary.
    cuda::gemm(P, Precision::F32, false, true, S, Vl, h, 1.0f, b.hs, w(&wt.output_weight()), 0.0f,
               b.logits_slices + tp_.rank * S * Vl, st);
    tp_comm_->all_gather_inplace(b.logits_slices, S * Vl, st);
    for (int r = 0; r < tp_.size; ++r)
      cuda::copy_2d_async(b.logits + r * Vl, V * 4, b.logits_slices + r * S * Vl, Vl * 4, Vl * 4, S, st);
  }
  cuda::sample_tokens(b.logits, S, V, mc_.vocab_size, b.sampling, b.out_tokens, b.out_logprobs, st);
}

std::vector<SampledToken> CudaModelRunner::download(int64_t sampled, int64_t rows) {
  const size_t S = static_cast<size_t>(sampled);
  check(cudaMemcpyAsync(pinned_out_, buf_->out_tokens, S * 8, cudaMemcpyDeviceToHost, stream_), "step download");
  check(cudaStreamSynchronize(stream_), "rollout engine step");
  const int* tokens = static_cast<const int*>(pinned_out_);
  const float* logprobs = reinterpret_cast<const float*>(tokens + S);
  std::vector<SampledToken> out(static_cast<size_t>(rows));
  for (int64_t i = 0; i < rows; ++i) out[i] = SampledToken{tokens[i], logprobs[i]};
  return out;
}

std::vector<SampledToken> CudaModelRunner::run(const std::vector<ScheduledChunk>& chunks) {
  SLIME_CHECK(!chunks.empty(), "CUDA rollout engine: an empty step");
  const int64_t B = static_cast<int64_t>(chunks.size());
  bool decode = true;
  int64_t max_ctx = 0;
  for (const ScheduledChunk& c : chunks) {
    decode = decode && c.count == 1 && c.samples && c.start > 0;
    max_ctx = std::max(max_ctx, c.start + c.count);
  }
  if (decode && B <= graph_max_bs_) {
    const int64_t bucket = graph_bucket(B, graph_max_bs_);
    const int64_t ctx_bucket = std::max<int64_t>(256, next_pow2(max_ctx));
    const Step s = describe(chunks, bucket, ctx_bucket);
    ensure_arena(s);
    upload(s);
    const auto key = std::make_pair(bucket, ctx_bucket);
    auto found = graphs_.find(key);
    if (found != graphs_.end()) {
      check(cudaGraphLaunch(found->second->exec, stream_), "decode graph launch");
      ++stats_.graph_replays;
    } else {  // the first step of this bucket runs eagerly, then the same work is captured for the next ones
      enqueue_forward(s);
      ++stats_.eager_steps;
      cudaGraph_t graph = nullptr;
      check(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal), "graph capture");
      enqueue_forward(s);
      check(cudaStreamEndCapture(stream_, &graph), "graph capture");
      auto g = std::make_unique<Graph>();
      const cudaError_t err = cudaGraphInstantiate(&g->exec, graph, 0);
      cudaGraphDestroy(graph);
      check(err, "graph instantiation");
      graphs_[key] = std::move(g);
      ++stats_.graphs_captured;
    }
    return download(s.S, B);
  }
  const Step s = describe(chunks, 0, 0);
  ensure_arena(s);
  upload(s);
  enqueue_forward(s);
  ++stats_.eager_steps;
  return download(s.S, s.S);
}

}  // namespace slime::rollout
