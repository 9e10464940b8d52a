// The trainer with --backend cuda (label gpu; mpirun -np 2): forward, backward and the distributed optimizer on the
// GPU, against the CPU trainer on the same rollouts; data parallel (DP=2) and tensor parallel (TP=2). The test model has head_dim 32, so the GPU runs its fp32
// path and the two agree to fp32 rounding. With two ranks on one GPU the collectives are host-staged MPI; with a
// GPU per rank they are NCCL (the trainer logs which).
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "comm/mpi_utils.h"
#include "comm/parallel.h"
#include "kernels/cuda/device.h"
#include "model/params.h"
#include "train/trainer.h"
#include "train/trainer_test_util.h"

using namespace slime;
using namespace slime::train;
using namespace slime::train::testing;

namespace {

std::vector<std::string> options(const std::string& backend) {
  return {"--hf-checkpoint", golden_model("qwen3_sharded"), "--ref-load", golden_model("qwen3_sharded"),
          "--rollout-batch-size", "8", "--n-samples-per-prompt", "2", "--global-batch-size", "8",
          "--num-rollout", "3", "--lr", "1e-3", "--lr-decay-style", "constant", "--weight-decay", "0.1",
          "--clip-grad", "0.5", "--use-kl-loss", "--kl-loss-coef", "0.1", "--kl-loss-type", "low_var_kl",
          "--entropy-coef", "0.01", "--eps-clip-high", "0.28", "--micro-batch-size", "2",
          "--rollout-temperature", "0.8", "--padded-vocab-size", "1024", "--debug-train-only",
          "--backend", backend};
}

std::vector<std::string> with(std::vector<std::string> base, std::initializer_list<std::string> more) {
  base.insert(base.end(), more);
  return base;
}

// Trains `rollouts` rollouts; returns the weights (host copy, through Trainer::weights()).
Tensor train_rollouts(Trainer& trainer, int rollouts, std::vector<Metrics>* steps, int first = 0) {
  for (int r = first; r < first + rollouts; ++r) {
    RolloutTrainResult result = trainer.train_rollout(r, synthetic_rollout(8, 2, 777, 70 + r));
    if (steps) steps->insert(steps->end(), result.steps.begin(), result.steps.end());
  }
  return trainer.weights().params().flat_values().clone();
}

void check_steps(const std::vector<Metrics>& got, const std::vector<Metrics>& want, double tolerance) {
  REQUIRE(got.size() == want.size());
  for (size_t s = 0; s < got.size(); ++s) {
    INFO("step " << s);
    for (const char* key : {"train/loss", "train/pg_loss", "train/kl_loss", "train/grad_norm", "train/entropy_loss"}) {
      INFO(key << ": " << got[s].at(key) << " vs " << want[s].at(key));
      // margin: pg_loss is a difference of nearly equal sums (group-normalised advantages), ~1e-4 here, so its
      // rounding error follows the loss scale (~0.06), not its own size
      CHECK(got[s].at(key) == Approx(want[s].at(key)).epsilon(tolerance).margin(1e-6));
    }
  }
}

bool have_gpu() {
  if (cuda::device_count() > 0) return true;
  WARN("no GPU visible: skipped");
  return false;
}

}  // namespace

TEST_CASE("the GPU trainer trains like the CPU trainer; data parallel on the GPU like one rank") {
  if (!have_gpu()) return;
  std::vector<Metrics> cpu_steps, gpu_steps;
  Trainer cpu(make_args(options("cpu")), comm::ParallelGroups::single());
  const Tensor cpu_weights = train_rollouts(cpu, 3, &cpu_steps);
  Trainer gpu(make_args(options("cuda")), comm::ParallelGroups::single());
  const Tensor gpu_weights = train_rollouts(gpu, 3, &gpu_steps);
  REQUIRE(cpu_steps.size() == 6);
  CHECK(cpu_steps[5].at("train/grad_norm") > 0);
  const double single_diff = relative_difference(gpu_weights, cpu_weights);
  if (comm::rank(MPI_COMM_WORLD) == 0)
    std::printf("one rank: GPU weights after 6 steps differ from the CPU's by %.3g (relative); loss at step 6 %.9g "
                "(GPU) vs %.9g (CPU)\n", single_diff, gpu_steps[5].at("train/loss"), cpu_steps[5].at("train/loss"));
  INFO("one rank: GPU weights after 6 steps differ from the CPU's by " << single_diff);
  CHECK(single_diff < 1e-5);
  check_steps(gpu_steps, cpu_steps, 1e-4);
  CHECK(gpu.optimizer().step_count() == 6);

  // DP=2 over MPI_COMM_WORLD: on the GPU against the CPU's DP=2 and against one GPU rank.
  comm::ParallelGroups g = comm::ParallelGroups::create(MPI_COMM_WORLD, 1);
  std::vector<Metrics> dp_steps;
  Trainer dp(make_args(options("cuda")), g);
  const Tensor dp_weights = train_rollouts(dp, 3, &dp_steps);
  const double dp_diff = relative_difference(dp_weights, gpu_weights);
  if (g.pool.rank == 0)
    std::printf("DP=%d on the GPU: weights after 6 steps differ from one GPU rank's by %.3g\n", g.dp.size, dp_diff);
  INFO("DP=" << g.dp.size << " on the GPU: weights differ from one GPU rank by " << dp_diff);
  CHECK(dp_diff < 1e-5);
  check_steps(dp_steps, gpu_steps, 1e-4);
  // Every data-parallel rank ends with the same weights (the all-gather).
  Tensor first = dp_weights.clone();
  comm::broadcast(first.raw(), static_cast<int64_t>(first.nbytes()), 0, g.dp.comm);
  CHECK(std::memcmp(first.raw(), dp_weights.raw(), first.nbytes()) == 0);
  g.release();
}

TEST_CASE("tensor parallel on the GPU (TP=2) trains like the CPU trainer's TP=2 and like one GPU rank") {
  if (!have_gpu()) return;
  if (comm::size(MPI_COMM_WORLD) != 2) {
    WARN("TP=2 needs two ranks (mpirun -np 2): skipped");
    return;
  }
  comm::ParallelGroups g = comm::ParallelGroups::create(MPI_COMM_WORLD, 2);
  std::vector<Metrics> one_steps, cpu_steps, gpu_steps;
  Trainer one(make_args(options("cuda")), comm::ParallelGroups::single());
  train_rollouts(one, 3, &one_steps);
  Trainer cpu(make_args(with(options("cpu"), {"--tensor-model-parallel-size", "2"})), g);
  const Tensor cpu_weights = train_rollouts(cpu, 3, &cpu_steps);
  Trainer gpu(make_args(with(options("cuda"), {"--tensor-model-parallel-size", "2"})), g);
  const Tensor gpu_weights = train_rollouts(gpu, 3, &gpu_steps);
  // Each rank holds its TP shard; the CPU trainer's shard of the same run is the reference.
  const double diff = relative_difference(gpu_weights, cpu_weights);
  double worst = diff;
  mpiCheck(MPI_Allreduce(MPI_IN_PLACE, &worst, 1, MPI_DOUBLE, MPI_MAX, g.tp.comm));
  if (g.pool.rank == 0)
    std::printf("TP=2 on the GPU: weight shards after 6 steps differ from the CPU's TP=2 by at most %.3g; loss at "
                "step 6 %.9g (GPU TP=2) vs %.9g (one GPU rank)\n", worst, gpu_steps[5].at("train/loss"),
                one_steps[5].at("train/loss"));
  INFO("TP=2: GPU weight shards differ from the CPU's by " << diff);
  CHECK(diff < 1e-5);
  check_steps(gpu_steps, cpu_steps, 1e-4);
  check_steps(gpu_steps, one_steps, 1e-4);  // the grad norm counts every element once across the TP group
  g.release();
}

TEST_CASE("frozen parameters stay put on the GPU as on the CPU") {
  if (!have_gpu()) return;
  auto run = [](const std::string& backend) {
    Trainer t(make_args(with(options(backend), {"--only-train-params-name-list", "mlp"})),
              comm::ParallelGroups::single());
    const Tensor before = t.weights().params().flat_values().clone();
    std::vector<Metrics> steps;
    const Tensor after = train_rollouts(t, 1, &steps);
    int64_t moved_frozen = 0, moved_trained = 0;
    for (const model::Param& p : t.weights().params().all()) {
      const bool trained = p.name.find("mlp") != std::string::npos;
      int64_t moved = 0;
      for (int64_t i = p.flat_offset; i < p.flat_offset + p.value.numel(); ++i)
        moved += before.data<float>()[i] != after.data<float>()[i];
      (trained ? moved_trained : moved_frozen) += moved;
    }
    CHECK(moved_frozen == 0);
    CHECK(moved_trained > 0);
    return std::make_pair(after, steps);
  };
  const auto cpu = run("cpu");
  const auto gpu = run("cuda");
  CHECK(relative_difference(gpu.first, cpu.first) < 1e-5);
  check_steps(gpu.second, cpu.second, 1e-4);  // the norm counts only trained parameters
}

TEST_CASE("the GPU trainer's gradients equal the CPU's (compute_gradients)") {
  if (!have_gpu()) return;
  const std::vector<TrainSample> samples = synthetic_rollout(8, 2, 777, 5);
  Trainer cpu(make_args(options("cpu")), comm::ParallelGroups::single());
  Trainer gpu(make_args(options("cuda")), comm::ParallelGroups::single());
  const Metrics a = cpu.compute_gradients(samples);
  const Metrics b = gpu.compute_gradients(samples);
  CHECK(b.at("train/loss") == Approx(a.at("train/loss")).epsilon(1e-5));
  const Tensor& ga = cpu.model().params().flat_grads();
  const Tensor& gb = gpu.model().params().flat_grads();
  const double diff = relative_difference(gb, ga);
  if (comm::rank(MPI_COMM_WORLD) == 0)
    std::printf("compute_gradients: GPU gradients differ from the CPU's by %.3g\n", diff);
  INFO("gradient difference " << diff);
  CHECK(diff < 1e-5);
}

TEST_CASE("a GPU run resumes from its checkpoint (weights, Adam moments, step count)") {
  if (!have_gpu()) return;
  const std::string root = "/tmp/slime_trainer_cuda_resume";
  if (comm::rank(MPI_COMM_WORLD) == 0) std::filesystem::remove_all(root);
  MPI_Barrier(MPI_COMM_WORLD);
  const std::vector<std::string> opts =
      with(options("cuda"), {"--save", root, "--load", root, "--lr-decay-style", "cosine", "--lr-warmup-iters", "1"});
  comm::ParallelGroups g = comm::ParallelGroups::create(MPI_COMM_WORLD, 1);  // DP = every rank
  Trainer straight(make_args(opts), g);
  const Tensor want = train_rollouts(straight, 3, nullptr);
  {
    Trainer first(make_args(opts), g);
    train_rollouts(first, 1, nullptr);
    first.save_checkpoint(0);
  }
  Trainer resumed(make_args(opts), g);
  CHECK(resumed.start_rollout_id() == 1);
  CHECK(resumed.optimizer().step_count() == 2);
  const Tensor got = train_rollouts(resumed, 2, nullptr, 1);
  const double diff = relative_difference(got, want);
  if (g.pool.rank == 0)
    std::printf("resume on the GPU (DP=%d): weights differ from the uninterrupted run's by %.3g\n", g.dp.size, diff);
  INFO("resumed run's weights differ from the uninterrupted run's by " << diff);
  // The GPU's fp32 path is deterministic up to the attention backward's atomics: equal to rounding.
  CHECK(diff < 1e-6);
  // Without the optimizer state (--no-load-optim) the moments restart at zero: a visibly different run.
  Trainer fresh(make_args(with(opts, {"--no-load-optim"})), g);
  const Tensor other = train_rollouts(fresh, 2, nullptr, 1);
  CHECK(relative_difference(other, want) > 10 * std::max(diff, 1e-7));
  g.release();
}
