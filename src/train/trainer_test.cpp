// The trainer across ranks (mpirun -np 2): data parallel and tensor parallel give the single-rank result, dynamic
// batching gives fixed micro-batching's, the step gradient matches finite differences of the whole loss, and bad
// input is refused or handled.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <filesystem>

#include "comm/mpi_utils.h"
#include "comm/parallel.h"
#include "model/params.h"
#include "train/trainer.h"
#include "train/trainer_test_util.h"

using namespace slime;
using namespace slime::train;
using namespace slime::train::testing;

namespace {

std::vector<std::string> base_options(int tp) {
  return {"--hf-checkpoint", golden_model("qwen3_sharded"), "--ref-load", golden_model("qwen3_sharded"),
          "--rollout-batch-size", "8", "--n-samples-per-prompt", "2", "--global-batch-size", "8",
          "--num-rollout", "2", "--lr", "1e-3", "--lr-decay-style", "constant", "--weight-decay", "0.1",
          "--clip-grad", "1.0", "--use-kl-loss", "--kl-loss-coef", "0.1", "--kl-loss-type", "low_var_kl",
          "--entropy-coef", "0.01", "--eps-clip-high", "0.28", "--micro-batch-size", "2",
          "--rollout-temperature", "0.8", "--tensor-model-parallel-size", std::to_string(tp),
          "--padded-vocab-size", "1024", "--debug-train-only", "--backend", "cpu"};
}

// Trains two rollouts (4 optimizer steps) and returns the full (TP-gathered) parameters.
Tensor train_two_rollouts(Trainer& trainer, const comm::ParallelGroups& g, std::vector<Metrics>* steps) {
  for (int r = 0; r < 2; ++r) {
    RolloutTrainResult result = trainer.train_rollout(r, synthetic_rollout(8, 2, 777, 10 + r));
    steps->insert(steps->end(), result.steps.begin(), result.steps.end());
  }
  // Gather the shards into full tensors (sum of disjoint inserts over the TP group).
  int64_t total = 0;
  for (const model::Param& p : trainer.model().params().all()) total += shape_numel(p.global_shape);
  Tensor full = Tensor::zeros({total}, DType::F32);
  int64_t offset = 0;
  for (const model::Param& p : trainer.model().params().all()) {
    Tensor global = Tensor::zeros(p.global_shape, DType::F32);
    model::insert_shard(p, p.value, global);
    if (p.replicated() && g.tp.rank != 0) global.fill_zero();
    std::memcpy(full.data<float>() + offset, global.raw(), global.nbytes());
    offset += global.numel();
  }
  g.tp.allreduce_sum(full.data<float>(), total);
  return full;
}

}  // namespace

TEST_CASE("DP=2 and TP=2 train like one rank; dynamic batching like fixed micro-batches") {
  std::vector<Metrics> single_steps;
  Trainer single(make_args(base_options(1)), comm::ParallelGroups::single());
  const Tensor reference = train_two_rollouts(single, comm::ParallelGroups::single(), &single_steps);
  REQUIRE(single_steps.size() == 4);
  CHECK(single_steps[0].at("train/ppo_kl") == Approx(0.0).margin(1e-12));  // old log-probs = current at step 0
  CHECK(std::isfinite(single_steps[3].at("train/loss")));

  for (int tp : {1, 2}) {  // DP=2 (TP=1), then TP=2 (DP=1)
    comm::ParallelGroups g = comm::ParallelGroups::create(MPI_COMM_WORLD, tp);
    std::vector<Metrics> steps;
    Trainer trainer(make_args(base_options(tp)), g);
    const Tensor params = train_two_rollouts(trainer, g, &steps);
    const double diff = relative_difference(params, reference);
    INFO("tp " << tp << " dp " << g.dp.size << ": parameters after 4 steps differ by " << diff);
    CHECK(diff < (tp == 1 ? 1e-6 : 1e-5));
    for (size_t s = 0; s < steps.size(); ++s) {
      CHECK(steps[s].at("train/loss") == Approx(single_steps[s].at("train/loss")).epsilon(1e-4));
      CHECK(steps[s].at("train/grad_norm") == Approx(single_steps[s].at("train/grad_norm")).epsilon(1e-4));
    }
    g.release();
  }

  // Dynamic batching (token budget) on one rank gives the fixed micro-batch result.
  std::vector<std::string> dynamic = base_options(1);
  dynamic.insert(dynamic.end(), {"--use-dynamic-batch-size", "--max-tokens-per-gpu", "40"});
  std::vector<Metrics> dynamic_steps;
  Trainer packed(make_args(dynamic), comm::ParallelGroups::single());
  const Tensor params = train_two_rollouts(packed, comm::ParallelGroups::single(), &dynamic_steps);
  CHECK(relative_difference(params, reference) < 1e-6);
}

TEST_CASE("PPO with a critic: DP=2 and TP=2 train like one rank") {
  std::vector<std::string> ppo = base_options(1);
  ppo.insert(ppo.end(), {"--advantage-estimator", "ppo", "--normalize-advantages", "--gamma", "0.99", "--lambd",
                         "0.95", "--value-clip", "0.2", "--num-critic-only-steps", "1", "--kl-coef", "0.0"});
  auto run = [&](const comm::ParallelGroups& g, int tp) {
    std::vector<std::string> options = ppo;
    options.insert(options.end(), {"--tensor-model-parallel-size", std::to_string(tp)});
    Trainer trainer(make_args(options), g);
    std::vector<Metrics> steps;
    Tensor actor = train_two_rollouts(trainer, g, &steps);
    // rollout 0 is critic-only: the actor's metrics appear from rollout 1 on
    CHECK(steps[0].count("train/pg_loss") == 0);
    CHECK(steps[2].count("train/pg_loss") == 1);
    CHECK(steps[0].count("train/critic-value_loss") == 1);
    const model::Param& head = trainer.critic()->params().at("output_layer.weight");
    Tensor head_copy = head.value.clone();
    return std::make_pair(actor, head_copy);
  };
  const auto reference = run(comm::ParallelGroups::single(), 1);
  for (int tp : {1, 2}) {
    comm::ParallelGroups g = comm::ParallelGroups::create(MPI_COMM_WORLD, tp);
    const auto result = run(g, tp);
    INFO("tp " << tp);
    CHECK(relative_difference(result.first, reference.first) < (tp == 1 ? 1e-6 : 1e-5));
    CHECK(relative_difference(result.second, reference.second) < (tp == 1 ? 1e-6 : 1e-5));
    g.release();
  }
}

TEST_CASE("resume through --save / --load continues bit for bit (actor, critic, LR schedule)") {
  for (const char* estimator : {"grpo", "ppo"}) {
    const std::string root = "/tmp/slime_trainer_resume_" + std::string(estimator);
    if (comm::rank(MPI_COMM_WORLD) == 0) std::filesystem::remove_all(root);
    MPI_Barrier(MPI_COMM_WORLD);
    std::vector<std::string> options = base_options(2);
    options.insert(options.end(), {"--advantage-estimator", estimator, "--save", root, "--load", root,
                                   "--lr-decay-style", "cosine", "--lr-warmup-iters", "1", "--num-rollout", "3"});
    if (std::string(estimator) == "ppo") options.insert(options.end(), {"--normalize-advantages"});
    comm::ParallelGroups g = comm::ParallelGroups::create(MPI_COMM_WORLD, 2);  // TP=2
    // Uninterrupted: rollouts 0, 1, 2 (the save directory is still empty: nothing to resume).
    Trainer straight(make_args(options), g);
    for (int r = 0; r < 3; ++r) straight.train_rollout(r, synthetic_rollout(8, 2, 777, 50 + r));
    {
      Trainer first(make_args(options), g);
      CHECK(first.start_rollout_id() == 0);
      first.train_rollout(0, synthetic_rollout(8, 2, 777, 50));
      first.save_checkpoint(0, {{"dataset_offset", 16}});
    }
    Trainer resumed(make_args(options), g);
    CHECK(resumed.start_rollout_id() == 1);
    CHECK(resumed.loaded_extra().at("dataset_offset") == 16);
    for (int r = 1; r < 3; ++r) resumed.train_rollout(r, synthetic_rollout(8, 2, 777, 50 + r));
    const Tensor& a = straight.model().params().flat_values();
    const Tensor& b = resumed.model().params().flat_values();
    INFO(estimator);
    CHECK(std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0);
    if (straight.critic()) {
      const Tensor& ca = straight.critic()->params().flat_values();
      const Tensor& cb = resumed.critic()->params().flat_values();
      CHECK(std::memcmp(ca.raw(), cb.raw(), ca.nbytes()) == 0);
    }
    CHECK(resumed.lr_scheduler().num_steps() == straight.lr_scheduler().num_steps());
    g.release();
  }
}

TEST_CASE("the step gradient of the whole loss matches finite differences") {
  // Old log-probs pinned to the current ones (--use-rollout-logprobs), so the loss is a function of the weights
  // alone: PPO clip, clip-higher, low_var_kl KL loss against the reference, entropy bonus, per-sample token means.
  std::vector<std::string> options = base_options(1);
  options.insert(options.end(), {"--use-rollout-logprobs", "--global-batch-size", "16"});
  Trainer trainer(make_args(options), comm::ParallelGroups::single());
  std::vector<TrainSample> samples = synthetic_rollout(8, 2, 777, 3);
  const std::vector<float> logprobs = trainer.response_logprobs(samples);
  int64_t k = 0;
  for (TrainSample& s : samples)
    for (int64_t j = 0; j < s.response_length; ++j) s.rollout_logprobs[j] = logprobs[k++] - 0.05f;  // ratio ~1.05
  // Move away from the reference so the KL term has a gradient.
  model::ParamRegistry& params = trainer.model().params();
  for (int64_t i = 0; i < params.numel(); i += 7) params.flat_values().data<float>()[i] *= 1.05f;

  trainer.compute_gradients(samples);
  const Tensor grads = params.flat_grads().clone();
  int checked = 0;
  for (model::Param& p : params.all()) {
    // The entry with the largest gradient of each parameter.
    const float* g = grads.data<float>() + p.flat_offset;
    int64_t best = 0;
    for (int64_t i = 1; i < p.value.numel(); ++i)
      if (std::abs(g[i]) > std::abs(g[best])) best = i;
    float* v = p.value.data<float>() + best;
    const float saved = *v, h = 1e-2f * std::max(1.0f, std::abs(saved));
    *v = saved + h;
    const double up = trainer.compute_gradients(samples).at("train/loss");
    *v = saved - h;
    const double down = trainer.compute_gradients(samples).at("train/loss");
    *v = saved;
    const double numeric = (up - down) / (2.0 * h), analytic = g[best];
    INFO(p.name << "[" << best << "]: numeric " << numeric << " analytic " << analytic);
    CHECK(std::abs(numeric - analytic) <= 2e-2 * std::abs(analytic) + 1e-6);
    ++checked;
  }
  CHECK(checked == static_cast<int>(params.all().size()));
}

TEST_CASE("bad input: batch sizes that do not divide, empty responses, inconsistent samples") {
  // A global batch that does not divide the rollout (validate_args) and micro-batches that do not divide it.
  std::vector<std::string> options = base_options(1);
  options.insert(options.end(), {"--global-batch-size", "5"});
  CHECK_THROWS_WITH(make_args(options), Catch::Contains("--global-batch-size"));
  options = base_options(1);
  options.insert(options.end(), {"--micro-batch-size", "3"});
  {
    // 8 samples in micro-batches of 3 make 3 micro-batches, which 2 data-parallel ranks cannot share evenly.
    comm::ParallelGroups dp2 = comm::ParallelGroups::create(MPI_COMM_WORLD, 1);
    Trainer odd(make_args(options), dp2);
    CHECK_THROWS_WITH(odd.train_rollout(0, synthetic_rollout(8, 2, 777, 1)),
                      Catch::Contains("--micro-batch-size 3, not a multiple of the data-parallel size 2"));
    dp2.release();
  }

  // Empty responses and all-zero masks are defined: they add nothing to the loss and nothing breaks.
  Trainer trainer(make_args(base_options(1)), comm::ParallelGroups::single());
  std::vector<TrainSample> samples = synthetic_rollout(8, 2, 777, 2);
  samples[0].loss_mask.assign(samples[0].response_length, 0.0f);
  samples[1].tokens.resize(samples[1].tokens.size() - samples[1].response_length);
  samples[1].response_length = 0;
  samples[1].loss_mask.clear();
  samples[1].rollout_logprobs.clear();
  RolloutTrainResult result = trainer.train_rollout(0, samples);
  for (const Metrics& m : result.steps)
    for (const auto& [name, value] : m) CHECK(std::isfinite(value));

  // Inconsistent samples are refused with a message naming the sample.
  samples = synthetic_rollout(8, 2, 777, 2);
  samples[3].loss_mask.push_back(1.0f);
  CHECK_THROWS_WITH(trainer.train_rollout(1, samples), Catch::Contains("sample 3: loss_mask has"));
  samples = synthetic_rollout(8, 2, 777, 2);
  samples[2].response_length = static_cast<int64_t>(samples[2].tokens.size());
  CHECK_THROWS_WITH(trainer.train_rollout(1, samples), Catch::Contains("sample 2: response_length"));
  samples = synthetic_rollout(8, 2, 777, 2);
  samples[4].tokens[0] = 5000;
  CHECK_THROWS_WITH(trainer.train_rollout(1, samples), Catch::Contains("outside the vocabulary"));
}
