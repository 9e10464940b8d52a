// HDF5 checkpoints under mpirun -np 2: save with one layout, load with another (TP=1 on one rank -> TP=2 and DP=2
// on two -> back), bit-exact resume, and every kind of bad checkpoint.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "ckpt/checkpoint.h"
#include "ckpt/h5.h"
#include "comm/mpi_utils.h"
#include "comm/parallel.h"
#include "core/io.h"
#include "core/rng.h"
#include "model/decoder.h"
#include "model/init.h"
#include "train/distributed_optimizer.h"
#include "train/lr_scheduler.h"

using namespace slime;
namespace fs = std::filesystem;

namespace {

json tiny_config() {
  return json::parse(R"({"architectures": ["Qwen3ForCausalLM"], "vocab_size": 45, "hidden_size": 16,
    "intermediate_size": 20, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
    "head_dim": 6, "tie_word_embeddings": false})");
}

model::ModelConfig make_config() {
  model::ModelConfig c = model::ModelConfig::from_hf_json(tiny_config(), "test");
  c.pad_vocab(8, 2);  // padded vocab works for TP 1 and 2
  return c;
}

std::string shared_dir(const std::string& name) {
  // The same path on both ranks; rank 0 clears it.
  std::string dir = "/tmp/slime_ckpt_test_" + name;
  if (comm::rank(MPI_COMM_WORLD) == 0) fs::remove_all(dir);
  MPI_Barrier(MPI_COMM_WORLD);
  return dir;
}

// A model + optimizer on a given layout, with gradients filled deterministically from global positions (so every
// layout sees the same global gradient).
struct Replica {
  comm::ParallelGroups groups;
  model::Decoder model;
  train::DistributedOptimizer optimizer;
  Replica(const comm::ParallelGroups& g, const model::ModelConfig& c)
      : groups(g), model(c, g.tp), optimizer(model.params(), g, train::AdamWConfig{}, 1.0) {}

  void fake_gradients(uint64_t seed) {
    for (model::Param& p : model.params().all()) {
      Tensor global = Tensor::empty(p.global_shape, DType::F32);
      for (int64_t i = 0; i < global.numel(); ++i)
        global.data<float>()[i] = philox_normal(seed, model::param_stream(p.name), i) /
                                  static_cast<float>(groups.dp.size);  // the DP sum restores the full gradient
      model::extract_shard(p, global, p.grad);
    }
  }
  std::vector<ckpt::OptimizerShard> shards() {
    std::vector<ckpt::OptimizerShard> out;
    for (auto& r : optimizer.owned_ranges()) out.push_back({r.param, r.begin, r.end, r.exp_avg, r.exp_avg_sq});
    return out;
  }
  ckpt::CheckpointState state(int64_t iteration) {
    ckpt::CheckpointState s;
    s.iteration = iteration;
    s.rollout_id = iteration;
    s.consumed_samples = 16 * iteration;
    s.optimizer_step = optimizer.step_count();
    s.model_config = model.config().to_hf_json();
    s.megatron = {{"padded_vocab_size", model.config().padded_vocab_size}};
    s.rng = {{"rank", groups.pool.rank}};
    return s;
  }
};

// Full (global) values, moments of the single-process view of a checkpoint.
struct FullState {
  std::map<std::string, std::vector<float>> values, exp_avg, exp_avg_sq;
};

FullState read_full(const std::string& root, int64_t iteration, const model::ModelConfig& c) {
  Replica r(comm::ParallelGroups::single(), c);
  std::vector<ckpt::OptimizerShard> shards = r.shards();
  ckpt::load_checkpoint(root, iteration, r.model.params(), shards, r.groups, {});
  FullState full;
  for (const model::Param& p : r.model.params().all())
    full.values[p.name].assign(p.value.data<float>(), p.value.data<float>() + p.value.numel());
  for (const ckpt::OptimizerShard& s : shards) {
    full.exp_avg[s.param->name].assign(s.exp_avg, s.exp_avg + (s.end - s.begin));
    full.exp_avg_sq[s.param->name].assign(s.exp_avg_sq, s.exp_avg_sq + (s.end - s.begin));
  }
  return full;
}

void require_same(const FullState& a, const FullState& b) {
  for (const auto* maps : {&a.values, &a.exp_avg, &a.exp_avg_sq}) {
    const auto& other = maps == &a.values ? b.values : maps == &a.exp_avg ? b.exp_avg : b.exp_avg_sq;
    for (const auto& [name, v] : *maps) {
      INFO(name);
      REQUIRE(other.at(name).size() == v.size());
      CHECK(std::memcmp(other.at(name).data(), v.data(), v.size() * sizeof(float)) == 0);
    }
  }
}

}  // namespace

TEST_CASE("save with TP=1 on one rank, load with TP=2 and with DP=2, save again: identical state") {
  REQUIRE(comm::size(MPI_COMM_WORLD) == 2);
  const model::ModelConfig c = make_config();
  const std::string root = shared_dir("reshard");
  // 1. Rank 0 alone trains two steps with TP=1 and saves iteration 2.
  if (comm::rank(MPI_COMM_WORLD) == 0) {
    Replica one(comm::ParallelGroups::single(), c);
    model::init_random(c, one.model.params(), 5, 0.3f);
    for (int step = 0; step < 2; ++step) {
      one.fake_gradients(100 + step);
      one.optimizer.step(1e-2, 0.1);
    }
    ckpt::save_checkpoint(root, one.state(2), one.model.params(), one.shards(), one.groups, {});
  }
  MPI_Barrier(MPI_COMM_WORLD);
  const FullState original = read_full(root, 2, c);
  CHECK(original.exp_avg.size() == original.values.size());

  for (int tp : {2, 1}) {  // TP=2 (DP=1), then TP=1 (DP=2)
    comm::ParallelGroups g = comm::ParallelGroups::create(MPI_COMM_WORLD, tp);
    Replica two(g, c);
    std::vector<ckpt::OptimizerShard> shards = two.shards();
    ckpt::LoadOptions options;
    options.expect_config = &c;
    ckpt::CheckpointState state = ckpt::load_checkpoint(root, 2, two.model.params(), shards, g, options);
    CHECK(state.iteration == 2);
    CHECK(state.consumed_samples == 32);
    CHECK(state.optimizer_step == 2);
    CHECK(state.rng.size() == 1);
    // Each rank's shard equals the matching part of the original.
    for (const model::Param& p : two.model.params().all()) {
      Tensor global = Tensor::from_vector(original.values.at(p.name), p.global_shape);
      Tensor expect = Tensor::empty(p.local_shape(), DType::F32);
      model::extract_shard(p, global, expect);
      CHECK(std::memcmp(expect.raw(), p.value.raw(), expect.nbytes()) == 0);
    }
    const std::string again = shared_dir("reshard_back_tp" + std::to_string(tp));
    two.optimizer.set_step_count(state.optimizer_step);
    ckpt::save_checkpoint(again, two.state(2), two.model.params(), shards, g, {});
    require_same(read_full(again, 2, c), original);
    g.release();
  }
}

TEST_CASE("resume from a checkpoint continues bit for bit like an uninterrupted run") {
  const model::ModelConfig c = make_config();
  for (int tp : {1, 2}) {
    comm::ParallelGroups g = comm::ParallelGroups::create(MPI_COMM_WORLD, tp);
    const std::string root = shared_dir("resume_tp" + std::to_string(tp));
    train::LrScheduleOptions lr_options;
    lr_options.lr = 1e-2;
    lr_options.min_lr = 1e-3;
    lr_options.lr_decay_style = "cosine";
    lr_options.lr_warmup_iters = 1;
    lr_options.train_iters = 6;
    lr_options.global_batch_size = 4;
    model::PackedBatch batch = model::PackedBatch::from_sequences({{1, 2, 3, 4, 5}, {6, 7, 8}});
    std::vector<int64_t> targets = {2, 3, 4, 5, 6, 7, 8, 9};
    auto train_step = [&](Replica& r, train::LrScheduler& lr, int step) {
      Tensor lp, ent;
      r.model.forward(batch, targets, 1.0f, &lp, &ent);
      std::vector<float> w(8), we(8);
      for (int t = 0; t < 8; ++t) {
        w[t] = philox_normal(7, step, t);
        we[t] = 0.1f * philox_normal(8, step, t);
      }
      r.model.backward(Tensor::from_vector(w, {8}), Tensor::from_vector(we, {8}));
      r.optimizer.step(lr.lr(), lr.weight_decay());
      lr.step(lr_options.global_batch_size);
    };
    // Uninterrupted: 4 steps.
    Replica straight(g, c);
    model::init_random(c, straight.model.params(), 3, 0.3f);
    train::LrScheduler lr_straight(lr_options);
    for (int s = 0; s < 4; ++s) train_step(straight, lr_straight, s);
    // Interrupted: 2 steps, save, fresh objects, load, 2 more.
    {
      Replica first(g, c);
      model::init_random(c, first.model.params(), 3, 0.3f);
      train::LrScheduler lr(lr_options);
      for (int s = 0; s < 2; ++s) train_step(first, lr, s);
      ckpt::CheckpointState st = first.state(2);
      st.trainer = {{"lr_scheduler", lr.state()}};
      ckpt::save_checkpoint(root, st, first.model.params(), first.shards(), g, {});
    }
    Replica resumed(g, c);  // zero-initialised: everything must come from the checkpoint
    train::LrScheduler lr(lr_options);
    std::vector<ckpt::OptimizerShard> shards = resumed.shards();
    const std::optional<int64_t> it = ckpt::find_checkpoint(root);
    REQUIRE(it == 2);
    ckpt::CheckpointState st = ckpt::load_checkpoint(root, *it, resumed.model.params(), shards, g, {});
    resumed.optimizer.set_step_count(st.optimizer_step);
    lr.load(st.trainer.at("lr_scheduler"));
    for (int s = 2; s < 4; ++s) train_step(resumed, lr, s);
    const Tensor& a = straight.model.params().flat_values();
    const Tensor& b = resumed.model.params().flat_values();
    CHECK(std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0);
    CHECK(lr.num_steps() == lr_straight.num_steps());
    g.release();
  }
}

TEST_CASE("bad checkpoints: clear errors, and a crashed save leaves the previous iteration in use") {
  const model::ModelConfig c = make_config();
  comm::ParallelGroups g = comm::ParallelGroups::create(MPI_COMM_WORLD, 2);
  const std::string root = shared_dir("bad");
  Replica r(g, c);
  model::init_random(c, r.model.params(), 1, 0.3f);
  std::vector<ckpt::OptimizerShard> shards = r.shards();
  ckpt::save_checkpoint(root, r.state(1), r.model.params(), shards, g, {});
  ckpt::save_checkpoint(root, r.state(2), r.model.params(), shards, g, {});
  const bool rank0 = g.pool.rank == 0;
  auto load = [&](int64_t it) { return ckpt::load_checkpoint(root, it, r.model.params(), shards, g, {}); };

  SECTION("a crash before the rename: the partial iteration is ignored") {
    if (rank0) {
      make_directories(root + "/iter_0000003.partial");
      write_file_atomic(root + "/iter_0000003.partial/model.h5", "half a file");
    }
    MPI_Barrier(MPI_COMM_WORLD);
    CHECK(ckpt::find_checkpoint(root) == 2);
    CHECK(load(2).iteration == 2);
  }
  SECTION("model config mismatch") {
    json other = tiny_config();
    other["intermediate_size"] = 24;
    model::ModelConfig oc = model::ModelConfig::from_hf_json(other, "other");
    ckpt::LoadOptions options;
    options.expect_config = &oc;
    CHECK_THROWS_WITH(ckpt::load_checkpoint(root, 2, r.model.params(), shards, g, options),
                      Catch::Contains("intermediate_size = 20, this model has 24"));
  }
  SECTION("shape mismatch and missing dataset") {
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank0) {
      h5::Handle file = h5::open_file(root + "/iter_0000002/model.h5", MPI_COMM_NULL, true);
      H5Ldelete(file, "decoder.final_layernorm.weight", H5P_DEFAULT);
      h5::Handle file1 = h5::open_file(root + "/iter_0000001/model.h5", MPI_COMM_NULL, true);
      H5Ldelete(file1, "decoder.final_layernorm.weight", H5P_DEFAULT);
      h5::create_dataset_f32(file1, "decoder.final_layernorm.weight", {17}, "test");
    }
    MPI_Barrier(MPI_COMM_WORLD);
    CHECK_THROWS_WITH(load(2), Catch::Contains("missing dataset 'decoder.final_layernorm.weight'"));
    CHECK_THROWS_WITH(load(1), Catch::Contains("'decoder.final_layernorm.weight' has shape [17], the model expects [16]"));
  }
  SECTION("truncated file") {
    if (rank0) fs::resize_file(root + "/iter_0000002/model.h5", fs::file_size(root + "/iter_0000002/model.h5") / 2);
    MPI_Barrier(MPI_COMM_WORLD);
    CHECK_THROWS_WITH(load(2), Catch::Contains("iter_0000002/model.h5"));
  }
  SECTION("flipped bytes in the data: checksum mismatch") {
    if (rank0) {
      // Find the final norm's data in the file and flip one of its bytes.
      h5::Handle file = h5::open_file(root + "/iter_0000002/model.h5", MPI_COMM_NULL);
      h5::Handle ds = h5::open_dataset(file, "decoder.final_layernorm.weight", "test");
      const haddr_t offset = H5Dget_offset(ds);
      REQUIRE(offset != HADDR_UNDEF);
      file.reset();
      std::fstream f(root + "/iter_0000002/model.h5", std::ios::in | std::ios::out | std::ios::binary);
      f.seekg(offset + 5);
      char byte = 0;
      f.read(&byte, 1);
      byte ^= 0x40;
      f.seekp(offset + 5);
      f.write(&byte, 1);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    CHECK_THROWS_WITH(load(2), Catch::Contains("checksum mismatch"));
  }
  SECTION("missing optimizer file, tracker naming a missing iteration, unknown step") {
    if (rank0) fs::remove(root + "/iter_0000002/optimizer.h5");
    MPI_Barrier(MPI_COMM_WORLD);
    CHECK_THROWS_WITH(load(2), Catch::Contains("--no-load-optim"));
    ckpt::LoadOptions no_optim;
    no_optim.load_optimizer = false;
    CHECK(ckpt::load_checkpoint(root, 2, r.model.params(), shards, g, no_optim).iteration == 2);
    CHECK_THROWS_WITH(ckpt::find_checkpoint(root, 7), Catch::Contains("complete iterations there: 1 2"));
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank0) write_file_atomic(ckpt::tracker_path(root), "9\n");
    MPI_Barrier(MPI_COMM_WORLD);
    CHECK_THROWS_WITH(ckpt::find_checkpoint(root), Catch::Contains("names iteration 9"));
  }
  SECTION("keep_last_n prunes old iterations, never the newest") {
    ckpt::SaveOptions keep;
    keep.keep_last_n = 2;
    ckpt::save_checkpoint(root, r.state(3), r.model.params(), shards, g, keep);
    MPI_Barrier(MPI_COMM_WORLD);
    CHECK_FALSE(fs::exists(root + "/iter_0000001"));
    CHECK(fs::exists(root + "/iter_0000002"));
    CHECK(ckpt::find_checkpoint(root) == 3);
  }
  MPI_Barrier(MPI_COMM_WORLD);
  g.release();
}
