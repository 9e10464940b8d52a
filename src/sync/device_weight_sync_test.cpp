// Weight sync on the GPU (label gpu; mpirun -np 3, and -np 1 for the colocated case): rank 0 holds a trainer's
// device weights (model::CudaDecoder), the other ranks a GPU rollout engine each, or (with 3 ranks) one
// tensor-parallel engine together, whose shards are cut out of the stream on the GPU. After DeviceWeightSync the engines'
// device buffers hold the trainer's bf16 copy (or fp32 master) and fp32 1-D parameters bit for bit, generate exactly
// what an engine loaded through the host path generates, and --check-weight-update-equal's hash agrees (and catches
// a flipped byte). An engine of another precision makes every rank fall back to the host path.
#include <catch2/catch.hpp>
#include <cstring>
#include <vector>

#include "comm/device_comm.h"
#include "comm/mpi_utils.h"
#include "kernels/cuda/device.h"
#include "model/cuda_decoder.h"
#include "model/decoder.h"
#include "model/init.h"
#include "rollout/engine.h"
#include "rollout/engine_test_models.h"
#include "rollout/model_runner.h"
#include "sync/device_weight_sync.h"
#include "sync/weight_sync.h"

using namespace slime;

namespace {

// A Qwen2-like model with head_dim 64 (bf16 kernels) and a Qwen3-like one with head_dim 16 (fp32 path), the
// vocabulary padded for `tp` ranks.
model::ModelConfig config_of(bool bf16, int tp = 1) {
  return rollout::testing::engine_test_config(bf16 ? "qwen2" : "small", tp);
}

rollout::EngineConfig engine_config(bool fp32) {
  rollout::EngineConfig c;
  c.backend = rollout::EngineBackend::Cuda;
  c.num_blocks = 64;
  c.block_size = 16;
  c.max_running = 8;
  c.max_batched_tokens = 64;
  c.cuda_fp32 = fp32;
  return c;
}

std::vector<rollout::GenerateRequest> requests(int64_t vocab) {
  std::vector<rollout::GenerateRequest> out;
  for (int i = 0; i < 4; ++i) {
    rollout::GenerateRequest r;
    for (int t = 0; t < 5 + 7 * i; ++t) r.prompt.push_back((37 * t + 11 * i) % vocab);
    r.params.max_new_tokens = 12;
    r.params.temperature = 1.0f;
    r.params.seed = 100 + i;
    r.params.ignore_eos = true;
    out.push_back(r);
  }
  return out;
}

// The trainer's side: the model's random weights (seed) as fp32 master on the GPU with its bf16 copy.
std::unique_ptr<model::CudaDecoder> trainer_on_gpu(const model::ModelConfig& c, bool bf16, uint64_t seed) {
  model::Decoder host(c);
  model::init_random(c, host.params(), seed, 0.05f);
  model::CudaDecoderOptions o;
  o.precision = bf16 ? cuda::Precision::BF16 : cuda::Precision::F32;
  auto gpu = std::make_unique<model::CudaDecoder>(c, o);
  gpu->upload(host.params());
  return gpu;
}

// Both engines' device buffers (flat weights, and with bf16 the fp32 1-D parameters) hold the same bytes.
void check_same_device_weights(const model::DeviceWeights& got, const model::DeviceWeights& want) {
  const size_t elem = got.bf16 ? 2 : 4;
  REQUIRE(got.numel == want.numel);
  std::vector<char> a(got.numel * elem), b(want.numel * elem);
  cuda::copy_to_host(a.data(), got.flat, a.size());
  cuda::copy_to_host(b.data(), want.flat, b.size());
  CHECK(std::memcmp(a.data(), b.data(), a.size()) == 0);
  if (!got.bf16) return;
  REQUIRE(got.vector_numel == want.vector_numel);
  std::vector<float> va(got.vector_numel), vb(want.vector_numel);
  cuda::copy_to_host(va.data(), got.vectors, va.size() * 4);
  cuda::copy_to_host(vb.data(), want.vectors, vb.size() * 4);
  CHECK(std::memcmp(va.data(), vb.data(), va.size() * 4) == 0);
}

// Flips a bit of byte `at` of the engine's flat weights.
void flip_byte(const model::DeviceWeights& w, size_t at) {
  unsigned char byte = 0;
  cuda::copy_to_host(&byte, static_cast<char*>(w.flat) + at, 1);
  byte ^= 0x40;
  cuda::copy_to_device(static_cast<char*>(w.flat) + at, &byte, 1);
}

// The 3-rank cases need a GPU and exactly 3 ranks (a WARN says why they skip otherwise); binds the GPU.
bool three_ranks_with_gpu(const char* what) {
  if (cuda::device_count() == 0) return false;
  if (comm::size(MPI_COMM_WORLD) != 3) {
    WARN(what << " need 3 ranks (mpirun -np 3): skipped");
    return false;
  }
  cuda::init_local_device();
  return true;
}

// A group of the two ranks first, first + 1 of MPI_COMM_WORLD (collective; `member` on exactly those two); its
// communicator goes to *comm (MPI_COMM_NULL elsewhere).
comm::Group pair_group(bool member, int first, MPI_Comm* comm) {
  const int rank = comm::rank(MPI_COMM_WORLD);
  mpiCheck(MPI_Comm_split(MPI_COMM_WORLD, member ? 0 : MPI_UNDEFINED, rank, comm));
  return member ? comm::Group{*comm, rank - first, 2} : comm::Group{};
}

}  // namespace

TEST_CASE("weights go from the trainer's GPU buffers into the engines' (device path), equal to the host path") {
  if (cuda::device_count() == 0) {
    WARN("no GPU visible: skipped");
    return;
  }
  cuda::init_local_device();
  const int rank = comm::rank(MPI_COMM_WORLD), size = comm::size(MPI_COMM_WORLD);
  const bool trainer = rank == 0, receiver = size == 1 || rank > 0;
  const uint64_t seed = 4242;
  for (bool bf16 : {true, false}) {
    INFO((bf16 ? "bf16" : "fp32") << ", " << size << " ranks");
    const model::ModelConfig c = config_of(bf16);
    // The trainer: fp32 master on the GPU with its bf16 copy.
    std::unique_ptr<model::CudaDecoder> gpu;
    model::DeviceWeights source;
    if (trainer) {
      gpu = trainer_on_gpu(c, bf16, seed);
      source = gpu->device_weights();
    }
    // The engine starts from other weights (zeros).
    model::Decoder engine_model(c);
    std::unique_ptr<rollout::Engine> engine;
    if (receiver) engine = std::make_unique<rollout::Engine>(engine_model, engine_config(false));

    sync::WeightSync ws(MPI_COMM_WORLD, trainer, receiver, 1 << 20, trainer ? 0 : -1);
    sync::DeviceWeightSync ds(MPI_COMM_WORLD, ws.bcast_comm(), ws.is_source(), receiver, 4096 + 6);  // many buckets
    const model::DeviceWeights* dst = receiver ? engine->runner().device_weights_for_sync() : nullptr;
    REQUIRE(ds.sync(trainer ? &source : nullptr, dst));
    if (receiver) engine->weights_changed();
    std::printf("rank %d: %s weights over %s, %lld bytes\n", rank, bf16 ? "bf16" : "fp32", ds.transport(),
                static_cast<long long>(ds.bytes_sent()));

    if (receiver) {
      // The reference: the same weights through the host path (host model -> reload).
      model::Decoder ref_model(c);
      model::init_random(c, ref_model.params(), seed, 0.05f);
      rollout::Engine reference(ref_model, engine_config(false));
      check_same_device_weights(*engine->runner().device_weights_for_sync(),
                                *reference.runner().device_weights_for_sync());
      // Same weights, same kernels: the same tokens and log-probs.
      const auto out = engine->generate(requests(c.vocab_size));
      const auto ref = reference.generate(requests(c.vocab_size));
      int64_t differ = 0;
      for (size_t i = 0; i < out.size(); ++i)
        differ += out[i].tokens != ref[i].tokens || out[i].logprobs != ref[i].logprobs;
      CHECK(differ == 0);
    }

    std::string report;
    CHECK(ds.check_equal(trainer ? &source : nullptr, dst, &report));
    // A flipped byte on the last engine is caught on every rank.
    if (receiver && rank == size - 1) flip_byte(*dst, 0);
    CHECK_FALSE(ds.check_equal(trainer ? &source : nullptr, dst, &report));
    CHECK_THAT(report, Catch::Contains("rank " + std::to_string(size - 1)));

    // An engine of another precision (fp32 for a bf16 trainer, or no GPU engine at all): every rank falls back.
    std::unique_ptr<rollout::Engine> other;
    if (receiver && bf16) other = std::make_unique<rollout::Engine>(engine_model, engine_config(true));
    const model::DeviceWeights* other_view = other ? other->runner().device_weights_for_sync() : nullptr;
    CHECK_FALSE(ds.sync(trainer ? &source : nullptr, other_view));
  }
}

TEST_CASE("weights go into a tensor-parallel GPU engine: each rank's shards cut out of the stream on the GPU") {
  if (!three_ranks_with_gpu("a trainer and a TP=2 engine")) return;
  const int rank = comm::rank(MPI_COMM_WORLD);
  const bool trainer = rank == 0, receiver = rank > 0;
  // Ranks 1 and 2: one engine, tensor parallel.
  MPI_Comm engine_comm = MPI_COMM_NULL;
  const comm::Group tp = pair_group(receiver, 1, &engine_comm);
  const uint64_t seed = 777;
  for (bool bf16 : {true, false}) {
    INFO((bf16 ? "bf16" : "fp32") << ", rank " << rank);
    const model::ModelConfig c = config_of(bf16, 2);
    std::unique_ptr<model::CudaDecoder> gpu;
    model::DeviceWeights source;
    if (trainer) {
      gpu = trainer_on_gpu(c, bf16, seed);
      source = gpu->device_weights();
    }
    // The engine (zero weights): the Engine on TP rank 0, the follower's runner on TP rank 1.
    std::unique_ptr<model::Decoder> shard, ref_shard;
    std::unique_ptr<rollout::Engine> engine;
    std::unique_ptr<rollout::ModelRunner> follower, reference;
    rollout::EngineConfig config = engine_config(false);
    if (receiver) {
      shard = std::make_unique<model::Decoder>(c, tp);
      if (tp.rank == 0) engine = std::make_unique<rollout::Engine>(*shard, config);
      else follower = rollout::make_model_runner(*shard, config);
      // The reference: the same shard through the host path (host model -> reload).
      ref_shard = std::make_unique<model::Decoder>(c, tp);
      model::init_random(c, ref_shard->params(), seed, 0.05f);
      rollout::EngineConfig ref_config = engine_config(false);
      reference = rollout::make_model_runner(*ref_shard, ref_config);
    }
    rollout::ModelRunner* runner = engine ? &engine->runner() : follower.get();
    sync::WeightSync ws(MPI_COMM_WORLD, trainer, receiver, 1 << 20, trainer ? 0 : -1);
    sync::DeviceWeightSync ds(MPI_COMM_WORLD, ws.bcast_comm(), ws.is_source(), receiver, 4096 + 6);  // many buckets
    const model::DeviceWeights* dst = receiver ? runner->device_weights_for_sync() : nullptr;
    REQUIRE(ds.sync(trainer ? &source : nullptr, dst));
    if (receiver) {
      check_same_device_weights(*dst, *reference->device_weights_for_sync());
      std::printf("rank %d (engine TP rank %d): %s shard of %lld elements over %s, equal to the host path's\n", rank,
                  tp.rank, bf16 ? "bf16" : "fp32", static_cast<long long>(dst->numel), ds.transport());
    }
    std::string report;
    CHECK(ds.check_equal(trainer ? &source : nullptr, dst, &report));
    if (rank == 2) flip_byte(*dst, 17);  // a flipped byte in the follower's shard is caught on every rank
    CHECK_FALSE(ds.check_equal(trainer ? &source : nullptr, dst, &report));
    CHECK_THAT(report, Catch::Contains("rank 2"));
    // A tensor-parallel trainer (its device weights a shard) takes the host path, on every rank.
    if (trainer) {
      model::DeviceWeights half = source;
      half.numel = source.numel / 2;
      CHECK_FALSE(ds.sync(&half, nullptr));
    } else {
      CHECK_FALSE(ds.sync(nullptr, dst));
    }
  }
  if (engine_comm != MPI_COMM_NULL) MPI_Comm_free(&engine_comm);
}

TEST_CASE("a tensor-parallel trainer's shards are gathered on the GPU and sent whole") {
  if (!three_ranks_with_gpu("a TP=2 trainer and an engine")) return;
  const int rank = comm::rank(MPI_COMM_WORLD);
  const bool trainer = rank < 2, receiver = rank == 2;
  // Ranks 0 and 1: the trainer, tensor parallel (its replica's TP group); rank 2: an engine of the whole model.
  MPI_Comm tp_comm = MPI_COMM_NULL;
  const comm::Group tp = pair_group(trainer, 0, &tp_comm);
  std::unique_ptr<comm::DeviceComm> tp_device = trainer ? std::make_unique<comm::DeviceComm>(tp, "test TP") : nullptr;
  const uint64_t seed = 31337;
  for (bool bf16 : {true, false}) {
    INFO((bf16 ? "bf16" : "fp32") << ", rank " << rank);
    const model::ModelConfig c = config_of(bf16, 2);
    std::unique_ptr<model::CudaDecoder> gpu;
    model::DeviceWeights source;
    if (trainer) {
      model::Decoder host(c, tp);
      model::init_random(c, host.params(), seed, 0.05f);  // this rank's shard of the same values
      model::CudaDecoderOptions o;
      o.precision = bf16 ? cuda::Precision::BF16 : cuda::Precision::F32;
      gpu = std::make_unique<model::CudaDecoder>(c, o, tp, tp_device.get());
      gpu->upload(host.params());
      source = gpu->device_weights();
    }
    model::Decoder engine_model(c);
    std::unique_ptr<rollout::Engine> engine;
    if (receiver) engine = std::make_unique<rollout::Engine>(engine_model, engine_config(false));
    sync::WeightSync ws(MPI_COMM_WORLD, trainer, receiver, 1 << 20, trainer ? rank : -1);
    sync::DeviceWeightSync ds(MPI_COMM_WORLD, ws.bcast_comm(), ws.is_source(), receiver, 4096 + 6);
    const model::DeviceWeights* dst = receiver ? engine->runner().device_weights_for_sync() : nullptr;
    REQUIRE(ds.sync(trainer ? &source : nullptr, dst, trainer ? &tp : nullptr));
    if (receiver) {
      model::Decoder ref_model(c);
      model::init_random(c, ref_model.params(), seed, 0.05f);
      rollout::Engine reference(ref_model, engine_config(false));
      check_same_device_weights(*dst, *reference.runner().device_weights_for_sync());
      std::printf("rank %d: %s weights of a TP=2 trainer over %s, %lld bytes, equal to the host path's\n", rank,
                  bf16 ? "bf16" : "fp32", ds.transport(), static_cast<long long>(ds.bytes_sent()));
    }
    std::string report;
    CHECK(ds.check_equal(ws.is_source() ? &source : nullptr, dst, &report));
    if (receiver) flip_byte(*dst, 3);
    CHECK_FALSE(ds.check_equal(ws.is_source() ? &source : nullptr, dst, &report));
    // Without the TP group the source's shard is not the whole model: every rank falls back.
    CHECK_FALSE(ds.sync(ws.is_source() ? &source : nullptr, dst));
  }
  tp_device.reset();
  if (tp_comm != MPI_COMM_NULL) MPI_Comm_free(&tp_comm);
}
