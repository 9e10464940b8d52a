// A tensor-parallel rollout engine on the CPU (mpirun -np 2): the Engine on TP rank 0 over its shard of the model,
// rank 1 following its steps (tensor_parallel_runner.h). It generates what a one-rank engine over the whole model
// generates: the same tokens and the same log-probs to fp32 rounding, greedy and sampled (temperature, top-k, top-p,
// per-request seeds), through chunked prefill, prefix sharing and preemption, and again after the followers were
// released and rejoin (the next rollout).
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <random>

#include "comm/mpi_utils.h"
#include "comm/parallel.h"
#include "core/io.h"
#include "core/rng.h"
#include "model/decoder.h"
#include "model/init.h"
#include "rollout/engine.h"
#include "rollout/tensor_parallel_runner.h"

using namespace slime;
using namespace slime::rollout;

namespace {

model::ModelConfig tp_config() {
  model::ModelConfig c = model::ModelConfig::from_hf_json(json::parse(R"({"architectures": ["Qwen3ForCausalLM"],
    "vocab_size": 77, "hidden_size": 32, "intermediate_size": 48, "num_hidden_layers": 2, "num_attention_heads": 4,
    "num_key_value_heads": 2, "head_dim": 8, "max_position_embeddings": 128, "tie_word_embeddings": false})"),
    "tiny-tp");
  c.pad_vocab(8, 2);
  return c;
}

// Requests sharing a prefix (prefix cache), long enough prompts to be chunked, greedy and sampled ones.
std::vector<GenerateRequest> requests(uint64_t seed, int64_t vocab) {
  Rng rng(seed);
  std::vector<int64_t> shared(20);
  for (int64_t& t : shared) t = static_cast<int64_t>(rng.below(vocab));
  std::vector<GenerateRequest> out;
  for (int i = 0; i < 8; ++i) {
    GenerateRequest r;
    r.prompt = shared;
    for (int j = 0; j < 3 + i; ++j) r.prompt.push_back(static_cast<int64_t>(rng.below(vocab)));
    r.params.max_new_tokens = 12 + 2 * i;
    r.params.ignore_eos = true;
    r.params.temperature = i % 3 == 0 ? 0.0f : 0.8f;
    r.params.top_k = i % 3 == 1 ? 20 : -1;
    r.params.top_p = i % 3 == 2 ? 0.9f : 1.0f;
    r.params.seed = seed + 101 * i;
    out.push_back(r);
  }
  return out;
}

EngineConfig engine_config() {
  EngineConfig c;
  c.block_size = 4;
  c.num_blocks = 24;           // 8 requests of 35 to 56 tokens do not fit at once: preemption
  c.max_batched_tokens = 16;   // prompts of 23+ tokens are prefilled in chunks
  c.max_running = 6;
  return c;
}

}  // namespace

TEST_CASE("a TP=2 engine generates what a one-rank engine generates (tokens, log-probs)") {
  const int rank = comm::rank(MPI_COMM_WORLD);
  REQUIRE(comm::size(MPI_COMM_WORLD) == 2);
  const model::ModelConfig c = tp_config();
  uint64_t seed = 0;
  if (rank == 0) seed = static_cast<uint64_t>(std::random_device{}());
  comm::broadcast(&seed, sizeof seed, 0, MPI_COMM_WORLD);

  // The reference: the whole model in one engine on rank 0.
  std::vector<std::vector<GenerateOutput>> want(2);
  if (rank == 0) {
    model::Decoder whole(c);
    model::init_random(c, whole.params(), seed, 0.3f);
    Engine engine(whole, engine_config());
    for (int round = 0; round < 2; ++round) want[round] = engine.generate(requests(seed + round, c.vocab_size));
  }

  comm::ParallelGroups groups = comm::ParallelGroups::create(MPI_COMM_WORLD, 2);
  model::Decoder shard(c, groups.tp);
  model::init_random(c, shard.params(), seed, 0.3f);  // the same values, this rank's shard
  if (rank == 0) {
    Engine engine(shard, engine_config());
    for (int round = 0; round < 2; ++round) {
      const std::vector<GenerateOutput> got = engine.generate(requests(seed + round, c.vocab_size));
      engine.runner().release_followers();  // end of a "rollout": rank 1 returns, then rejoins
      REQUIRE(got.size() == want[round].size());
      int64_t tokens = 0, differ = 0;
      double worst = 0;
      for (size_t i = 0; i < got.size(); ++i) {
        INFO("round " << round << ", request " << i);
        CHECK(got[i].tokens == want[round][i].tokens);
        REQUIRE(got[i].logprobs.size() == want[round][i].logprobs.size());
        for (size_t t = 0; t < got[i].logprobs.size(); ++t) {
          worst = std::max(worst, static_cast<double>(std::abs(got[i].logprobs[t] - want[round][i].logprobs[t])));
          differ += got[i].tokens[t] != want[round][i].tokens[t];
          ++tokens;
        }
      }
      std::printf("TP=2 engine, round %d: %lld tokens, %lld differ from the one-rank engine's; log-probs within "
                  "%.2e; %lld preemptions, %lld cached prompt tokens\n", round, static_cast<long long>(tokens),
                  static_cast<long long>(differ), worst, static_cast<long long>(engine.stats().preemptions),
                  static_cast<long long>(engine.stats().cached_tokens));
      CHECK(worst < 1e-4);
      if (round == 1) {
        CHECK(engine.stats().preemptions > 0);
        CHECK(engine.stats().cached_tokens > 0);
      }
    }
  } else {
    EngineConfig config = engine_config();
    std::unique_ptr<ModelRunner> runner = make_model_runner(shard, config);
    for (int round = 0; round < 2; ++round) CHECK(follow_engine(*runner, groups.tp) > 0);
  }
  groups.release();
}

TEST_CASE("follow_engine and TensorParallelRunner refuse the wrong TP rank") {
  comm::ParallelGroups groups = comm::ParallelGroups::create(MPI_COMM_WORLD, 2);
  const model::ModelConfig c = tp_config();
  model::Decoder shard(c, groups.tp);
  EngineConfig config = engine_config();
  if (groups.tp.rank == 0) {
    CHECK_THROWS_WITH(follow_engine(*make_model_runner(shard, config), groups.tp),
                      Catch::Contains("TP rank > 0"));
  } else {
    CHECK_THROWS_WITH(TensorParallelRunner(make_model_runner(shard, config), groups.tp),
                      Catch::Contains("TP rank 0"));
  }
  groups.release();
}
