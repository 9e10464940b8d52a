// GPU test (label gpu; mpirun -np 2): a tensor-parallel rollout engine on the GPU (TP=2: the engine on rank 0 over
// its shard, rank 1 following its steps; collectives over comm::DeviceComm: host-staged on one GPU, NCCL with a GPU
// each, where the decode steps also replay CUDA graphs).
//   - fp32: the tokens of the one-rank CPU engine (greedy and seeded top-k / top-p sampling), log-probs within 1e-4,
//     through chunked prefill and prefix sharing;
//   - bf16: the engine's log-probs of its sampled tokens against the fp32 CPU decoder on the same sequences (the
//     train-infer mismatch) within 1e-2 mean absolute difference.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <memory>
#include <tuple>
#include <vector>

#include "comm/mpi_utils.h"
#include "comm/parallel.h"
#include "core/io.h"
#include "core/rng.h"
#include "kernels/cuda/device.h"
#include "model/decoder.h"
#include "model/init.h"
#include "rollout/cuda_model_runner.h"
#include "rollout/engine.h"
#include "rollout/engine_test_models.h"
#include "rollout/tensor_parallel_runner.h"

using namespace slime;
using namespace slime::rollout;

namespace {

// head_dim 16 (the fp32 path) and a Qwen2-like model with head_dim 64 (bf16 kernels); two KV groups each.
model::ModelConfig config_of(bool bf16) { return testing::engine_test_config(bf16 ? "qwen2" : "small", 2); }

EngineConfig engine_config(bool cuda, bool fp32) {
  EngineConfig c;
  c.backend = cuda ? EngineBackend::Cuda : EngineBackend::Cpu;
  c.num_blocks = 192;  // fixed: two ranks sharing a GPU cannot both size their pool from the free memory
  c.block_size = 16;
  c.max_running = 32;
  c.max_batched_tokens = 40;  // chunked prefill
  c.cuda_graph_max_bs = 64;
  c.cuda_fp32 = fp32;
  return c;
}

std::vector<GenerateRequest> requests(const model::ModelConfig& c, int64_t count, int64_t max_new, float temperature,
                                      int64_t top_k, float top_p, uint64_t seed) {
  return testing::engine_test_requests(c, count, max_new, temperature, top_k, top_p, seed);
}

// The TP=2 GPU engine over `shard` generating `reqs` (rank 0; rank 1 follows and gets nothing back).
std::vector<GenerateOutput> generate_tp(model::Decoder& shard, const EngineConfig& config,
                                        const std::vector<GenerateRequest>& reqs, CudaRunnerStats* stats) {
  std::vector<GenerateOutput> out;
  if (shard.tp().rank == 0) {
    Engine engine(shard, config);
    out = engine.generate(reqs);
    engine.runner().release_followers();
  } else {
    EngineConfig mine = config;
    std::unique_ptr<ModelRunner> runner = make_model_runner(shard, mine);
    follow_engine(*runner, shard.tp());
    *stats = dynamic_cast<CudaModelRunner&>(*runner).stats();
  }
  return out;
}

struct Setup {
  comm::ParallelGroups groups;
};
Setup& setup() {
  static Setup* s = [] {
    cuda::init_local_device();
    auto* made = new Setup;
    made->groups = comm::ParallelGroups::create(MPI_COMM_WORLD, 2);
    return made;
  }();
  return *s;
}

}  // namespace

TEST_CASE("GPU engine with TP=2, fp32: the one-rank CPU engine's tokens and log-probs") {
  if (cuda::device_count() == 0) {
    WARN("no GPU visible: skipped");
    return;
  }
  Setup& s = setup();
  const model::ModelConfig c = config_of(false);
  model::Decoder whole(c), shard(c, s.groups.tp);
  model::init_random(c, whole.params(), 11, 0.05f);
  model::init_random(c, shard.params(), 11, 0.05f);
  for (auto [temperature, top_k, top_p] : std::vector<std::tuple<float, int64_t, float>>{
           {0.0f, -1, 1.0f}, {1.0f, -1, 1.0f}, {0.8f, 20, 1.0f}, {0.7f, 50, 0.8f}}) {
    const auto reqs = requests(c, 12, 20, temperature, top_k, top_p, 5);
    std::vector<GenerateOutput> cpu;
    if (s.groups.tp.rank == 0) {
      Engine reference(whole, engine_config(false, true));
      cpu = reference.generate(reqs);
    }
    CudaRunnerStats follower_stats;
    const std::vector<GenerateOutput> gpu = generate_tp(shard, engine_config(true, true), reqs, &follower_stats);
    if (s.groups.tp.rank != 0) {
      std::printf("  follower: %lld eager steps, %lld graph replays\n",
                  static_cast<long long>(follower_stats.eager_steps),
                  static_cast<long long>(follower_stats.graph_replays));
      continue;
    }
    const testing::OutputAgreement a = testing::compare_outputs(gpu, cpu);
    std::printf("gpu engine TP=2 fp32 T=%.1f top_k=%lld top_p=%.1f: %lld/%lld tokens equal the CPU engine's, max "
                "logprob diff %.2e\n", temperature, static_cast<long long>(top_k), top_p,
                static_cast<long long>(a.same), static_cast<long long>(a.tokens), a.max_logprob_diff);
    REQUIRE(a.same_lengths);
    CHECK(a.same == a.tokens);
    CHECK(a.max_logprob_diff <= 1e-4);
  }
}

TEST_CASE("GPU engine with TP=2, bf16: train-infer log-prob mismatch against the fp32 decoder") {
  if (cuda::device_count() == 0) return;
  Setup& s = setup();
  const model::ModelConfig c = config_of(true);
  model::Decoder whole(c), shard(c, s.groups.tp);
  model::init_random(c, whole.params(), 23, 0.05f);
  model::init_random(c, shard.params(), 23, 0.05f);
  const auto reqs = requests(c, 24, 32, 1.0f, -1, 1.0f, 13);
  CudaRunnerStats follower_stats;
  const std::vector<GenerateOutput> gen = generate_tp(shard, engine_config(true, false), reqs, &follower_stats);
  if (s.groups.tp.rank != 0) return;
  double sum = 0, worst = 0;
  int64_t n = 0;
  for (size_t i = 0; i < gen.size(); ++i) {
    std::vector<int64_t> seq = reqs[i].prompt;
    seq.insert(seq.end(), gen[i].tokens.begin(), gen[i].tokens.end());
    std::vector<int64_t> targets(seq.begin() + 1, seq.end());
    targets.push_back(0);
    Tensor lp;
    whole.forward(model::PackedBatch::from_sequences({seq}), targets, 1.0f, &lp, nullptr);
    const int64_t P = static_cast<int64_t>(reqs[i].prompt.size());
    for (size_t j = 0; j < gen[i].tokens.size(); ++j) {
      const double d = std::fabs(gen[i].logprobs[j] - lp.data<float>()[P - 1 + static_cast<int64_t>(j)]);
      sum += d;
      worst = std::max(worst, d);
      ++n;
    }
  }
  std::printf("gpu engine TP=2 bf16: mean |engine - cpu fp32| log-prob %.3e over %lld tokens (max %.3e)\n", sum / n,
              static_cast<long long>(n), worst);
  CHECK(sum / n <= 1e-2);
}
