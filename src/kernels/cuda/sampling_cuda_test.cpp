// GPU tests of sampling.cu (label `gpu`): cuda::sample_tokens against the CPU reference model::sample_token on the
// same rows and draws, on fresh random logits each run (seed printed), with the outputs poisoned (0xFF) before every
// launch. Rows mix every mode in one launch (greedy; T = 1 untruncated; top-k 20, top-p 0.9, top-k 50 + top-p 0.8,
// top-k 1, top-p 0.01 at T = 0.7; T = 1 top-p 0.9, whose kept set is large; top-k 5000 + top-p 0.95 at T = 1.3) and
// five kinds of logits (normal * 3; a duplicated maximum; a tie group across the top-k boundary; a peaked row;
// -inf entries with -0 / +0 as the maximum); padding columns hold 1e4 and must never be chosen. Expectations:
// identical tokens, logprob error <= 1e-5 relative. Also: a CUDA graph captured once and replayed on new logits and
// parameters; stratified draws over identical rows reproduce the kept distribution to within one draw per token;
// and, with SLIME_SAMPLING_BENCH=1, timings at 256 x 152064.
#include <catch2/catch.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <numeric>
#include <string>
#include <vector>

#include <cuda_runtime.h>

#include "core/rng.h"
#include "core/tensor.h"
#include "kernels/cuda/cuda_test_util.h"
#include "kernels/cuda/device.h"
#include "kernels/cuda/ops.h"
#include "model/generate_reference.h"

using namespace slime;
using namespace slime::cuda_test;

namespace {

struct Mode {
  float temperature;
  int top_k;
  float top_p;
};

const std::vector<Mode>& modes() {
  static const std::vector<Mode> m = {
      {0.0f, 0, 1.0f},    {1.0f, 0, 1.0f},   {0.7f, 20, 1.0f}, {0.7f, 0, 0.9f},     {0.7f, 50, 0.8f},
      {1.0f, 1, 1.0f},    {0.7f, 0, 0.01f},  {1.0f, 0, 0.9f},  {1.3f, 5000, 0.95f}, {1.0f, -1, 0.5f},
  };
  return m;
}
constexpr int kKinds = 5;

void check_cuda(cudaError_t e) { REQUIRE(e == cudaSuccess); }

// Row `r` of kind `kind`: see the header. Values past vocab are padding (1e4).
void fill_row(float* x, int64_t vocab, int64_t cols, int kind, Rng& rng) {
  for (int64_t j = 0; j < vocab; ++j) x[j] = 3.0f * rng.normal();
  for (int64_t j = vocab; j < cols; ++j) x[j] = 1e4f;
  if (kind == 1) {  // the maximum, three times
    const float top = *std::max_element(x, x + vocab) + 0.5f;
    for (int i = 0; i < 3; ++i) x[rng.below(vocab)] = top;
  } else if (kind == 2) {  // a tie group straddling the 20th and 50th largest
    std::vector<float> sorted(x, x + vocab);
    const int64_t at = std::min<int64_t>(15, vocab - 1);
    std::nth_element(sorted.begin(), sorted.begin() + at, sorted.end(), std::greater<float>());
    const float v = sorted[at];
    for (int i = 0; i < 40; ++i) x[rng.below(vocab)] = v;
  } else if (kind == 3) {  // nearly all the mass on one token
    const float top = *std::max_element(x, x + vocab);
    x[rng.below(vocab)] = top + 25.0f;
  } else if (kind == 4) {  // masked tokens; -0 (first) and +0 tie as the maximum
    for (int64_t j = 0; j < vocab; ++j) x[j] = rng.below(10) < 3 ? -INFINITY : -std::fabs(x[j]) - 0.1f;
    if (vocab >= 2) {
      const int64_t a = rng.below(vocab - 1), b = a + 1 + rng.below(vocab - 1 - a);
      x[a] = -0.0f;
      x[b] = 0.0f;
    }
  }
}

Tensor upload_params(const std::vector<cuda::SamplingRow>& params) {
  static_assert(sizeof(cuda::SamplingRow) == 16, "SamplingRow layout");
  Tensor t = Tensor::empty({static_cast<int64_t>(params.size()) * 4}, DType::I32, Device::CUDA);
  cuda::copy_to_device(t.raw(), params.data(), params.size() * sizeof(cuda::SamplingRow));
  return t;
}

struct Result {
  std::vector<int> tokens;
  std::vector<float> logprobs;
};

Result cpu_reference(const std::vector<float>& logits, int64_t rows, int64_t cols, int64_t vocab,
                     const std::vector<cuda::SamplingRow>& params) {
  Result out{std::vector<int>(rows), std::vector<float>(rows)};
  for (int64_t r = 0; r < rows; ++r) {
    model::SamplingParams sp;
    sp.temperature = params[r].temperature;
    sp.top_k = params[r].top_k;
    sp.top_p = params[r].top_p;
    out.tokens[r] = static_cast<int>(
        model::sample_token(logits.data() + r * cols, vocab, sp, params[r].uniform, &out.logprobs[r]));
  }
  return out;
}

// Launches (or, with a graph, replays) and downloads.
Result download(const Tensor& tokens, const Tensor& logprobs, int64_t rows) {
  Result out{std::vector<int>(rows), std::vector<float>(rows)};
  cuda::copy_to_host(out.tokens.data(), tokens.raw(), rows * sizeof(int));
  cuda::copy_to_host(out.logprobs.data(), logprobs.raw(), rows * sizeof(float));
  return out;
}

struct Compare {
  int mismatches = 0;
  double worst_logprob = 0;  // max |gpu - cpu| / max(1, |cpu|)
};

Compare compare(const Result& gpu, const Result& cpu, const std::vector<cuda::SamplingRow>& params,
                const std::string& what) {
  Compare c;
  for (size_t r = 0; r < cpu.tokens.size(); ++r) {
    if (gpu.tokens[r] != cpu.tokens[r]) {
      ++c.mismatches;
      std::printf("sampling mismatch (%s) row %zu: T %.2f top_k %d top_p %.2f u %.9g: gpu %d cpu %d\n", what.c_str(),
                  r, params[r].temperature, params[r].top_k, params[r].top_p, params[r].uniform, gpu.tokens[r],
                  cpu.tokens[r]);
      continue;
    }
    const double err = std::isfinite(gpu.logprobs[r])
                           ? std::fabs(static_cast<double>(gpu.logprobs[r]) - cpu.logprobs[r]) /
                                 std::max(1.0, std::fabs(static_cast<double>(cpu.logprobs[r])))
                           : INFINITY;
    c.worst_logprob = std::max(c.worst_logprob, err);
  }
  return c;
}

std::vector<cuda::SamplingRow> mixed_params(int64_t rows, Rng& rng) {
  std::vector<cuda::SamplingRow> params(rows);
  for (int64_t r = 0; r < rows; ++r) {
    const Mode& m = modes()[r % modes().size()];
    float u = rng.uniform();
    if (r % 23 == 5) u = 0.0f;
    if (r % 23 == 11) u = 0.99999994f;
    params[r] = {m.temperature, m.top_k, m.top_p, u};
  }
  return params;
}

std::vector<float> mixed_logits(int64_t rows, int64_t cols, int64_t vocab, Rng& rng) {
  std::vector<float> logits(rows * cols);
  const int64_t n_modes = static_cast<int64_t>(modes().size());
  for (int64_t r = 0; r < rows; ++r) fill_row(logits.data() + r * cols, vocab, cols, (r / n_modes) % kKinds, rng);
  return logits;
}

}  // namespace

TEST_CASE("sample_tokens matches model::sample_token (every mode, ties, padding)") {
  static GpuSetup setup;
  struct Shape {
    int64_t rows, vocab, cols;
  };
  // 151936 / 152064: Qwen's vocabulary and padded head; 1000 / 1001: unaligned rows (the scalar path).
  for (Shape s : {Shape{100, 151936, 152064}, Shape{150, 1000, 1024}, Shape{50, 1000, 1001}, Shape{20, 3, 4}}) {
    Rng rng(fresh_seed());
    const std::vector<float> logits = mixed_logits(s.rows, s.cols, s.vocab, rng);
    const std::vector<cuda::SamplingRow> params = mixed_params(s.rows, rng);
    Tensor d_logits = upload(logits, cuda::Precision::F32), d_params = upload_params(params);
    Tensor tokens = Tensor::empty({s.rows}, DType::I32, Device::CUDA);
    Tensor logprobs = Tensor::empty({s.rows}, DType::F32, Device::CUDA);
    cuda::fill_bytes(tokens.raw(), 0xff, tokens.nbytes());
    cuda::fill_bytes(logprobs.raw(), 0xff, logprobs.nbytes());
    cuda::sample_tokens(d_logits.data<float>(), s.rows, s.cols, s.vocab,
                        reinterpret_cast<const cuda::SamplingRow*>(d_params.raw()), tokens.data<int>(),
                        logprobs.data<float>(), nullptr);
    cuda::synchronize();
    const Result gpu = download(tokens, logprobs, s.rows);
    const Result cpu = cpu_reference(logits, s.rows, s.cols, s.vocab, params);
    const std::string what = std::to_string(s.rows) + "x" + std::to_string(s.cols) + " vocab " + std::to_string(s.vocab);
    const Compare c = compare(gpu, cpu, params, what);
    std::printf("sampling vs CPU, %s: %d token mismatches over %lld rows, worst logprob error %.3g\n", what.c_str(),
                c.mismatches, static_cast<long long>(s.rows), c.worst_logprob);
    INFO(what);
    CHECK(c.mismatches == 0);
    CHECK(c.worst_logprob <= 1e-5);
  }
}

TEST_CASE("sample_tokens replays from a CUDA graph with new logits and parameters") {
  static GpuSetup setup;
  const int64_t rows = 40, vocab = 151936, cols = 152064;
  Rng rng(fresh_seed());
  Tensor d_logits = Tensor::empty({rows * cols}, DType::F32, Device::CUDA);
  Tensor d_params = Tensor::empty({rows * 4}, DType::I32, Device::CUDA);
  Tensor tokens = Tensor::empty({rows}, DType::I32, Device::CUDA);
  Tensor logprobs = Tensor::empty({rows}, DType::F32, Device::CUDA);
  cudaStream_t stream;
  check_cuda(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  auto launch = [&] {
    cuda::sample_tokens(d_logits.data<float>(), rows, cols, vocab,
                        reinterpret_cast<const cuda::SamplingRow*>(d_params.raw()), tokens.data<int>(),
                        logprobs.data<float>(), stream);
  };
  auto set_inputs = [&](std::vector<float>& logits, std::vector<cuda::SamplingRow>& params) {
    logits = mixed_logits(rows, cols, vocab, rng);
    params = mixed_params(rows, rng);
    std::rotate(params.begin(), params.begin() + 3, params.end());  // other modes on other rows
    cuda::copy_to_device(d_logits.raw(), logits.data(), logits.size() * 4);
    cuda::copy_to_device(d_params.raw(), params.data(), params.size() * sizeof(cuda::SamplingRow));
    cuda::fill_bytes(tokens.raw(), 0xff, tokens.nbytes());
    cuda::fill_bytes(logprobs.raw(), 0xff, logprobs.nbytes());
    cuda::synchronize();  // the memsets run on the legacy stream, the launches on `stream`
  };
  std::vector<float> logits;
  std::vector<cuda::SamplingRow> params;
  set_inputs(logits, params);
  launch();  // eager first
  check_cuda(cudaStreamSynchronize(stream));
  Compare c = compare(download(tokens, logprobs, rows), cpu_reference(logits, rows, cols, vocab, params), params,
                      "eager");
  CHECK(c.mismatches == 0);

  cudaGraph_t graph;
  cudaGraphExec_t exec;
  check_cuda(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
  launch();
  check_cuda(cudaStreamEndCapture(stream, &graph));
  check_cuda(cudaGraphInstantiate(&exec, graph, 0));
  for (int replay = 0; replay < 2; ++replay) {
    set_inputs(logits, params);
    check_cuda(cudaGraphLaunch(exec, stream));
    check_cuda(cudaStreamSynchronize(stream));
    c = compare(download(tokens, logprobs, rows), cpu_reference(logits, rows, cols, vocab, params), params,
                "graph replay " + std::to_string(replay));
    std::printf("sampling graph replay %d: %d token mismatches over %lld rows, worst logprob error %.3g\n", replay,
                c.mismatches, static_cast<long long>(rows), c.worst_logprob);
    CHECK(c.mismatches == 0);
    CHECK(c.worst_logprob <= 1e-5);
  }
  check_cuda(cudaGraphExecDestroy(exec));
  check_cuda(cudaGraphDestroy(graph));
  check_cuda(cudaStreamDestroy(stream));
}

TEST_CASE("sample_tokens: stratified draws over identical rows reproduce the kept distribution") {
  static GpuSetup setup;
  // N identical rows with draws (i + 0.5) / N: token j is drawn floor or ceil of N * p_j times, where p_j is its kept,
  // renormalised probability, computed here independently (in double, sorted by logit then id).
  const int64_t n = 8192, vocab = 64, cols = 64;
  Rng rng(fresh_seed());
  std::vector<float> row(vocab);
  for (float& v : row) v = 1.5f * rng.normal();
  row[7] = row[9] = *std::max_element(row.begin(), row.end());  // a tie
  std::vector<float> logits(n * cols);
  for (int64_t r = 0; r < n; ++r) std::copy(row.begin(), row.end(), logits.begin() + r * cols);
  Tensor d_logits = upload(logits, cuda::Precision::F32);
  Tensor tokens = Tensor::empty({n}, DType::I32, Device::CUDA);
  Tensor logprobs = Tensor::empty({n}, DType::F32, Device::CUDA);
  for (Mode m : {Mode{1.0f, 0, 1.0f}, Mode{0.8f, 10, 1.0f}, Mode{1.2f, 0, 0.7f}, Mode{1.0f, 20, 0.9f},
                 Mode{0.5f, 8, 0.95f}}) {
    std::vector<cuda::SamplingRow> params(n);
    for (int64_t i = 0; i < n; ++i)
      params[i] = {m.temperature, m.top_k, m.top_p, static_cast<float>((i + 0.5) / static_cast<double>(n))};
    Tensor d_params = upload_params(params);
    cuda::fill_bytes(tokens.raw(), 0xff, tokens.nbytes());
    cuda::fill_bytes(logprobs.raw(), 0xff, logprobs.nbytes());
    cuda::sample_tokens(d_logits.data<float>(), n, cols, vocab,
                        reinterpret_cast<const cuda::SamplingRow*>(d_params.raw()), tokens.data<int>(),
                        logprobs.data<float>(), nullptr);
    cuda::synchronize();
    const Result gpu = download(tokens, logprobs, n);
    // expected kept distribution
    std::vector<int> order(vocab);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return row[a] > row[b]; });
    const int64_t keep_k = m.top_k > 0 ? std::min<int64_t>(m.top_k, vocab) : vocab;
    std::vector<double> e(vocab);
    const double mx = row[order[0]] / static_cast<double>(m.temperature);
    for (int64_t j = 0; j < vocab; ++j) e[j] = std::exp(row[j] / static_cast<double>(m.temperature) - mx);
    double kept_k = 0;
    for (int64_t i = 0; i < keep_k; ++i) kept_k += e[order[i]];
    int64_t keep = keep_k;
    if (m.top_p < 1.0f) {
      double cum = 0;
      for (int64_t i = 0; i < keep_k; ++i) {
        cum += e[order[i]] / kept_k;
        if (cum >= m.top_p) {
          keep = i + 1;
          break;
        }
      }
    }
    std::vector<double> p(vocab, 0.0);
    double kept = 0;
    for (int64_t i = 0; i < keep; ++i) kept += e[order[i]];
    for (int64_t i = 0; i < keep; ++i) p[order[i]] = e[order[i]] / kept;
    std::vector<int> count(vocab, 0);
    bool in_range = true;
    for (int t : gpu.tokens) {
      if (t < 0 || t >= vocab) {
        in_range = false;
        continue;
      }
      ++count[t];
    }
    REQUIRE(in_range);
    double worst = 0;
    for (int64_t j = 0; j < vocab; ++j) worst = std::max(worst, std::fabs(count[j] - n * p[j]));
    std::printf("sampling stratified T %.1f top_k %d top_p %.2f: %lld kept tokens, worst |count - N p| %.3f draws "
                "(N = %lld)\n",
                m.temperature, m.top_k, m.top_p, static_cast<long long>(keep), worst, static_cast<long long>(n));
    INFO("T " << m.temperature << " top_k " << m.top_k << " top_p " << m.top_p);
    CHECK(worst <= 1.0 + 1e-9);
    const Compare c = compare(gpu, cpu_reference(logits, n, cols, vocab, params), params, "stratified");
    CHECK(c.mismatches == 0);
    CHECK(c.worst_logprob <= 1e-5);
  }
}

TEST_CASE("sampling bench") {
  const char* env = std::getenv("SLIME_SAMPLING_BENCH");
  if (!env || std::string(env) != "1") return;
  static GpuSetup setup;
  const int64_t rows = 256, vocab = 151936, cols = 152064;
  Rng rng(fresh_seed());
  std::vector<float> logits(rows * cols);
  for (int64_t r = 0; r < rows; ++r) fill_row(logits.data() + r * cols, vocab, cols, 0, rng);
  Tensor d_logits = upload(logits, cuda::Precision::F32);
  Tensor tokens = Tensor::empty({rows}, DType::I32, Device::CUDA);
  Tensor logprobs = Tensor::empty({rows}, DType::F32, Device::CUDA);
  cudaEvent_t start, stop;
  check_cuda(cudaEventCreate(&start));
  check_cuda(cudaEventCreate(&stop));
  struct BenchMode {
    const char* name;
    Mode m;
  };
  for (BenchMode b : {BenchMode{"T=1 no truncation", {1.0f, 0, 1.0f}}, BenchMode{"T=0.7 top_p=0.9", {0.7f, 0, 0.9f}},
                      BenchMode{"T=0.7 top_k=50", {0.7f, 50, 1.0f}}, BenchMode{"greedy", {0.0f, 0, 1.0f}}}) {
    std::vector<cuda::SamplingRow> params(rows);
    for (int64_t r = 0; r < rows; ++r) params[r] = {b.m.temperature, b.m.top_k, b.m.top_p, rng.uniform()};
    Tensor d_params = upload_params(params);
    auto launch = [&] {
      cuda::sample_tokens(d_logits.data<float>(), rows, cols, vocab,
                          reinterpret_cast<const cuda::SamplingRow*>(d_params.raw()), tokens.data<int>(),
                          logprobs.data<float>(), nullptr);
    };
    for (int i = 0; i < 3; ++i) launch();
    const int iters = 20;
    check_cuda(cudaEventRecord(start, nullptr));
    for (int i = 0; i < iters; ++i) launch();
    check_cuda(cudaEventRecord(stop, nullptr));
    check_cuda(cudaEventSynchronize(stop));
    float ms = 0;
    check_cuda(cudaEventElapsedTime(&ms, start, stop));
    const double us = 1e3 * ms / iters;
    const double gbs = static_cast<double>(rows) * cols * 4 / (us * 1e-6) / 1e9;
    std::printf("sampling bench %s: %lld x %lld: %.1f us per call, %.0f GB/s of logits (one read of the rows)\n",
                b.name, static_cast<long long>(rows), static_cast<long long>(cols), us, gbs);
    // the sampled tokens still agree with the CPU on a few rows
    const Result gpu = download(tokens, logprobs, rows);
    const std::vector<float> head(logits.begin(), logits.begin() + 8 * cols);
    const std::vector<cuda::SamplingRow> head_params(params.begin(), params.begin() + 8);
    const Result cpu = cpu_reference(head, 8, cols, vocab, head_params);
    for (int r = 0; r < 8; ++r) CHECK(gpu.tokens[r] == cpu.tokens[r]);
  }
  check_cuda(cudaEventDestroy(start));
  check_cuda(cudaEventDestroy(stop));
}
