// Advantage whitening over 2 data-parallel ranks (run under mpirun -np 2): each rank whitens its own samples with
// the global masked statistics, and the result must equal whitening the concatenated data on one rank, which in
// turn must equal a direct two-pass mean/variance computed here. One case leaves a rank with no tokens at all: it
// must still join the collective.
#include <mpi.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <random>

#include "train/advantages.h"

using namespace slime::train;

namespace {

int world_rank() {
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  return rank;
}

// Sample s of the global rollout has lengths[s] tokens; samples go round-robin to the ranks.
struct GlobalRollout {
  std::vector<int> lengths;
  RolloutTokens all;  // every sample, in order
};

GlobalRollout make_rollout(const std::vector<int>& lengths, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  GlobalRollout g;
  g.lengths = lengths;
  g.all.offsets = {0};
  for (int length : lengths) {
    g.all.rewards.push_back(2.0f * uniform(rng));
    for (int t = 0; t < length; ++t) {
      g.all.loss_mask.push_back(t == 0 || uniform(rng) > -0.5f ? 1.0f : 0.0f);  // reinforce++ needs one
      g.all.old_logprobs.push_back(-1.0f + 0.3f * uniform(rng));
      g.all.ref_logprobs.push_back(-1.0f + 0.3f * uniform(rng));
    }
    g.all.offsets.push_back(g.all.offsets.back() + length);
  }
  return g;
}

// This rank's share: samples s with s % ranks == rank (or none when `only_rank0` and rank != 0).
RolloutTokens local_share(const GlobalRollout& g, int rank, int ranks, bool only_rank0,
                          std::vector<int64_t>& global_token_of_local) {
  RolloutTokens local;
  local.offsets = {0};
  for (size_t s = 0; s < g.lengths.size(); ++s) {
    const bool mine = only_rank0 ? rank == 0 : static_cast<int>(s) % ranks == rank;
    if (!mine) continue;
    local.rewards.push_back(g.all.rewards[s]);
    for (int64_t t = g.all.offsets[s]; t < g.all.offsets[s + 1]; ++t) {
      local.loss_mask.push_back(g.all.loss_mask[t]);
      local.old_logprobs.push_back(g.all.old_logprobs[t]);
      local.ref_logprobs.push_back(g.all.ref_logprobs[t]);
      global_token_of_local.push_back(t);
    }
    local.offsets.push_back(local.offsets.back() + g.lengths[s]);
  }
  return local;
}

void check_against_single_rank(bool only_rank0, AdvantageEstimator estimator) {
  int ranks = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &ranks);
  REQUIRE(ranks == 2);
  const int rank = world_rank();
  const GlobalRollout g = make_rollout({7, 3, 12, 1, 9, 5}, 17);
  AdvantageConfig config;
  config.advantage_estimator = estimator;
  config.kl_coef = estimator == AdvantageEstimator::grpo ? 0.0 : 0.2;
  config.gamma = 0.9;
  config.normalize_advantages = true;

  std::vector<int64_t> global_token;
  const RolloutTokens local = local_share(g, rank, ranks, only_rank0, global_token);
  const AdvantagesAndReturns distributed = compute_advantages_and_returns(local, config, MPI_COMM_WORLD);
  const AdvantagesAndReturns single = compute_advantages_and_returns(g.all, config, MPI_COMM_NULL);

  // Direct reference for the single-rank result: unwhitened advantages, then two-pass masked mean / variance.
  AdvantageConfig unwhitened = config;
  unwhitened.normalize_advantages = false;
  const std::vector<float> raw = compute_advantages_and_returns(g.all, unwhitened, MPI_COMM_NULL).advantages;
  double count = 0, sum = 0;
  for (size_t t = 0; t < raw.size(); ++t) {
    count += g.all.loss_mask[t];
    sum += g.all.loss_mask[t] * raw[t];
  }
  const double mean = sum / count;
  double squares = 0;
  for (size_t t = 0; t < raw.size(); ++t) squares += g.all.loss_mask[t] * (raw[t] - mean) * (raw[t] - mean);
  const double inverse_std = 1.0 / std::sqrt(squares / (count - 1) + 1e-8);
  for (size_t t = 0; t < raw.size(); ++t)
    CHECK(single.advantages[t] == Approx((raw[t] - mean) * inverse_std).epsilon(1e-5).margin(1e-6));

  REQUIRE(distributed.advantages.size() == global_token.size());
  for (size_t k = 0; k < global_token.size(); ++k) {
    INFO("rank " << rank << " local token " << k << " = global token " << global_token[k]);
    CHECK(distributed.advantages[k] == Approx(single.advantages[global_token[k]]).epsilon(1e-6).margin(1e-7));
    CHECK(distributed.returns[k] == single.returns[global_token[k]]);
  }
}

}  // namespace

TEST_CASE("whitening over 2 ranks equals whitening the concatenated data (grpo)", "[advantages][mpi]") {
  check_against_single_rank(false, AdvantageEstimator::grpo);
}

TEST_CASE("whitening over 2 ranks equals whitening the concatenated data (reinforce++ with kl)",
          "[advantages][mpi]") {
  check_against_single_rank(false, AdvantageEstimator::reinforce_plus_plus);
}

TEST_CASE("a rank with no tokens still takes part in the whitening collective", "[advantages][mpi]") {
  check_against_single_rank(true, AdvantageEstimator::reinforce_plus_plus_baseline);
}
