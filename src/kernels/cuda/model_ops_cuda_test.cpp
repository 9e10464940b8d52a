// GPU tests of the model's fused ops (label `gpu`): the QKV split with bias, QK-norm and RoPE (qkv.cu), the
// vocab-parallel embedding (embedding.cu) and the log-probability / entropy statistics (logprob.cu), each against a
// reference composed from the cpu:: kernels, on fresh random inputs (the seed is printed), with outputs poisoned
// (NaN) before each launch and accumulated outputs starting from random values.
// Tolerances: fp32 paths relative error <= 1e-5, bf16 activations <= 1e-2; accumulated fp32 gradients <= 1e-5.
#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <vector>

#include "core/dtype.h"
#include "core/rng.h"
#include "core/tensor.h"
#include "kernels/cpu/embedding.h"
#include "kernels/cpu/heads.h"
#include "kernels/cpu/logprob.h"
#include "kernels/cpu/rmsnorm.h"
#include "kernels/cpu/rope.h"
#include "kernels/cuda/cuda_test_util.h"
#include "kernels/cuda/device.h"
#include "kernels/cuda/ops.h"

using namespace slime;

using namespace slime::cuda_test;

namespace {

Tensor upload_ints(const std::vector<int>& values) {
  Tensor t = Tensor::empty({static_cast<int64_t>(values.size())}, DType::I32, Device::CUDA);
  cuda::copy_to_device(t.raw(), values.data(), values.size() * sizeof(int));
  return t;
}

// A poisoned (0xFF: NaN) device buffer of n elements.
Tensor poisoned(int64_t n, cuda::Precision precision) {
  Tensor t = Tensor::empty({n}, precision == cuda::Precision::BF16 ? DType::BF16 : DType::F32, Device::CUDA);
  cuda::fill_bytes(t.raw(), 0xff, t.nbytes());
  return t;
}

std::vector<double> to_double(const std::vector<float>& v) { return std::vector<double>(v.begin(), v.end()); }
std::vector<float> to_float(const std::vector<double>& v) { return std::vector<float>(v.begin(), v.end()); }

int64_t count_bit_differences(const std::vector<float>& a, const std::vector<float>& b) {
  int64_t n = 0;
  for (size_t i = 0; i < a.size(); ++i) n += std::memcmp(&a[i], &b[i], sizeof(float)) != 0;
  return n;
}

// cos, sin [T, d/2] from random packed positions (cpu::rope_tables).
void random_rope_tables(int64_t tokens, int64_t head_dim, std::vector<float>* cos, std::vector<float>* sin) {
  const int64_t half = head_dim / 2;
  std::vector<float> inv_freq(half);
  for (int64_t i = 0; i < half; ++i) inv_freq[i] = std::pow(1e6f, -2.0f * i / head_dim);
  std::vector<int64_t> positions(tokens);
  Rng rng(fresh_seed());
  for (int64_t t = 0; t < tokens; ++t) positions[t] = static_cast<int64_t>(rng.below(32768));
  cos->resize(tokens * half);
  sin->resize(tokens * half);
  cpu::rope_tables<float>(inv_freq.data(), half, positions.data(), tokens, cos->data(), sin->data());
}

}  // namespace

TEST_CASE("qkv forward and backward (bias, QK-norm, RoPE, grouped layout) match the CPU reference") {
  static GpuSetup setup;
  struct Case {
    int64_t tokens, heads, groups, head_dim;
    bool bias, qk_norm;
  };
  const std::vector<Case> cases = {
      {1, 2, 1, 2, true, true},        // the smallest: one lane active (generic path, as head_dim 96)
      {37, 14, 2, 64, true, false},    // Qwen2.5 style GQA: bias, no QK-norm
      {333, 12, 2, 128, false, true},  // Qwen3 style: QK-norm, no bias
      {100, 4, 4, 96, true, true},     // MHA (G = H), head_dim with half a warp idle in the second pair
      {1000, 16, 8, 128, false, false},
      {2049, 14, 2, 64, true, true},   // chunks of 64 tokens plus one
      {50, 4, 2, 256, true, true},     // head_dim 256: 32 lanes a head vector (fp32) on the 16-byte path
  };
  for (cuda::Precision precision : {cuda::Precision::F32, cuda::Precision::BF16}) {
    for (const Case& c : cases) {
      const bool bf16 = precision == cuda::Precision::BF16;
      const double tol = bf16 ? 1e-2 : 1e-5;
      const int64_t T = c.tokens, H = c.heads, G = c.groups, d = c.head_dim;
      const int64_t width = (H + 2 * G) * d;
      const float eps = 1e-6f;
      const std::vector<float> qkv = as_stored(random_floats(T * width, 2.0f), precision);
      const std::vector<float> bias = random_floats(width);
      const std::vector<float> q_norm = random_floats(d), k_norm = random_floats(d);
      std::vector<float> cos, sin;
      random_rope_tables(T, d, &cos, &sin);
      const std::vector<float> dq = as_stored(random_floats(T * H * d), precision);
      const std::vector<float> dk = as_stored(random_floats(T * G * d), precision);
      const std::vector<float> dv = as_stored(random_floats(T * G * d), precision);
      const std::vector<float> dbias0 = random_floats(width), dq_norm0 = random_floats(d), dk_norm0 = random_floats(d);

      // Reference in double from the stored inputs: split (head-major), bias, RMSNorm, RoPE; then the adjoint.
      const std::vector<double> cos_d = to_double(cos), sin_d = to_double(sin);
      const std::vector<double> qn_d = to_double(q_norm), kn_d = to_double(k_norm);
      std::vector<double> xb = to_double(qkv);
      if (c.bias)
        for (int64_t t = 0; t < T; ++t)
          for (int64_t j = 0; j < width; ++j) xb[t * width + j] += bias[j];
      std::vector<double> q_raw(H * T * d), k_raw(G * T * d), v_hm(G * T * d);
      cpu::qkv_to_heads<double>(xb.data(), q_raw.data(), k_raw.data(), v_hm.data(), T, H, G, d);
      std::vector<double> q_hm = q_raw, k_hm = k_raw, q_rstd(H * T), k_rstd(G * T);
      if (c.qk_norm) {
        cpu::rmsnorm_forward<double>(q_raw.data(), qn_d.data(), eps, q_hm.data(), q_rstd.data(), H * T, d);
        cpu::rmsnorm_forward<double>(k_raw.data(), kn_d.data(), eps, k_hm.data(), k_rstd.data(), G * T, d);
      }
      cpu::rope_apply<double>(q_hm.data(), cos_d.data(), sin_d.data(), H, T, d, false);
      cpu::rope_apply<double>(k_hm.data(), cos_d.data(), sin_d.data(), G, T, d, false);
      std::vector<double> ref_q(T * H * d), ref_k(T * G * d), ref_v(T * G * d);
      cpu::heads_to_tokens<double>(q_hm.data(), ref_q.data(), T, H, d);
      cpu::heads_to_tokens<double>(k_hm.data(), ref_k.data(), T, G, d);
      cpu::heads_to_tokens<double>(v_hm.data(), ref_v.data(), T, G, d);

      std::vector<double> dq_hm(H * T * d), dk_hm(G * T * d), dv_hm(G * T * d);
      const std::vector<double> dq_d = to_double(dq), dk_d = to_double(dk), dv_d = to_double(dv);
      cpu::tokens_to_heads<double>(dq_d.data(), dq_hm.data(), T, H, d);
      cpu::tokens_to_heads<double>(dk_d.data(), dk_hm.data(), T, G, d);
      cpu::tokens_to_heads<double>(dv_d.data(), dv_hm.data(), T, G, d);
      cpu::rope_apply<double>(dq_hm.data(), cos_d.data(), sin_d.data(), H, T, d, true);
      cpu::rope_apply<double>(dk_hm.data(), cos_d.data(), sin_d.data(), G, T, d, true);
      std::vector<double> ref_dqn = to_double(dq_norm0), ref_dkn = to_double(dk_norm0);
      std::vector<double> dq_raw = dq_hm, dk_raw = dk_hm;
      if (c.qk_norm) {
        cpu::rmsnorm_backward<double>(q_raw.data(), qn_d.data(), q_rstd.data(), dq_hm.data(), dq_raw.data(),
                                      ref_dqn.data(), H * T, d);
        cpu::rmsnorm_backward<double>(k_raw.data(), kn_d.data(), k_rstd.data(), dk_hm.data(), dk_raw.data(),
                                      ref_dkn.data(), G * T, d);
      }
      std::vector<double> ref_dqkv(T * width);
      cpu::heads_to_qkv<double>(dq_raw.data(), dk_raw.data(), dv_hm.data(), ref_dqkv.data(), T, H, G, d);
      std::vector<double> ref_dbias = to_double(dbias0);
      for (int64_t t = 0; t < T; ++t)
        for (int64_t j = 0; j < width; ++j) ref_dbias[j] += ref_dqkv[t * width + j];

      // GPU.
      const cuda::QkvShape shape{T, H, G, d};
      Tensor d_qkv = upload(qkv, precision), d_bias = upload(bias, cuda::Precision::F32);
      Tensor d_qn = upload(q_norm, cuda::Precision::F32), d_kn = upload(k_norm, cuda::Precision::F32);
      Tensor d_cos = upload(cos, cuda::Precision::F32), d_sin = upload(sin, cuda::Precision::F32);
      const float* bias_p = c.bias ? d_bias.data<float>() : nullptr;
      const float* qn_p = c.qk_norm ? d_qn.data<float>() : nullptr;
      const float* kn_p = c.qk_norm ? d_kn.data<float>() : nullptr;
      Tensor d_q = poisoned(T * H * d, precision), d_k = poisoned(T * G * d, precision),
             d_v = poisoned(T * G * d, precision);
      cuda::qkv_forward(precision, shape, d_qkv.raw(), bias_p, qn_p, kn_p, eps, d_cos.data<float>(),
                        d_sin.data<float>(), d_q.raw(), d_k.raw(), d_v.raw(), nullptr);

      Tensor d_dq = upload(dq, precision), d_dk = upload(dk, precision), d_dv = upload(dv, precision);
      Tensor d_dqkv = poisoned(T * width, precision);
      // Two runs from the same accumulator values: the reductions must be bit-identical.
      Tensor d_dbias[2], d_dqn[2], d_dkn[2];
      for (int run = 0; run < 2; ++run) {
        d_dbias[run] = upload(dbias0, cuda::Precision::F32);
        d_dqn[run] = upload(dq_norm0, cuda::Precision::F32);
        d_dkn[run] = upload(dk_norm0, cuda::Precision::F32);
        if (run == 1) cuda::fill_bytes(d_dqkv.raw(), 0xff, d_dqkv.nbytes());
        cuda::qkv_backward(precision, shape, d_qkv.raw(), bias_p, qn_p, kn_p, eps, d_cos.data<float>(),
                           d_sin.data<float>(), d_dq.raw(), d_dk.raw(), d_dv.raw(), d_dqkv.raw(),
                           c.bias ? d_dbias[run].data<float>() : nullptr,
                           c.qk_norm ? d_dqn[run].data<float>() : nullptr,
                           c.qk_norm ? d_dkn[run].data<float>() : nullptr, nullptr);
      }
      cuda::synchronize();

      const double err_q = relative_error(download(d_q), to_float(ref_q));
      const double err_k = relative_error(download(d_k), to_float(ref_k));
      const double err_v = relative_error(download(d_v), to_float(ref_v));
      const double err_dqkv = relative_error(download(d_dqkv), to_float(ref_dqkv));
      const std::vector<float> dbias_gpu = download(d_dbias[0]), dqn_gpu = download(d_dqn[0]),
                               dkn_gpu = download(d_dkn[0]);
      // Without a bias / QK-norm the accumulators must be left alone.
      const double err_dbias = relative_error(dbias_gpu, c.bias ? to_float(ref_dbias) : dbias0);
      const double err_dqn = relative_error(dqn_gpu, c.qk_norm ? to_float(ref_dqn) : dq_norm0);
      const double err_dkn = relative_error(dkn_gpu, c.qk_norm ? to_float(ref_dkn) : dk_norm0);
      const int64_t nondeterministic = count_bit_differences(dbias_gpu, download(d_dbias[1])) +
                                       count_bit_differences(dqn_gpu, download(d_dqn[1])) +
                                       count_bit_differences(dkn_gpu, download(d_dkn[1]));
      std::printf(
          "qkv %s T=%lld H=%lld G=%lld d=%lld%s%s: q %.2e k %.2e v %.2e | dqkv %.2e dbias %.2e dq_norm %.2e "
          "dk_norm %.2e | %lld bits differ between runs\n",
          bf16 ? "bf16" : "fp32", static_cast<long long>(T), static_cast<long long>(H), static_cast<long long>(G),
          static_cast<long long>(d), c.bias ? " bias" : "", c.qk_norm ? " qk-norm" : "", err_q, err_k, err_v,
          err_dqkv, err_dbias, err_dqn, err_dkn, static_cast<long long>(nondeterministic));
      CHECK(err_q <= tol);
      CHECK(err_k <= tol);
      CHECK(err_v <= tol);
      CHECK(err_dqkv <= tol);
      CHECK(err_dbias <= 1e-5);  // fp32 sums of the unrounded dqkv, in either precision
      CHECK(err_dqn <= 1e-5);
      CHECK(err_dkn <= 1e-5);
      CHECK(nondeterministic == 0);
    }
  }
}

TEST_CASE("embedding_sort_tokens orders token indices by (id, index) and marks each id's run") {
  const std::vector<int> tokens = {5, 3, 5, 0, 3, 3, 9, 5};
  std::vector<int> order, starts;
  cuda::embedding_sort_tokens(tokens, &order, &starts);
  CHECK(order == std::vector<int>{3, 1, 4, 5, 0, 2, 7, 6});
  CHECK(starts == std::vector<int>{0, 1, 4, 7, 8});
  cuda::embedding_sort_tokens({}, &order, &starts);
  CHECK(order.empty());
  CHECK(starts == std::vector<int>{0});
}

TEST_CASE("vocab-parallel embedding forward and deterministic backward match the CPU reference") {
  static GpuSetup setup;
  struct Case {
    int64_t tokens, vocab_begin, vocab_rows, hidden, id_range;  // token ids drawn from [0, id_range)
  };
  const std::vector<Case> cases = {
      {1, 0, 5, 3, 5},
      {300, 0, 50, 896, 50},        // one rank: every id in the slice, many duplicates
      {1000, 100, 37, 129, 300},    // a middle slice, odd hidden (no 16-byte vectors)
      {4096, 64, 200, 1024, 400},   // 16-byte vector copies; backward over a column slice per block
      {7, 10, 5, 8, 10},            // no token in the slice: zero rows, dweight untouched
      {513, 0, 3, 2500, 6},         // few ids, long runs, hidden over several column blocks
  };
  for (cuda::Precision precision : {cuda::Precision::F32, cuda::Precision::BF16}) {
    for (const Case& c : cases) {
      const bool bf16 = precision == cuda::Precision::BF16;
      const int64_t T = c.tokens, h = c.hidden;
      Rng rng(fresh_seed());
      std::vector<int> tokens(T);
      for (int& id : tokens) id = static_cast<int>(rng.below(static_cast<uint64_t>(c.id_range)));
      const std::vector<float> weight = as_stored(random_floats(c.vocab_rows * h), precision);
      const std::vector<float> dx = as_stored(random_floats(T * h), precision);
      const std::vector<float> dweight0 = random_floats(c.vocab_rows * h);

      // Reference: the slice logic of model/decoder.cpp with cpu::embedding_forward/backward on the local ids.
      std::vector<float> ref_x(T * h, 0.0f), ref_dw = dweight0;
      std::vector<int64_t> local_ids;
      std::vector<float> local_dx;
      std::vector<int64_t> hit_rows;
      for (int64_t t = 0; t < T; ++t) {
        const int64_t local = tokens[t] - c.vocab_begin;
        if (local < 0 || local >= c.vocab_rows) continue;
        local_ids.push_back(local);
        hit_rows.push_back(t);
        local_dx.insert(local_dx.end(), dx.begin() + t * h, dx.begin() + (t + 1) * h);
      }
      const int64_t hits = static_cast<int64_t>(local_ids.size());
      std::vector<float> gathered(hits * h);
      if (hits > 0) {
        cpu::embedding_forward<float>(local_ids.data(), weight.data(), gathered.data(), hits, h);
        cpu::embedding_backward<float>(local_ids.data(), local_dx.data(), ref_dw.data(), hits, h);
      }
      for (int64_t k = 0; k < hits; ++k)
        std::memcpy(ref_x.data() + hit_rows[k] * h, gathered.data() + k * h, h * sizeof(float));

      std::vector<int> order, starts;
      cuda::embedding_sort_tokens(tokens, &order, &starts);
      const int64_t unique = static_cast<int64_t>(starts.size()) - 1;
      Tensor d_tokens = upload_ints(tokens), d_order = upload_ints(order), d_starts = upload_ints(starts);
      Tensor d_weight = upload(weight, precision), d_dx = upload(dx, precision);
      Tensor d_x = poisoned(T * h, precision);
      cuda::embedding_forward(precision, d_tokens.data<int32_t>(), T, d_weight.raw(), c.vocab_begin, c.vocab_rows, h,
                              d_x.raw(), nullptr);
      Tensor d_dw[2];
      for (int run = 0; run < 2; ++run) {
        d_dw[run] = upload(dweight0, cuda::Precision::F32);
        cuda::embedding_backward(precision, d_tokens.data<int32_t>(), d_order.data<int32_t>(),
                                 d_starts.data<int32_t>(), unique, d_dx.raw(), c.vocab_begin, c.vocab_rows, h,
                                 d_dw[run].data<float>(), nullptr);
      }
      cuda::synchronize();
      const std::vector<float> x = download(d_x), dw = download(d_dw[0]);
      const double err_x = relative_error(x, ref_x);
      const double err_dw = relative_error(dw, ref_dw);
      const int64_t x_bits = count_bit_differences(x, ref_x);
      const int64_t dw_bits = count_bit_differences(dw, ref_dw);
      const int64_t rerun_bits = count_bit_differences(dw, download(d_dw[1]));
      std::printf(
          "embedding %s T=%lld slice [%lld, %lld) h=%lld (%lld in slice, %lld distinct ids): x %.2e (%lld differ) "
          "dweight %.2e (%lld differ from the CPU, %lld between runs)\n",
          bf16 ? "bf16" : "fp32", static_cast<long long>(T), static_cast<long long>(c.vocab_begin),
          static_cast<long long>(c.vocab_begin + c.vocab_rows), static_cast<long long>(h),
          static_cast<long long>(hits), static_cast<long long>(unique), err_x, static_cast<long long>(x_bits), err_dw,
          static_cast<long long>(dw_bits), static_cast<long long>(rerun_bits));
      CHECK(x_bits == 0);  // a copy (or zeros)
      CHECK(err_dw <= 1e-6);
      CHECK(dw_bits == 0);  // the same fp32 additions in the same (token) order as the CPU loop
      CHECK(rerun_bits == 0);
    }
  }
}

TEST_CASE("logprob statistics, combine and backward match the CPU reference, single and vocab-parallel") {
  static GpuSetup setup;
  struct Case {
    int64_t rows, vocab, padded;  // logits [rows, padded] split into `ranks` slices of padded / ranks columns
    int ranks;
  };
  const std::vector<Case> cases = {
      {1, 37, 37, 1},            // odd columns: scalar path
      {1, 37, 40, 2},            // the second slice holds 17 tokens and 3 padding columns
      {4096, 1000, 1000, 1},     // float4 path
      {513, 1000, 1002, 2},      // odd slices (501 columns)
      {7, 100, 120, 3},          // the last slice: 20 tokens, 20 padding columns
      {5, 70, 120, 3},           // the last slice holds no token at all
      {33, 1001, 1004, 1},       // float4 path with a padded tail inside a vector
      {64, 151936, 151936, 1},   // Qwen's padded vocabulary on one GPU
      {64, 151643, 151936, 2},   // Qwen2.5's true vocabulary over two ranks (75968 columns each)
  };
  int variant = 0;
  for (const Case& c : cases) {
    const int64_t rows = c.rows, padded = c.padded, cols = padded / c.ranks;
    REQUIRE(cols * c.ranks == padded);
    const std::vector<float> logits = random_floats(rows * padded, 3.0f);
    Rng rng(fresh_seed());
    std::vector<int64_t> targets64(rows);
    std::vector<int> targets(rows);
    for (int64_t r = 0; r < rows; ++r) targets[r] = static_cast<int>(targets64[r] = rng.below(c.vocab));
    const std::vector<float> dlogprob = random_floats(rows), dentropy = random_floats(rows);
    Tensor d_targets = upload_ints(targets);
    // The slices as each rank holds them.
    std::vector<Tensor> d_slices;
    std::vector<std::vector<float>> slices(c.ranks);
    for (int k = 0; k < c.ranks; ++k) {
      slices[k].resize(rows * cols);
      for (int64_t r = 0; r < rows; ++r)
        std::memcpy(slices[k].data() + r * cols, logits.data() + r * padded + k * cols, cols * sizeof(float));
      d_slices.push_back(upload(slices[k], cuda::Precision::F32));
    }
    for (float temperature : {1.0f, 0.7f}) {
      const float inv_t = 1.0f / temperature;
      ++variant;
      const bool use_dlogprob = variant % 3 != 2, use_dentropy = variant % 3 != 1, want_entropy = variant % 4 != 3;

      const cpu::LogitsShape full{rows, padded, c.vocab, 0};
      std::vector<float> ref_lp(rows), ref_ent(rows), ref_lse(rows), ref_mean(rows);
      cpu::logprob_entropy_forward<float>(full, logits.data(), targets64.data(), inv_t, ref_lp.data(), ref_ent.data(),
                                          ref_lse.data(), ref_mean.data());
      std::vector<float> ref_dlogits(rows * padded);
      cpu::logprob_entropy_backward<float>(full, logits.data(), targets64.data(), inv_t, ref_lse.data(),
                                           ref_mean.data(), use_dlogprob ? dlogprob.data() : nullptr,
                                           use_dentropy ? dentropy.data() : nullptr, ref_dlogits.data());

      Tensor d_stats = poisoned(c.ranks * rows * 4, cuda::Precision::F32);
      for (int k = 0; k < c.ranks; ++k) {
        const cuda::LogitsShape s{rows, cols, c.vocab, k * cols};
        cuda::logprob_partial_stats(s, d_slices[k].data<float>(), d_targets.data<int32_t>(), inv_t,
                                    d_stats.data<float>() + k * rows * 4, nullptr);
      }
      Tensor d_lse = poisoned(rows, cuda::Precision::F32), d_mean = poisoned(rows, cuda::Precision::F32);
      Tensor d_lp = poisoned(rows, cuda::Precision::F32), d_ent = poisoned(rows, cuda::Precision::F32);
      cuda::logprob_combine(d_stats.data<float>(), c.ranks, rows, d_lse.data<float>(), d_mean.data<float>(),
                            d_lp.data<float>(), want_entropy ? d_ent.data<float>() : nullptr, nullptr);
      Tensor d_dlp = upload(dlogprob, cuda::Precision::F32), d_dent = upload(dentropy, cuda::Precision::F32);
      std::vector<std::vector<float>> grads[2];  // per output precision, per rank
      for (cuda::Precision out : {cuda::Precision::F32, cuda::Precision::BF16}) {
        for (int k = 0; k < c.ranks; ++k) {
          const cuda::LogitsShape s{rows, cols, c.vocab, k * cols};
          Tensor d_dlogits = poisoned(rows * cols, out);
          cuda::logprob_backward(out, s, d_slices[k].data<float>(), d_targets.data<int32_t>(), inv_t,
                                 d_lse.data<float>(), d_mean.data<float>(),
                                 use_dlogprob ? d_dlp.data<float>() : nullptr,
                                 use_dentropy ? d_dent.data<float>() : nullptr, d_dlogits.raw(), nullptr);
          grads[out == cuda::Precision::BF16].push_back(download(d_dlogits));
        }
      }
      cuda::synchronize();

      // Per-rank statistics against cpu::logprob_partial_max / partial_sums on the slice.
      const std::vector<float> stats = download(d_stats);
      double err_stats = 0;
      for (int k = 0; k < c.ranks; ++k) {
        const cpu::LogitsShape s{rows, cols, c.vocab, k * cols};
        std::vector<float> mx(rows);
        std::vector<double> se(rows), sez(rows), tz(rows);
        cpu::logprob_partial_max<float>(s, slices[k].data(), inv_t, mx.data());
        cpu::logprob_partial_sums<float>(s, slices[k].data(), targets64.data(), inv_t, mx.data(), se.data(),
                                         sez.data(), tz.data());
        std::vector<float> col[4];
        for (int64_t r = 0; r < rows; ++r)
          for (int q = 0; q < 4; ++q) col[q].push_back(stats[(k * rows + r) * 4 + q]);
        if (s.valid_columns() == 0) {  // no token on this rank: (-inf, 0, 0, 0)
          for (int64_t r = 0; r < rows; ++r) {
            CHECK(col[0][r] == -std::numeric_limits<float>::infinity());
            CHECK(col[1][r] == 0.0f);
            CHECK(col[2][r] == 0.0f);
            CHECK(col[3][r] == 0.0f);
          }
          continue;
        }
        std::vector<double> centred(rows);  // the GPU's third statistic is centred on the slice's max
        for (int64_t r = 0; r < rows; ++r) centred[r] = sez[r] - static_cast<double>(mx[r]) * se[r];
        err_stats = std::max({err_stats, relative_error(col[0], mx), relative_error(col[1], to_float(se)),
                              relative_error(col[2], to_float(centred)), relative_error(col[3], to_float(tz))});
      }
      const double err_lse = relative_error(download(d_lse), ref_lse);
      const double err_mean = relative_error(download(d_mean), ref_mean);
      const double err_lp = relative_error(download(d_lp), ref_lp);
      const double err_ent = want_entropy ? relative_error(download(d_ent), ref_ent) : 0.0;
      double err_d[2];
      for (int b = 0; b < 2; ++b) {
        std::vector<float> full_grad(rows * padded);
        for (int k = 0; k < c.ranks; ++k)
          for (int64_t r = 0; r < rows; ++r)
            std::memcpy(full_grad.data() + r * padded + k * cols, grads[b][k].data() + r * cols,
                        cols * sizeof(float));
        err_d[b] = relative_error(full_grad, ref_dlogits);
      }
      std::printf(
          "logprob [%lld, %lld] vocab %lld ranks %d T=%.1f%s%s: stats %.2e lse %.2e mean_z %.2e logprob %.2e "
          "entropy %.2e | dlogits fp32 %.2e bf16 %.2e\n",
          static_cast<long long>(rows), static_cast<long long>(padded), static_cast<long long>(c.vocab), c.ranks,
          temperature, use_dlogprob ? " dlogprob" : "", use_dentropy ? " dentropy" : "", err_stats, err_lse, err_mean,
          err_lp, err_ent, err_d[0], err_d[1]);
      CHECK(err_stats <= 1e-5);
      CHECK(err_lse <= 1e-5);
      CHECK(err_mean <= 1e-5);
      CHECK(err_lp <= 1e-5);
      CHECK(err_ent <= 1e-5);
      CHECK(err_d[0] <= 1e-5);
      CHECK(err_d[1] <= 1e-2);
    }
  }
}

TEST_CASE("model ops accept empty inputs without launching") {
  static GpuSetup setup;
  const cuda::QkvShape qkv_shape{0, 14, 2, 64};
  cuda::qkv_forward(cuda::Precision::BF16, qkv_shape, nullptr, nullptr, nullptr, nullptr, 1e-6f, nullptr, nullptr,
                    nullptr, nullptr, nullptr, nullptr);
  cuda::qkv_backward(cuda::Precision::BF16, qkv_shape, nullptr, nullptr, nullptr, nullptr, 1e-6f, nullptr, nullptr,
                     nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr);
  cuda::embedding_forward(cuda::Precision::F32, nullptr, 0, nullptr, 0, 10, 16, nullptr, nullptr);
  cuda::embedding_backward(cuda::Precision::F32, nullptr, nullptr, nullptr, 0, nullptr, 0, 10, 16, nullptr, nullptr);
  const cuda::LogitsShape s{0, 1000, 1000, 0};
  cuda::logprob_partial_stats(s, nullptr, nullptr, 1.0f, nullptr, nullptr);
  cuda::logprob_combine(nullptr, 2, 0, nullptr, nullptr, nullptr, nullptr, nullptr);
  cuda::logprob_backward(cuda::Precision::BF16, s, nullptr, nullptr, 1.0f, nullptr, nullptr, nullptr, nullptr,
                         nullptr, nullptr);
  cuda::synchronize();
  CHECK_THROWS_WITH(cuda::qkv_forward(cuda::Precision::F32, cuda::QkvShape{1, 14, 4, 64}, nullptr, nullptr, nullptr,
                                      nullptr, 1e-6f, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr),
                    Catch::Contains("not a multiple of groups 4"));
  CHECK_THROWS_WITH(cuda::qkv_forward(cuda::Precision::F32, cuda::QkvShape{1, 2, 1, 63}, nullptr, nullptr, nullptr,
                                      nullptr, 1e-6f, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr),
                    Catch::Contains("head_dim 63"));
}

// Not a correctness check: effective bandwidth of the memory-bound kernels at training shapes, for the log.
TEST_CASE("model ops throughput at training shapes (printed)") {
  static GpuSetup setup;
  auto time_ms = [](auto&& launch, int iterations) {
    launch();  // warm-up
    cuda::synchronize();
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < iterations; ++i) launch();
    cuda::synchronize();
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count() / iterations;
  };
  {  // logprob over Qwen's vocabulary, 4096 rows
    const int64_t rows = 4096, cols = 151936;
    Tensor logits = Tensor::empty({rows, cols}, DType::F32, Device::CUDA);
    cuda::fill_normal(logits.data<float>(), rows * cols, 1234, 0.0f, 3.0f, nullptr);
    std::vector<int> targets(rows);
    Rng rng(fresh_seed());
    for (int& t : targets) t = static_cast<int>(rng.below(cols));
    Tensor d_targets = upload_ints(targets);
    Tensor stats = poisoned(rows * 4, cuda::Precision::F32), lse = poisoned(rows, cuda::Precision::F32),
           mean = poisoned(rows, cuda::Precision::F32), lp = poisoned(rows, cuda::Precision::F32);
    Tensor g = upload(random_floats(rows), cuda::Precision::F32);
    Tensor dlogits = poisoned(rows * cols, cuda::Precision::BF16);
    const cuda::LogitsShape s{rows, cols, cols, 0};
    const double ms_stats = time_ms(
        [&] { cuda::logprob_partial_stats(s, logits.data<float>(), d_targets.data<int32_t>(), 1.0f / 0.7f,
                                          stats.data<float>(), nullptr); },
        10);
    cuda::logprob_combine(stats.data<float>(), 1, rows, lse.data<float>(), mean.data<float>(), lp.data<float>(),
                          nullptr, nullptr);
    const double ms_bwd = time_ms(
        [&] { cuda::logprob_backward(cuda::Precision::BF16, s, logits.data<float>(), d_targets.data<int32_t>(),
                                     1.0f / 0.7f, lse.data<float>(), mean.data<float>(), g.data<float>(),
                                     g.data<float>(), dlogits.raw(), nullptr); },
        10);
    const double bytes = static_cast<double>(rows) * cols * 4;
    std::printf("logprob [%lld, %lld]: partial_stats %.3f ms (%.0f GB/s), backward -> bf16 %.3f ms (%.0f GB/s)\n",
                static_cast<long long>(rows), static_cast<long long>(cols), ms_stats, bytes / ms_stats * 1e-6, ms_bwd,
                bytes * 1.5 / ms_bwd * 1e-6);
  }
  {  // qkv at 16K tokens, H=16 G=8 d=128, bias and QK-norm, bf16
    const int64_t T = 16384, H = 16, G = 8, d = 128, width = (H + 2 * G) * d;
    auto random_bf16 = [](int64_t n, uint64_t seed) {
      Tensor f = Tensor::empty({n}, DType::F32, Device::CUDA);
      cuda::fill_normal(f.data<float>(), n, seed, 0.0f, 1.0f, nullptr);
      Tensor b = Tensor::empty({n}, DType::BF16, Device::CUDA);
      cuda::cast_from_f32(cuda::Precision::BF16, f.data<float>(), b.raw(), n, nullptr);
      cuda::synchronize();
      return b;
    };
    Tensor qkv = random_bf16(T * width, 1), dq = random_bf16(T * H * d, 2), dk = random_bf16(T * G * d, 3),
           dv = random_bf16(T * G * d, 4);
    Tensor q = poisoned(T * H * d, cuda::Precision::BF16), k = poisoned(T * G * d, cuda::Precision::BF16),
           v = poisoned(T * G * d, cuda::Precision::BF16), dqkv = poisoned(T * width, cuda::Precision::BF16);
    std::vector<float> cos, sin;
    random_rope_tables(T, d, &cos, &sin);
    Tensor d_cos = upload(cos, cuda::Precision::F32), d_sin = upload(sin, cuda::Precision::F32);
    Tensor bias = upload(random_floats(width), cuda::Precision::F32);
    Tensor dbias = upload(random_floats(width), cuda::Precision::F32);
    Tensor qn = upload(random_floats(d), cuda::Precision::F32), kn = upload(random_floats(d), cuda::Precision::F32);
    Tensor dqn = upload(random_floats(d), cuda::Precision::F32), dkn = upload(random_floats(d), cuda::Precision::F32);
    const cuda::QkvShape shape{T, H, G, d};
    const double ms_fwd = time_ms(
        [&] { cuda::qkv_forward(cuda::Precision::BF16, shape, qkv.raw(), bias.data<float>(), qn.data<float>(),
                                kn.data<float>(), 1e-6f, d_cos.data<float>(), d_sin.data<float>(), q.raw(), k.raw(),
                                v.raw(), nullptr); },
        10);
    const double ms_bwd = time_ms(
        [&] { cuda::qkv_backward(cuda::Precision::BF16, shape, qkv.raw(), bias.data<float>(), qn.data<float>(),
                                 kn.data<float>(), 1e-6f, d_cos.data<float>(), d_sin.data<float>(), dq.raw(), dk.raw(),
                                 dv.raw(), dqkv.raw(), dbias.data<float>(), dqn.data<float>(), dkn.data<float>(),
                                 nullptr); },
        10);
    const double bytes = static_cast<double>(T) * width * 2;
    std::printf("qkv bf16 T=%lld H=%lld G=%lld d=%lld: forward %.3f ms (%.0f GB/s), backward %.3f ms (%.0f GB/s)\n",
                static_cast<long long>(T), static_cast<long long>(H), static_cast<long long>(G),
                static_cast<long long>(d), ms_fwd, 2 * bytes / ms_fwd * 1e-6, ms_bwd, 3 * bytes / ms_bwd * 1e-6);
  }
}
