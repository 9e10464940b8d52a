// GPU test (label gpu): the rollout engine on the CUDA backend against the CPU engine (the reference).
//   - fp32 path: the same tokens (greedy and seeded sampling with top-k/top-p) and log-probs as the CPU engine, with
//     chunked prefill, prefix sharing and CUDA graphs on and off;
//   - bf16 path: greedy tokens agree with the fp32 CPU model's argmax on >= 99% of the positions where its top-2
//     margin exceeds bf16's reach, and any other pick is a near-tie of the fp32 maximum; the engine's
//     log-probs match the trainer's (the CUDA decoder's training forward on the same tokens, bf16) within 1e-2 mean
//     absolute difference (the train-infer mismatch);
//   - the engine's device weights after a reload equal the trainer's bf16 copy bit for bit;
//   - weights swapped with requests in flight: the same script on the CPU and the GPU engine gives the same tokens.
#include <catch2/catch.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <vector>

#include "core/rng.h"
#include "kernels/cuda/device.h"
#include "model/cuda_decoder.h"
#include "model/decoder.h"
#include "model/init.h"
#include "rollout/cuda_model_runner.h"
#include "rollout/engine.h"
#include "rollout/engine_test_models.h"

using namespace slime;
using namespace slime::rollout;

namespace {

model::ModelConfig config_of(const char* kind) { return testing::engine_test_config(kind); }

struct Model {
  model::ModelConfig config;
  model::Decoder decoder;
  explicit Model(const char* kind, uint64_t seed, float stddev) : config(config_of(kind)), decoder(config) {
    model::init_random(config, decoder.params(), seed, stddev);
  }
};

EngineConfig engine_config(bool cuda, int64_t graph_max_bs = 64, bool fp32 = false) {
  EngineConfig c;
  c.backend = cuda ? EngineBackend::Cuda : EngineBackend::Cpu;
  c.num_blocks = 192;
  c.block_size = 16;
  c.max_running = 32;
  c.max_batched_tokens = 40;  // chunked prefill: long prompts take several steps (the paged-attention path)
  c.cuda_graph_max_bs = graph_max_bs;
  c.cuda_fp32 = fp32;
  return c;
}

std::vector<GenerateRequest> requests(const model::ModelConfig& c, int64_t count, int64_t max_new, float temperature,
                                      int64_t top_k, float top_p, uint64_t seed) {
  return testing::engine_test_requests(c, count, max_new, temperature, top_k, top_p, seed);
}

std::vector<GenerateOutput> run(model::Decoder& model, const EngineConfig& config,
                                const std::vector<GenerateRequest>& reqs, CudaRunnerStats* stats = nullptr) {
  Engine engine(model, config);
  std::vector<GenerateOutput> out = engine.generate(reqs);
  if (stats) *stats = dynamic_cast<CudaModelRunner&>(engine.runner()).stats();
  return out;
}

}  // namespace

TEST_CASE("CUDA engine, fp32: the CPU engine's tokens and log-probs, with and without CUDA graphs") {
  REQUIRE(cuda::device_count() > 0);
  for (const char* kind : {"small", "qwen2"}) {
    Model m(kind, 11, 0.05f);
    for (auto [temperature, top_k, top_p] : std::vector<std::tuple<float, int64_t, float>>{
             {0.0f, -1, 1.0f}, {1.0f, -1, 1.0f}, {0.8f, 20, 1.0f}, {1.0f, -1, 0.9f}, {0.7f, 50, 0.8f}}) {
      const auto reqs = requests(m.config, 12, 20, temperature, top_k, top_p, 5);
      const std::vector<GenerateOutput> cpu = run(m.decoder, engine_config(false), reqs);
      for (int64_t graphs : {int64_t{0}, int64_t{64}}) {
        CudaRunnerStats stats;
        const std::vector<GenerateOutput> gpu = run(m.decoder, engine_config(true, graphs, true), reqs, &stats);
        const testing::OutputAgreement a = testing::compare_outputs(gpu, cpu);
        std::printf("cuda engine fp32 %s T=%.1f top_k=%lld top_p=%.1f graphs=%lld: %lld/%lld tokens equal, "
                    "max logprob diff %.2e, graph replays %lld\n",
                    kind, temperature, static_cast<long long>(top_k), top_p, static_cast<long long>(graphs),
                    static_cast<long long>(a.same), static_cast<long long>(a.tokens), a.max_logprob_diff,
                    static_cast<long long>(stats.graph_replays));
        REQUIRE(a.same_lengths);
        CHECK(a.same == a.tokens);
        CHECK(a.max_logprob_diff <= 1e-4);
        if (graphs > 0) CHECK(stats.graph_replays > 0);
      }
    }
  }
}

TEST_CASE("CUDA engine, bf16: greedy agreement with the fp32 model, train-infer log-prob mismatch") {
  REQUIRE(cuda::device_count() > 0);
  for (const char* kind : {"qwen2", "qwen3"}) {
    Model m(kind, 23, 0.05f);
    // Greedy: every generated token against the fp32 CPU model's logits at that position (teacher forcing on the
    // engine's own sequence, so one early difference does not decide the rest). bf16 rounding cannot keep the order
    // of two logits closer than its own error, and a random-init model has many such near-ties: agreement is
    // required where the fp32 top-2 margin exceeds kTie, and every token the engine picks must be within kTie of
    // the fp32 maximum (a flip only between near-tied tokens).
    constexpr float kTie = 0.05f;
    const auto greedy = requests(m.config, 24, 32, 0.0f, -1, 1.0f, 9);
    CudaRunnerStats stats;
    const std::vector<GenerateOutput> out = run(m.decoder, engine_config(true), greedy, &stats);
    int64_t total = 0, agree = 0, decisive = 0, decisive_agree = 0;
    float worst_gap = 0;  // the largest fp32 max logit - logit of the engine's token
    for (size_t i = 0; i < out.size(); ++i) {
      std::vector<int64_t> seq = greedy[i].prompt;
      seq.insert(seq.end(), out[i].tokens.begin(), out[i].tokens.end());
      const Tensor logits = m.decoder.forward_logits(model::PackedBatch::from_sequences({seq}));
      const int64_t P = static_cast<int64_t>(greedy[i].prompt.size()), cols = logits.dim(1), V = m.config.vocab_size;
      for (size_t j = 0; j < out[i].tokens.size(); ++j) {
        const float* row = logits.data<float>() + (P - 1 + static_cast<int64_t>(j)) * cols;
        const int64_t best = std::max_element(row, row + V) - row;
        float second = -INFINITY;
        for (int64_t v = 0; v < V; ++v)
          if (v != best) second = std::max(second, row[v]);
        const bool same = best == out[i].tokens[j];
        agree += same;
        ++total;
        if (row[best] - second > kTie) {
          ++decisive;
          decisive_agree += same;
        }
        worst_gap = std::max(worst_gap, row[best] - row[out[i].tokens[j]]);
      }
    }
    const double agreement = static_cast<double>(agree) / static_cast<double>(total);
    const double decisive_agreement = static_cast<double>(decisive_agree) / static_cast<double>(decisive);
    std::printf("cuda engine bf16 %s greedy: %lld/%lld tokens (%.2f%%) equal the fp32 argmax; where the fp32 top-2 "
                "margin > %.2f: %lld/%lld (%.2f%%); largest fp32 logit gap of a chosen token %.3f; graph replays "
                "%lld\n",
                kind, static_cast<long long>(agree), static_cast<long long>(total), 100 * agreement, kTie,
                static_cast<long long>(decisive_agree), static_cast<long long>(decisive), 100 * decisive_agreement,
                worst_gap, static_cast<long long>(stats.graph_replays));
    CHECK(decisive_agreement >= 0.99);
    CHECK(worst_gap <= kTie);
    CHECK(agreement >= 0.95);

    // Sampling at temperature 1: the engine's log-probs against the trainer's forward (CUDA decoder, bf16) and the
    // CPU fp32 decoder on the same tokens.
    const auto sampled = requests(m.config, 24, 32, 1.0f, -1, 1.0f, 13);
    const std::vector<GenerateOutput> gen = run(m.decoder, engine_config(true), sampled);
    model::CudaDecoder trainer(m.config);
    trainer.upload(m.decoder.params());
    double sum_gpu = 0, sum_cpu = 0, max_gpu = 0;
    int64_t n = 0;
    for (size_t i = 0; i < gen.size(); ++i) {
      std::vector<int64_t> seq = sampled[i].prompt;
      seq.insert(seq.end(), gen[i].tokens.begin(), gen[i].tokens.end());
      const model::PackedBatch batch = model::PackedBatch::from_sequences({seq});
      std::vector<int64_t> targets(seq.begin() + 1, seq.end());
      targets.push_back(0);
      Tensor lp_gpu, lp_cpu;
      trainer.forward(batch, targets, 1.0f, &lp_gpu, nullptr);
      m.decoder.forward(batch, targets, 1.0f, &lp_cpu, nullptr);
      const int64_t P = static_cast<int64_t>(sampled[i].prompt.size());
      for (size_t j = 0; j < gen[i].tokens.size(); ++j) {
        const int64_t t = P - 1 + static_cast<int64_t>(j);
        const double d_gpu = std::fabs(gen[i].logprobs[j] - lp_gpu.data<float>()[t]);
        sum_gpu += d_gpu;
        max_gpu = std::max(max_gpu, d_gpu);
        sum_cpu += std::fabs(gen[i].logprobs[j] - lp_cpu.data<float>()[t]);
        ++n;
      }
    }
    std::printf("cuda engine bf16 %s train-infer mismatch over %lld tokens: mean |engine - trainer(bf16)| %.3e "
                "(max %.3e), mean |engine - cpu fp32| %.3e\n",
                kind, static_cast<long long>(n), sum_gpu / n, max_gpu, sum_cpu / n);
    CHECK(sum_gpu / n <= 1e-2);
    CHECK(sum_cpu / n <= 1e-2);
  }
}

TEST_CASE("CUDA engine: device weights after a reload equal the trainer's bf16 copy bit for bit") {
  REQUIRE(cuda::device_count() > 0);
  Model m("qwen3", 31, 0.02f);
  Engine engine(m.decoder, engine_config(true));
  auto& runner = dynamic_cast<CudaModelRunner&>(engine.runner());
  model::CudaDecoder trainer(m.config);
  auto compare = [&](const char* when) {
    trainer.upload(m.decoder.params());
    const size_t bytes = runner.device_weights().nbytes();
    std::vector<char> a(bytes), b(bytes);
    cuda::copy_to_host(a.data(), runner.device_weights().raw(), bytes);
    cuda::copy_to_host(b.data(), trainer.compute_copy(), bytes);
    std::printf("cuda engine weights %s: %zu bytes, %s\n", when, bytes, a == b ? "equal" : "DIFFERENT");
    CHECK(a == b);
  };
  compare("at start");
  // A weight update lands in the host model (as weight sync does); the engine reloads.
  model::init_random(m.config, m.decoder.params(), 32, 0.02f);
  engine.reload_weights();
  compare("after reload");
  // The engine generates with the new weights: the same tokens as a fresh engine on them.
  const auto reqs = requests(m.config, 6, 8, 0.0f, -1, 1.0f, 3);
  const std::vector<GenerateOutput> a = engine.generate(reqs);
  const std::vector<GenerateOutput> b = run(m.decoder, engine_config(true), reqs);
  for (size_t i = 0; i < a.size(); ++i) CHECK(a[i].tokens == b[i].tokens);
}

TEST_CASE("CUDA engine: weights swapped with requests in flight, as the CPU engine does (fp32)") {
  REQUIRE(cuda::device_count() > 0);
  // The same script on both engines: requests, a few steps, new weights with those requests in flight, more
  // requests of the same prompts, to the end. The fp32 GPU engine samples the CPU engine's tokens.
  auto script = [](bool cuda) {
    Model m("qwen2", 11, 0.05f);
    const auto reqs = requests(m.config, 8, 16, 1.0f, -1, 1.0f, 9);
    Engine engine(m.decoder, engine_config(cuda, 64, true));
    for (size_t i = 0; i < 6; ++i) engine.add_request(reqs[i]);
    std::vector<GenerateOutput> done;
    for (int s = 0; s < 6; ++s)
      for (GenerateOutput& o : engine.step()) done.push_back(o);
    const int64_t in_flight = engine.num_unfinished();
    model::init_random(m.config, m.decoder.params(), 99, 0.05f);
    engine.reload_weights();
    engine.set_weight_version(1);
    for (size_t i = 6; i < reqs.size(); ++i) engine.add_request(reqs[i]);
    while (engine.has_unfinished())
      for (GenerateOutput& o : engine.step()) done.push_back(o);
    std::sort(done.begin(), done.end(), [](const GenerateOutput& a, const GenerateOutput& b) { return a.id < b.id; });
    return std::make_pair(in_flight, done);
  };
  const auto cpu = script(false);
  const auto gpu = script(true);
  REQUIRE(cpu.first > 0);  // the swap happened with requests running
  CHECK(gpu.first == cpu.first);
  REQUIRE(gpu.second.size() == 8);
  REQUIRE(cpu.second.size() == 8);
  int64_t tokens = 0, same = 0;
  for (size_t i = 0; i < cpu.second.size(); ++i) {
    const GenerateOutput &a = cpu.second[i], &b = gpu.second[i];
    CHECK(b.finish_reason == "length");
    CHECK(b.cached_tokens == a.cached_tokens);
    for (size_t j = 0; j < std::min(a.tokens.size(), b.tokens.size()); ++j, ++tokens)
      same += a.tokens[j] == b.tokens[j];
  }
  std::printf("cuda engine, weights swapped with %lld requests in flight: %lld/%lld tokens equal to the CPU engine's\n",
              static_cast<long long>(cpu.first), static_cast<long long>(same), static_cast<long long>(tokens));
  CHECK(same == tokens);
}
