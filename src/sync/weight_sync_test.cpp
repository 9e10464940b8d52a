// Weight sync (run under mpirun -np 4): trainer layouts (TP=2, TP=1 x DP=2, colocated) -> engine layouts (TP=1,
// TP=2); every engine's weights must equal its shard of the trainer's full tensors bit for bit, with large and
// tiny buckets; a model that differs is an error on every rank naming the parameter.
#include <catch2/catch.hpp>
#include <cstdio>
#include <cstring>
#include <functional>

#include "comm/parallel.h"
#include "core/io.h"
#include "model/decoder.h"
#include "model/init.h"
#include "sync/weight_sync.h"

using namespace slime;
using namespace slime::model;

namespace {

struct Roles {
  bool trainer = false;
  bool receiver = false;
};

int world_rank() {
  int r = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}

// Qwen3-style: QK-norm, GQA (4 heads, 2 KV groups), untied embeddings; vocab padded for TP up to 2.
ModelConfig tiny_config(int64_t intermediate_size = 20, int layers = 2) {
  ModelConfig c = ModelConfig::from_hf_json(
      json{{"architectures", {"Qwen3ForCausalLM"}}, {"vocab_size", 45}, {"hidden_size", 16},
           {"intermediate_size", intermediate_size}, {"num_hidden_layers", layers}, {"num_attention_heads", 4},
           {"num_key_value_heads", 2}, {"head_dim", 6}, {"tie_word_embeddings", false}},
      "sync test");
  c.pad_vocab(8, 2);
  return c;
}

// Process groups of the ranks for which `member` holds, `tp` ranks a replica (an unused object elsewhere).
struct Pool {
  MPI_Comm comm = MPI_COMM_NULL;
  comm::ParallelGroups groups;
  Pool(bool member, int tp) {
    MPI_Comm_split(MPI_COMM_WORLD, member ? 0 : MPI_UNDEFINED, world_rank(), &comm);
    if (member) groups = comm::ParallelGroups::create(comm, tp);
  }
  ~Pool() {
    if (comm != MPI_COMM_NULL) {
      groups.release();
      MPI_Comm_free(&comm);
    }
  }
};

// True when every parameter of `engine` is bit for bit its shard of `full` (a TP=1 model).
bool engine_matches(const Decoder& engine, const Decoder& full) {
  bool same = true;
  for (const Param& p : engine.params().all()) {
    Tensor expect = Tensor::empty(p.local_shape(), DType::F32);
    extract_shard(p, full.params().at(p.name).value, expect);
    if (std::memcmp(expect.raw(), p.value.raw(), expect.nbytes()) != 0) {
      UNSCOPED_INFO("rank " << world_rank() << ": " << p.name << " differs");
      same = false;
    }
  }
  return same;
}

struct Scenario {
  std::function<Roles(int)> roles;
  int trainer_tp = 1;
  int engine_tp = 1;
  int64_t bucket_bytes = 1 << 20;
  const char* name = "";
};

void run_scenario(const Scenario& s) {
  const int rank = world_rank();
  const Roles me = s.roles(rank);
  const ModelConfig c = tiny_config();
  Pool trainers(me.trainer, s.trainer_tp), engines(me.receiver, s.engine_tp);
  std::unique_ptr<Decoder> trainer, engine;
  if (me.trainer) {
    trainer = std::make_unique<Decoder>(c, trainers.groups.tp);
    init_random(c, trainer->params(), 11, 0.3f);
  }
  if (me.receiver) {
    engine = std::make_unique<Decoder>(c, engines.groups.tp);
    init_random(c, engine->params(), 999, 0.3f);  // stale weights that the sync must overwrite
  }
  Decoder reference(c);
  init_random(c, reference.params(), 11, 0.3f);
  const int64_t numel = reference.params().numel();
  const int64_t bucket_elems = std::max<int64_t>(1, s.bucket_bytes / 4);

  sync::WeightSync ws(MPI_COMM_WORLD, me.trainer, me.receiver, s.bucket_bytes);
  CHECK(ws.source_rank() >= 0);
  const comm::ParallelGroups* groups = me.trainer ? &trainers.groups : nullptr;
  sync::SyncStats stats = ws.sync(trainer.get(), groups, engine.get(), 1);
  CHECK(stats.version == 1);
  CHECK(stats.bytes == numel * 4);
  CHECK(stats.buckets == (numel + bucket_elems - 1) / bucket_elems);
  if (me.receiver) CHECK(engine_matches(*engine, reference));
  std::string report;
  CHECK(ws.check_weights_equal(trainer.get(), groups, engine.get(), &report));
  CHECK(report.empty());

  // A second step: new trainer weights, version 2.
  if (me.trainer) init_random(c, trainer->params(), 12, 0.3f);
  init_random(c, reference.params(), 12, 0.3f);
  stats = ws.sync(trainer.get(), groups, engine.get(), 2);
  CHECK(stats.version == 2);
  if (me.receiver) CHECK(engine_matches(*engine, reference));
  CHECK(ws.check_weights_equal(trainer.get(), groups, engine.get(), &report));
  if (rank == 0)
    std::printf("[sync_test] %s: %lld parameter elements, %lld buckets of <= %lld bytes, %.3f ms on rank 0\n", s.name,
                static_cast<long long>(numel), static_cast<long long>(stats.buckets),
                static_cast<long long>(bucket_elems * 4), stats.seconds * 1e3);

  // --check-weight-update-equal notices one flipped bit on the last receiver.
  int last_receiver = -1;
  for (int r = 0; r < 4; ++r)
    if (s.roles(r).receiver) last_receiver = r;
  if (rank == last_receiver) {
    Param& p = engine->params().at("decoder.layers.1.mlp.linear_fc2.weight");
    uint32_t bits;
    std::memcpy(&bits, p.value.data<float>(), 4);
    bits ^= 1u;
    std::memcpy(p.value.data<float>(), &bits, 4);
  }
  CHECK_FALSE(ws.check_weights_equal(trainer.get(), groups, engine.get(), &report));
  // Checksums are summed over an engine's TP group: the report names the engine's first rank (engines sit on
  // consecutive ranks here).
  const int engine_first_rank = last_receiver - (s.engine_tp - 1);
  CHECK_THAT(report, Catch::Contains("decoder.layers.1.mlp.linear_fc2.weight") &&
                         Catch::Contains("rank " + std::to_string(engine_first_rank) + " (rollout engine TP rank 0"));
}

Roles split_first_two_train(int rank) { return {rank < 2, rank >= 2}; }
Roles split_last_two_train(int rank) { return {rank >= 2, rank < 2}; }
Roles everyone(int) { return {true, true}; }

}  // namespace

TEST_CASE("weight sync: trainer TP=2 on two ranks -> two TP=1 engines") {
  run_scenario({split_first_two_train, 2, 1, 1 << 20, "trainer TP=2 -> 2 engines TP=1"});
}

TEST_CASE("weight sync: trainer TP=1 DP=2 (source not world rank 0) -> two TP=1 engines") {
  run_scenario({split_last_two_train, 1, 1, 1 << 20, "trainer TP=1 DP=2 on ranks 2,3 -> engines on 0,1"});
}

TEST_CASE("weight sync: trainer TP=1 DP=2 -> one engine with TP=2") {
  run_scenario({split_first_two_train, 1, 2, 1 << 20, "trainer TP=1 DP=2 -> engine TP=2"});
}

TEST_CASE("weight sync: trainer TP=2 -> engine TP=2") {
  run_scenario({split_first_two_train, 2, 2, 4096, "trainer TP=2 -> engine TP=2, 4 KiB buckets"});
}

TEST_CASE("weight sync: colocated, every rank trainer and engine") {
  SECTION("trainer TP=2 DP=2, engines TP=1") { run_scenario({everyone, 2, 1, 1 << 20, "colocated TP=2 DP=2"}); }
  SECTION("trainer TP=1 DP=4, engines TP=1 (source copies locally)") {
    run_scenario({everyone, 1, 1, 1 << 20, "colocated TP=1 DP=4"});
  }
  SECTION("trainer TP=2 DP=2, engines TP=2") { run_scenario({everyone, 2, 2, 1 << 20, "colocated TP=2 -> TP=2"}); }
}

TEST_CASE("weight sync: one rank both trainer and only engine (no broadcast)") {
  run_scenario({[](int rank) { return Roles{rank == 0, rank == 0}; }, 1, 1, 1 << 20, "single colocated rank"});
}

TEST_CASE("weight sync: tiny buckets split parameters") {
  SECTION("28-byte buckets, trainer TP=2 -> engines TP=1") {
    run_scenario({split_first_two_train, 2, 1, 28, "trainer TP=2 -> engines TP=1, 28-byte buckets"});
  }
  SECTION("one-float buckets (6 bytes), colocated TP=2") {
    run_scenario({everyone, 2, 1, 6, "colocated TP=2, 4-byte buckets"});
  }
  SECTION("52-byte buckets, trainer TP=1 -> engine TP=2") {
    run_scenario({split_first_two_train, 1, 2, 52, "trainer TP=1 -> engine TP=2, 52-byte buckets"});
  }
}

TEST_CASE("weight sync: a bucket smaller than one value is an error on every rank") {
  const Roles me = split_first_two_train(world_rank());
  CHECK_THROWS_WITH(sync::WeightSync(MPI_COMM_WORLD, me.trainer, me.receiver, 2),
                    Catch::Contains("--update-weight-buffer-size 2 bytes"));
}

TEST_CASE("weight sync: an engine model that differs is an error naming the parameter") {
  const int rank = world_rank();
  const Roles me = split_first_two_train(rank);
  Pool trainers(me.trainer, 2), engines(me.receiver, 1);
  const ModelConfig c = tiny_config();
  std::unique_ptr<Decoder> trainer;
  if (me.trainer) trainer = std::make_unique<Decoder>(c, trainers.groups.tp);
  const comm::ParallelGroups* groups = me.trainer ? &trainers.groups : nullptr;
  sync::WeightSync ws(MPI_COMM_WORLD, me.trainer, me.receiver, 1 << 20);

  SECTION("another FFN size on one engine") {
    std::unique_ptr<Decoder> engine;
    if (me.receiver) engine = std::make_unique<Decoder>(rank == 3 ? tiny_config(24) : c);
    CHECK_THROWS_WITH(ws.sync(trainer.get(), groups, engine.get(), 7),
                      Catch::Contains("rank 3") && Catch::Contains("differs from the trainer") &&
                          Catch::Contains("decoder.layers.0.mlp.linear_fc1.weight [40, 16]") &&
                          Catch::Contains("[48, 16]"));
  }
  SECTION("fewer layers") {
    std::unique_ptr<Decoder> engine;
    if (me.receiver) engine = std::make_unique<Decoder>(tiny_config(20, 1));
    CHECK_THROWS_WITH(ws.sync(trainer.get(), groups, engine.get(), 7),
                      Catch::Contains("rank 2") && Catch::Contains("decoder.layers.1."));
  }
  SECTION("a receiver that passes no engine model") {
    CHECK_THROWS_WITH(ws.sync(trainer.get(), groups, nullptr, 7),
                      Catch::Contains("rank 2 is a receiver but passed no engine model"));
  }
}
