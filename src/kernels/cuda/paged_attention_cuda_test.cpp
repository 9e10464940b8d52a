// GPU tests of paged_attention.cu (label `gpu`): kv_cache_write and paged_attention_forward against the CPU reference
// (kernels/cpu/paged_attention.h, head-major; operands are transposed on the host) on fresh random inputs. Each step
// mixes decode sequences (one new token) with prefill chunks over a cached prefix and fresh sequences; block tables
// are shuffled (non-contiguous), contexts are not multiples of the block size, every cache slot that no sequence
// owns holds NaN (so does every unused block-table entry's block), and out and the workspace are poisoned (NaN)
// before each launch: reading past a context, or a split that was not written, shows up as a non-finite output.
// Tolerances: fp32 relative error <= 1e-5, bf16 <= 1e-2 (the CPU gets the same bf16-rounded inputs); the cache after
// kv_cache_write must equal the CPU's exactly. A CUDA-graph case captures one step and replays it with new contents.
// With SLIME_PAGED_ATTENTION_BENCH=1 a last case times bf16 decode steps (Qwen2.5 shapes).
#include <catch2/catch.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <numeric>
#include <string>
#include <tuple>
#include <vector>

#include <cuda_runtime.h>

#include "core/dtype.h"
#include "core/rng.h"
#include "core/tensor.h"
#include "kernels/cpu/heads.h"
#include "kernels/cpu/paged_attention.h"
#include "kernels/cuda/cuda_test_util.h"
#include "kernels/cuda/device.h"
#include "kernels/cuda/ops.h"

using namespace slime;
using namespace slime::cuda_test;

namespace {

#define PA_CUDA(call)                                                                            \
  do {                                                                                           \
    cudaError_t err_ = (call);                                                                   \
    if (err_ != cudaSuccess) FAIL(#call << ": " << cudaGetErrorString(err_));                    \
  } while (0)

struct Seq {
  int64_t context, fresh;  // cached tokens after the step, new tokens of the step
};

struct Layout {
  int64_t heads, groups, head_dim, block_size;
};

// One step's host data, what the CPU reference and the GPU both read.
struct Step {
  int64_t T = 0;        // new tokens of the sequences
  int64_t rows = 0;     // rows of q, k, v (>= T; rows past T are padding whose slot is -1)
  int64_t max_blocks = 0, num_blocks = 0;
  std::vector<int> cu, ctx, tables, slots;
  std::vector<float> q, k, v;           // [rows, H, d], [rows, G, d]
  std::vector<float> k_cache, v_cache;  // [num_blocks * block_size, G, d] before the write: prefixes, else NaN
  cpu::PagedSequences seqs;
};

Step make_step(cuda::Precision precision, const Layout& L, const std::vector<Seq>& seqs, int64_t max_blocks,
               int64_t num_blocks, int64_t extra_rows, float q_scale) {
  const int64_t H = L.heads, G = L.groups, d = L.head_dim, bs = L.block_size;
  const int64_t B = static_cast<int64_t>(seqs.size());
  Step s;
  s.max_blocks = max_blocks;
  s.num_blocks = num_blocks;
  s.cu.assign(B + 1, 0);
  for (int64_t b = 0; b < B; ++b) s.cu[b + 1] = s.cu[b] + static_cast<int>(seqs[b].fresh);
  s.T = s.cu[B];
  s.rows = s.T + extra_rows;
  // shuffled block ids; the first unused one is the poison block that pads every table
  std::vector<int> ids(num_blocks);
  std::iota(ids.begin(), ids.end(), 0);
  Rng rng(fresh_seed());
  for (int64_t i = num_blocks - 1; i > 0; --i) std::swap(ids[i], ids[rng.next_u32() % (i + 1)]);
  int64_t next = 0;
  std::vector<int64_t> first(B);
  for (int64_t b = 0; b < B; ++b) {
    first[b] = next;
    next += (seqs[b].context + bs - 1) / bs;
  }
  REQUIRE(next < num_blocks);
  const int poison = ids[next];
  s.tables.assign(B * max_blocks, poison);
  s.seqs.block_tables.resize(B);
  for (int64_t b = 0; b < B; ++b) {
    const int64_t nb = (seqs[b].context + bs - 1) / bs;
    REQUIRE(nb <= max_blocks);
    for (int64_t j = 0; j < nb; ++j) {
      s.tables[b * max_blocks + j] = ids[first[b] + j];
      s.seqs.block_tables[b].push_back(ids[first[b] + j]);
    }
    s.ctx.push_back(static_cast<int>(seqs[b].context));
    s.seqs.context_lens.push_back(seqs[b].context);
  }
  for (int c : s.cu) s.seqs.cu_seqlens.push_back(c);
  s.slots.assign(s.rows, -1);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = 0; i < seqs[b].fresh; ++i) {
      const int64_t pos = seqs[b].context - seqs[b].fresh + i;
      s.seqs.positions.push_back(pos);
      s.slots[s.cu[b] + i] = static_cast<int>(s.seqs.slot_of(b, pos, bs));
    }
  s.q = as_stored(random_floats(s.rows * H * d, q_scale), precision);
  s.k = as_stored(random_floats(s.rows * G * d), precision);
  s.v = as_stored(random_floats(s.rows * G * d), precision);
  const int64_t slot_elems = num_blocks * bs * G * d;
  s.k_cache.assign(slot_elems, std::numeric_limits<float>::quiet_NaN());
  s.v_cache.assign(slot_elems, std::numeric_limits<float>::quiet_NaN());
  const std::vector<float> kr = as_stored(random_floats(slot_elems), precision);
  const std::vector<float> vr = as_stored(random_floats(slot_elems), precision);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t p = 0; p < seqs[b].context - seqs[b].fresh; ++p) {  // the cached prefix
      const int64_t at = s.seqs.slot_of(b, p, bs) * G * d;
      std::copy(kr.begin() + at, kr.begin() + at + G * d, s.k_cache.begin() + at);
      std::copy(vr.begin() + at, vr.begin() + at + G * d, s.v_cache.begin() + at);
    }
  return s;
}

std::vector<float> to_heads(const float* x, int64_t T, int64_t N, int64_t d) {
  std::vector<float> y(T * N * d);
  cpu::tokens_to_heads<float>(x, y.data(), T, N, d);
  return y;
}
std::vector<float> to_tokens(const std::vector<float>& x, int64_t T, int64_t N, int64_t d) {
  std::vector<float> y(x.size());
  cpu::heads_to_tokens<float>(x.data(), y.data(), T, N, d);
  return y;
}

// The CPU's out [T, H, d] (token-major) and the caches after the write.
std::vector<float> reference(const Step& s, const Layout& L, float scale, std::vector<float>* k_cache,
                             std::vector<float>* v_cache) {
  const int64_t H = L.heads, G = L.groups, d = L.head_dim, T = s.T;
  const cpu::PagedAttentionShape shape{T, H, G, d, L.block_size};
  *k_cache = s.k_cache;
  *v_cache = s.v_cache;
  const std::vector<float> kh = to_heads(s.k.data(), T, G, d), vh = to_heads(s.v.data(), T, G, d);
  cpu::kv_cache_write<float>(shape, s.seqs, kh.data(), vh.data(), k_cache->data(), v_cache->data());
  const std::vector<float> qh = to_heads(s.q.data(), T, H, d);
  std::vector<float> outh(T * H * d);
  cpu::paged_attention_forward<float>(shape, s.seqs, qh.data(), k_cache->data(), v_cache->data(), scale,
                                      outh.data());
  return to_tokens(outh, T, H, d);
}

void put(const Tensor& t, const std::vector<float>& values, cuda::Precision precision) {
  if (precision == cuda::Precision::BF16) {
    std::vector<uint16_t> bits(values.size());
    for (size_t i = 0; i < values.size(); ++i) bits[i] = f32_to_bf16(values[i]);
    cuda::copy_to_device(t.raw(), bits.data(), bits.size() * 2);
  } else {
    cuda::copy_to_device(t.raw(), values.data(), values.size() * 4);
  }
}
void put_ints(const Tensor& t, const std::vector<int>& values) {
  cuda::copy_to_device(t.raw(), values.data(), values.size() * sizeof(int));
}
Tensor ints(int64_t n) { return Tensor::empty({std::max<int64_t>(n, 1)}, DType::I32, Device::CUDA); }
Tensor values(int64_t n, cuda::Precision precision) {
  return Tensor::empty({std::max<int64_t>(n, 1)}, precision == cuda::Precision::BF16 ? DType::BF16 : DType::F32,
                       Device::CUDA);
}

// The device side of a step; the buffers are sized by the first step and later steps of the same shape are copied in.
struct DeviceStep {
  Tensor q, k, v, k_cache, v_cache, out, cu, ctx, tables, slots, workspace;
  size_t workspace_bytes = 0;
  cuda::PagedBatch batch;

  DeviceStep(const Step& s, const Layout& L, cuda::Precision precision, int64_t max_context, int64_t max_new) {
    const int64_t H = L.heads, G = L.groups, d = L.head_dim, B = static_cast<int64_t>(s.ctx.size());
    q = values(s.rows * H * d, precision);
    out = values(s.rows * H * d, precision);
    k = values(s.rows * G * d, precision);
    v = values(s.rows * G * d, precision);
    k_cache = values(static_cast<int64_t>(s.k_cache.size()), precision);
    v_cache = values(static_cast<int64_t>(s.v_cache.size()), precision);
    cu = ints(B + 1);
    ctx = ints(B);
    tables = ints(B * s.max_blocks);
    slots = ints(s.rows);
    batch.cu_seqlens = cu.data<int>();
    batch.context_lens = ctx.data<int>();
    batch.block_tables = tables.data<int>();
    batch.sequences = B;
    batch.tokens = s.rows;
    batch.max_blocks = s.max_blocks;
    batch.block_size = L.block_size;
    batch.max_context = max_context;
    batch.max_new_tokens = max_new;
    workspace_bytes = cuda::paged_attention_workspace_bytes(batch, H, d);
    workspace = Tensor::empty({static_cast<int64_t>(std::max<size_t>(workspace_bytes, 16))}, DType::U8, Device::CUDA);
  }
  void load(const Step& s, cuda::Precision precision) {
    put(q, s.q, precision);
    put(k, s.k, precision);
    put(v, s.v, precision);
    put(k_cache, s.k_cache, precision);
    put(v_cache, s.v_cache, precision);
    put_ints(cu, s.cu);
    put_ints(ctx, s.ctx);
    put_ints(tables, s.tables);
    put_ints(slots, s.slots);
    cuda::fill_bytes(out.raw(), 0xff, out.nbytes());
    cuda::fill_bytes(workspace.raw(), 0xff, workspace.nbytes());
    cuda::synchronize();  // the copies and fills run on the legacy stream; launches may use a non-blocking one
  }
  void launch(const Layout& L, cuda::Precision precision, float scale, cudaStream_t stream) {
    cuda::kv_cache_write(precision, k.raw(), v.raw(), slots.data<int>(), batch.tokens, L.groups, L.head_dim,
                         k_cache.raw(), v_cache.raw(), stream);
    cuda::paged_attention_forward(precision, batch, q.raw(), k_cache.raw(), v_cache.raw(), L.heads, L.groups,
                                  L.head_dim, scale, out.raw(), workspace_bytes ? workspace.raw() : nullptr, stream);
  }
};

// Cache slots that differ (NaN equals NaN: unowned slots must stay NaN).
int64_t cache_mismatches(const std::vector<float>& ours, const std::vector<float>& ref) {
  int64_t bad = 0;
  for (size_t i = 0; i < ref.size(); ++i)
    bad += !(ours[i] == ref[i] || (std::isnan(ours[i]) && std::isnan(ref[i])));
  return bad;
}

struct Errors {
  double out;
  int64_t cache;
};

// Checks the GPU's out (first T rows) and caches against the CPU for the step in `dev`.
Errors compare(const Step& s, const Layout& L, float scale, const DeviceStep& dev) {
  std::vector<float> kc, vc;
  const std::vector<float> ref = reference(s, L, scale, &kc, &vc);
  std::vector<float> out = download(dev.out);
  out.resize(ref.size());
  return {relative_error(out, ref), cache_mismatches(download(dev.k_cache), kc) +
                                        cache_mismatches(download(dev.v_cache), vc)};
}

struct Case {
  Layout layout;
  std::vector<Seq> seqs;
  int64_t extra_context = 0, extra_new = 0, extra_rows = 0;  // launch bounds past the data (as under CUDA graphs)
  float q_scale = 1.0f;
};

void run_case(cuda::Precision precision, const Case& c) {
  const bool bf16 = precision == cuda::Precision::BF16;
  const Layout& L = c.layout;
  int64_t max_ctx = 0, max_new = 0, blocks = 0;
  for (const Seq& q : c.seqs) {
    max_ctx = std::max(max_ctx, q.context);
    max_new = std::max(max_new, q.fresh);
    blocks += (q.context + L.block_size - 1) / L.block_size;
  }
  max_ctx += c.extra_context;
  max_new += c.extra_new;
  const int64_t max_blocks = (max_ctx + L.block_size - 1) / L.block_size + 1;
  const int64_t num_blocks = blocks + 2 + static_cast<int64_t>(c.seqs.size());
  const Step s = make_step(precision, L, c.seqs, max_blocks, num_blocks, c.extra_rows, c.q_scale);
  const float scale = 1.0f / std::sqrt(static_cast<float>(L.head_dim));
  DeviceStep dev(s, L, precision, max_ctx, max_new);
  dev.load(s, precision);
  dev.launch(L, precision, scale, nullptr);
  cuda::synchronize();
  const Errors e = compare(s, L, scale, dev);
  std::string seqs;
  for (const Seq& q : c.seqs)
    seqs += (seqs.empty() ? "" : ",") + std::to_string(q.context) + "/" + std::to_string(q.fresh);
  std::printf("paged attention %s H=%lld G=%lld d=%lld bs=%lld ctx/new {%s} bounds ctx %lld new %lld rows %lld "
              "(workspace %.2f MB): out %.2e, cache mismatches %lld\n",
              bf16 ? "bf16" : "fp32", static_cast<long long>(L.heads), static_cast<long long>(L.groups),
              static_cast<long long>(L.head_dim), static_cast<long long>(L.block_size), seqs.c_str(),
              static_cast<long long>(max_ctx), static_cast<long long>(max_new), static_cast<long long>(s.rows),
              dev.workspace_bytes / 1e6, e.out, static_cast<long long>(e.cache));
  INFO("paged attention " << (bf16 ? "bf16" : "fp32") << " H=" << L.heads << " G=" << L.groups
                          << " d=" << L.head_dim << " bs=" << L.block_size << " {" << seqs << "}");
  CHECK(e.out <= (bf16 ? 1e-2 : 1e-5));
  CHECK(e.cache == 0);
}

}  // namespace

TEST_CASE("paged attention and kv_cache_write match the CPU reference") {
  static GpuSetup setup;
  const Layout q05{14, 2, 64, 16}, q15{12, 2, 128, 16};  // Qwen2.5-0.5B and 1.5B heads
  const std::vector<Seq> mixed = {{1, 1}, {37, 1}, {300, 1}, {200, 57}, {150, 150}, {1000, 1}};
  const std::vector<Case> cases = {
      {q05, mixed},  // decode next to prefill chunks over a prefix and a fresh prompt
      {q15, mixed},
      {q05, {{1, 1}, {17, 1}, {64, 1}, {65, 1}, {1000, 1}, {3001, 1}}},  // decode, many splits
      {q15, {{4099, 1}, {129, 1}, {3333, 1}}, 0, 0, 0, 2.0f},           // long decode, sharper softmax
      {q15, {{3040, 40}, {5, 5}}},                                      // a chunk after a long prefix
      {q05, {{50, 1}, {20, 2}}},                                        // one split (no workspace)
      {q05, std::vector<Seq>(6, Seq{320, 300})},                        // many query tiles, one split
      {{14, 2, 64, 32}, {{33, 1}, {100, 3}, {700, 120}}},               // block size 32
      {{6, 6, 128, 8}, {{1, 1}, {90, 2}, {257, 1}, {30, 5}}},           // block size 8, H/G = 1, a few rows each
      {{12, 2, 128, 24}, {{50, 4}, {500, 1}, {77, 20}}},                // block size not a power of two
      {q05, {{100, 1}, {31, 3}, {2000, 1}}, 1500, 7, 3},                // launch bounds past the data
      {q15, {{1, 1}, {700, 1}}, 3000, 0, 2},
  };
  for (cuda::Precision precision : {cuda::Precision::F32, cuda::Precision::BF16})
    for (const Case& c : cases) run_case(precision, c);
  // head dims of the generic kernel (either precision)
  for (const Case& c : std::vector<Case>{{{4, 2, 96, 16}, {{1, 1}, {300, 7}, {40, 40}}},
                                         {{7, 1, 32, 16}, {{1, 1}, {129, 1}, {60, 13}}, 100, 3, 1}}) {
    run_case(cuda::Precision::F32, c);
    run_case(cuda::Precision::BF16, c);
  }
}

TEST_CASE("paged attention replays from a CUDA graph with new contents") {
  static GpuSetup setup;
  const Layout L{14, 2, 64, 16};
  const int64_t max_context = 2048, max_blocks = max_context / 16, B = 6;
  const int64_t num_blocks = B * max_blocks + 2;
  const float scale = 1.0f / std::sqrt(64.0f);
  std::vector<Seq> first, second;
  for (int64_t c : {100, 1500, 7, 2000, 640, 33}) first.push_back({c, 1});
  for (int64_t c : {2048, 1, 900, 64, 65, 1200}) second.push_back({c, 1});
  for (cuda::Precision precision : {cuda::Precision::F32, cuda::Precision::BF16}) {
    const bool bf16 = precision == cuda::Precision::BF16;
    const Step a = make_step(precision, L, first, max_blocks, num_blocks, 0, 1.0f);
    const Step b = make_step(precision, L, second, max_blocks, num_blocks, 0, 1.0f);
    DeviceStep dev(a, L, precision, max_context, 1);
    cudaStream_t stream;
    PA_CUDA(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    dev.load(a, precision);
    dev.launch(L, precision, scale, stream);  // eager first call (one-time kernel setup happens outside the capture)
    PA_CUDA(cudaStreamSynchronize(stream));
    cudaGraph_t graph;
    cudaGraphExec_t exec;
    PA_CUDA(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
    dev.launch(L, precision, scale, stream);
    PA_CUDA(cudaStreamEndCapture(stream, &graph));
    PA_CUDA(cudaGraphInstantiate(&exec, graph, 0));
    for (const Step* s : {&a, &b}) {
      dev.load(*s, precision);  // new contents, same bounds (and poisoned out and workspace)
      PA_CUDA(cudaGraphLaunch(exec, stream));
      PA_CUDA(cudaStreamSynchronize(stream));
      const Errors e = compare(*s, L, scale, dev);
      std::printf("paged attention %s CUDA graph replay, contexts %s: out %.2e, cache mismatches %lld\n",
                  bf16 ? "bf16" : "fp32", s == &a ? "{100,1500,7,2000,640,33}" : "{2048,1,900,64,65,1200}", e.out,
                  static_cast<long long>(e.cache));
      CHECK(e.out <= (bf16 ? 1e-2 : 1e-5));
      CHECK(e.cache == 0);
    }
    PA_CUDA(cudaGraphExecDestroy(exec));
    PA_CUDA(cudaGraphDestroy(graph));
    PA_CUDA(cudaStreamDestroy(stream));
  }
}

// SLIME_PAGED_ATTENTION_BENCH=1: bf16 decode steps (one new token per sequence, block size 16, shuffled blocks);
// bandwidth counts the K/V bytes read, 2 * B * ctx * G * d * 2.
TEST_CASE("paged attention decode bench") {
  const char* env = std::getenv("SLIME_PAGED_ATTENTION_BENCH");
  if (!env || std::strcmp(env, "1") != 0) return;
  static GpuSetup setup;
  const cuda::Precision bf16 = cuda::Precision::BF16;
  const int64_t bs = 16;
  cudaStream_t stream;
  PA_CUDA(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  cudaEvent_t e0, e1;
  PA_CUDA(cudaEventCreate(&e0));
  PA_CUDA(cudaEventCreate(&e1));
  for (auto [H, G, d] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{{12, 2, 128}, {14, 2, 64}}) {
    for (auto [B, ctx] : std::vector<std::pair<int64_t, int64_t>>{{1, 1024}, {64, 1024}, {256, 1024}, {64, 4096}}) {
      const int64_t max_blocks = ctx / bs, num_blocks = B * max_blocks, cache_elems = num_blocks * bs * G * d;
      Tensor tmp = Tensor::empty({cache_elems}, DType::F32, Device::CUDA);
      Tensor k_cache = values(cache_elems, bf16), v_cache = values(cache_elems, bf16);
      cuda::fill_normal(tmp.data<float>(), cache_elems, fresh_seed(), 0.0f, 1.0f, nullptr);
      cuda::cast_from_f32(bf16, tmp.data<float>(), k_cache.raw(), cache_elems, nullptr);
      cuda::fill_normal(tmp.data<float>(), cache_elems, fresh_seed(), 0.0f, 1.0f, nullptr);
      cuda::cast_from_f32(bf16, tmp.data<float>(), v_cache.raw(), cache_elems, nullptr);
      std::vector<int> ids(num_blocks);
      std::iota(ids.begin(), ids.end(), 0);
      Rng rng(fresh_seed());
      for (int64_t i = num_blocks - 1; i > 0; --i) std::swap(ids[i], ids[rng.next_u32() % (i + 1)]);
      std::vector<int> cu(B + 1), ctxs(B, static_cast<int>(ctx));
      std::iota(cu.begin(), cu.end(), 0);
      Tensor d_cu = ints(B + 1), d_ctx = ints(B), d_tables = ints(num_blocks);
      put_ints(d_cu, cu);
      put_ints(d_ctx, ctxs);
      put_ints(d_tables, ids);
      Tensor q = values(B * H * d, bf16), out = values(B * H * d, bf16);
      put(q, random_floats(B * H * d), bf16);
      cuda::PagedBatch batch;
      batch.cu_seqlens = d_cu.data<int>();
      batch.context_lens = d_ctx.data<int>();
      batch.block_tables = d_tables.data<int>();
      batch.sequences = B;
      batch.tokens = B;
      batch.max_blocks = max_blocks;
      batch.block_size = bs;
      batch.max_context = ctx;
      batch.max_new_tokens = 1;
      cuda::synchronize();
      const float scale = 1.0f / std::sqrt(static_cast<float>(d));
      const double bytes = 2.0 * B * ctx * G * d * 2;
      const size_t ws_bytes = cuda::paged_attention_workspace_bytes(batch, H, d);
      Tensor ws = Tensor::empty({static_cast<int64_t>(std::max<size_t>(ws_bytes, 16))}, DType::U8, Device::CUDA);
      auto call = [&] {
        cuda::paged_attention_forward(bf16, batch, q.raw(), k_cache.raw(), v_cache.raw(), H, G, d, scale, out.raw(),
                                      ws.raw(), stream);
      };
      for (int i = 0; i < 5; ++i) call();
      const int iters = 50;
      PA_CUDA(cudaEventRecord(e0, stream));
      for (int i = 0; i < iters; ++i) call();
      PA_CUDA(cudaEventRecord(e1, stream));
      PA_CUDA(cudaEventSynchronize(e1));
      float eager_ms = 0;
      PA_CUDA(cudaEventElapsedTime(&eager_ms, e0, e1));
      // the same calls replayed from one CUDA graph (no launch overhead between them)
      cudaGraph_t graph;
      cudaGraphExec_t exec;
      PA_CUDA(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
      for (int i = 0; i < iters; ++i) call();
      PA_CUDA(cudaStreamEndCapture(stream, &graph));
      PA_CUDA(cudaGraphInstantiate(&exec, graph, 0));
      PA_CUDA(cudaGraphLaunch(exec, stream));
      PA_CUDA(cudaEventRecord(e0, stream));
      PA_CUDA(cudaGraphLaunch(exec, stream));
      PA_CUDA(cudaEventRecord(e1, stream));
      PA_CUDA(cudaEventSynchronize(e1));
      float graph_ms = 0;
      PA_CUDA(cudaEventElapsedTime(&graph_ms, e0, e1));
      PA_CUDA(cudaGraphExecDestroy(exec));
      PA_CUDA(cudaGraphDestroy(graph));
      const double eager_us = 1e3 * eager_ms / iters, graph_us = 1e3 * graph_ms / iters;
      const double gbs = bytes / (graph_us * 1e-6) / 1e9;
      std::printf("paged attention decode bf16 H=%lld G=%lld d=%lld B=%lld ctx=%lld (workspace %.1f MB): %.2f us "
                  "per call (%.2f us eager), %.0f GB/s of K/V = %.2f of 3.0 TB/s\n",
                  static_cast<long long>(H), static_cast<long long>(G), static_cast<long long>(d),
                  static_cast<long long>(B), static_cast<long long>(ctx), ws_bytes / 1e6, graph_us,
                  eager_us, gbs, gbs / 3000.0);
      PA_CUDA(cudaStreamSynchronize(stream));
      const std::vector<float> o = download(out);
      CHECK(std::all_of(o.begin(), o.end(), [](float x) { return std::isfinite(x); }));
    }
  }
  PA_CUDA(cudaEventDestroy(e0));
  PA_CUDA(cudaEventDestroy(e1));
  PA_CUDA(cudaStreamDestroy(stream));
}
