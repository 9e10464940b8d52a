// Tests of reward post-processing, every advantage estimator and single-rank whitening, against values computed
// by hand or by straightforward references written here (explicit sums rather than the code's recurrences).
#include <catch2/catch.hpp>

#include <cmath>
#include <random>

#include "core/error.h"
#include "train/advantages.h"

using namespace slime::train;
using Catch::Matchers::Contains;

namespace {

std::vector<double> as_double(const std::vector<float>& values) { return {values.begin(), values.end()}; }

// R_t = sum_{k >= 0} gamma^k rho_{t+k}, written as the explicit double sum.
std::vector<double> explicit_discounted_sum(const std::vector<double>& rho, double gamma) {
  std::vector<double> out(rho.size(), 0.0);
  for (size_t t = 0; t < rho.size(); ++t)
    for (size_t k = t; k < rho.size(); ++k) out[t] += std::pow(gamma, static_cast<double>(k - t)) * rho[k];
  return out;
}

}  // namespace

// ---- reward post-processing --------------------------------------------------------------------------------------

TEST_CASE("grpo rewards: group mean and unbiased std + 1e-6", "[advantages]") {
  RewardPostProcessConfig config;
  config.n_samples_per_prompt = 4;
  config.rollout_batch_size = 2;
  const std::vector<float> raw = {1, 0, 0, 1, 1, 1, 1, 0};
  const PostProcessedRewards r = post_process_rewards(raw, config);
  CHECK(r.raw == raw);
  // group 1: mean 0.5, unbiased std sqrt(4 * 0.25 / 3) = 0.57735
  const double std1 = std::sqrt(1.0 / 3.0) + 1e-6;
  CHECK(r.normalized[0] == Approx(0.5 / std1));
  CHECK(r.normalized[1] == Approx(-0.5 / std1));
  // group 2: mean 0.75, squares 3 * 0.0625 + 0.5625 = 0.75, unbiased var 0.25
  const double std2 = 0.5 + 1e-6;
  CHECK(r.normalized[4] == Approx(0.25 / std2));
  CHECK(r.normalized[7] == Approx(-0.75 / std2));

  SECTION("a group with equal rewards becomes zeros (std 0, the 1e-6 keeps it finite)") {
    const PostProcessedRewards flat = post_process_rewards({2, 2, 2, 2, 1, 1, 1, 1}, config);
    for (float value : flat.normalized) CHECK(value == 0.0f);
  }
  SECTION("Dr.GRPO: no std division") {
    config.grpo_std_normalization = false;
    const PostProcessedRewards dr = post_process_rewards(raw, config);
    CHECK(dr.normalized[0] == Approx(0.5));
    CHECK(dr.normalized[7] == Approx(-0.75));
  }
  SECTION("--disable-rewards-normalization: unchanged") {
    config.rewards_normalization = false;
    CHECK(post_process_rewards(raw, config).normalized == raw);
  }
  SECTION("counts that do not match rollout_batch_size x n: the whole batch is one group") {
    const std::vector<float> fan_out = {3, 0, 0};  // mean 1, unbiased std sqrt((4 + 1 + 1) / 2) = sqrt(3)
    const PostProcessedRewards one_group = post_process_rewards(fan_out, config);
    CHECK(one_group.normalized[0] == Approx(2.0 / (std::sqrt(3.0) + 1e-6)));
    CHECK(one_group.normalized[1] == Approx(-1.0 / (std::sqrt(3.0) + 1e-6)));
  }
  SECTION("reinforce_plus_plus_baseline: mean subtraction only; ppo and reinforce_plus_plus: raw") {
    config.advantage_estimator = AdvantageEstimator::reinforce_plus_plus_baseline;
    CHECK(post_process_rewards(raw, config).normalized[7] == Approx(-0.75));
    config.advantage_estimator = AdvantageEstimator::ppo;
    CHECK(post_process_rewards(raw, config).normalized == raw);
    config.advantage_estimator = AdvantageEstimator::reinforce_plus_plus;
    CHECK(post_process_rewards(raw, config).normalized == raw);
  }
}

TEST_CASE("n_samples_per_prompt == 1: std normalisation off, each reward its own group", "[advantages]") {
  RewardPostProcessConfig config;
  config.n_samples_per_prompt = 1;
  config.rollout_batch_size = 3;
  const PostProcessedRewards r = post_process_rewards({1, 0, 5}, config);
  CHECK(r.normalized == std::vector<float>{0, 0, 0});
  // A single reward that is one group of size 1 with std normalisation requested is an error, not a NaN.
  config.n_samples_per_prompt = 4;
  REQUIRE_THROWS_WITH(post_process_rewards({1}, config), Contains("no unbiased std"));
}

// ---- advantage estimators ----------------------------------------------------------------------------------------

TEST_CASE("grpo/gspo/cispo broadcast the scalar reward; kl_coef only reaches the logged kl", "[advantages]") {
  RolloutTokens rollout;
  rollout.offsets = {0, 2, 5};
  rollout.loss_mask = {1, 1, 0, 1, 1};
  rollout.rewards = {0.5f, -1.5f};
  rollout.old_logprobs = {-1, -1, -1, -1, -1};
  rollout.ref_logprobs = {-1.5f, -1, -1, -1, -0.5f};
  for (AdvantageEstimator estimator : {AdvantageEstimator::grpo, AdvantageEstimator::gspo, AdvantageEstimator::cispo}) {
    AdvantageConfig config;
    config.advantage_estimator = estimator;
    config.kl_coef = 0.1;
    const AdvantagesAndReturns r = compute_advantages_and_returns(rollout, config, MPI_COMM_NULL);
    CHECK(r.advantages == std::vector<float>{0.5f, 0.5f, -1.5f, -1.5f, -1.5f});
    CHECK(r.returns == r.advantages);
    CHECK(r.kl[0] == Approx(0.5));  // k1 = old - ref
    CHECK(r.kl[4] == Approx(-0.5));
  }
}

TEST_CASE("reinforce++ returns: masked kl rewards, reward at the last masked token, gamma < 1, variable lengths",
          "[advantages]") {
  // slime's test_discounted_returns case plus a longer sample.
  RolloutTokens rollout;
  rollout.offsets = {0, 5, 8, 140};
  rollout.rewards = {2.0f, -1.0f, 0.5f};
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  const std::vector<float> kl_first = {0.2f, 0.1f, 0.3f, 0.4f, 0.5f}, kl_second = {0.4f, 0.2f, 0.1f};
  rollout.loss_mask = {0, 1, 1, 1, 0, 1, 1, 1};
  std::vector<float> target_kl(kl_first);
  target_kl.insert(target_kl.end(), kl_second.begin(), kl_second.end());
  for (int t = 0; t < 132; ++t) {
    target_kl.push_back(0.3f * uniform(rng));
    rollout.loss_mask.push_back(t < 120 && uniform(rng) > -0.6f ? 1.0f : 0.0f);  // trailing masked tokens
  }
  // k1 kl = old - ref: ref = old - kl
  for (float kl : target_kl) {
    rollout.old_logprobs.push_back(-1.0f);
    rollout.ref_logprobs.push_back(-1.0f - kl);
  }
  AdvantageConfig config;
  config.advantage_estimator = AdvantageEstimator::reinforce_plus_plus;
  config.kl_coef = 0.1;
  config.gamma = 0.99;
  const AdvantagesAndReturns r = compute_advantages_and_returns(rollout, config, MPI_COMM_NULL);
  for (size_t s = 0; s < 3; ++s) {
    std::vector<double> rho;
    int64_t last = -1;
    for (int64_t t = rollout.offsets[s]; t < rollout.offsets[s + 1]; ++t) {
      const double kl = static_cast<double>(rollout.old_logprobs[t]) - rollout.ref_logprobs[t];
      rho.push_back(-config.kl_coef * kl * rollout.loss_mask[t]);
      if (rollout.loss_mask[t] != 0) last = t - rollout.offsets[s];
    }
    rho[last] += rollout.rewards[s];
    const std::vector<double> expected = explicit_discounted_sum(rho, config.gamma);
    for (size_t k = 0; k < expected.size(); ++k) {
      INFO("sample " << s << " token " << k);
      CHECK(r.returns[rollout.offsets[s] + k] == Approx(expected[k]).epsilon(1e-6).margin(1e-7));
      CHECK(r.advantages[rollout.offsets[s] + k] == r.returns[rollout.offsets[s] + k]);
    }
  }
  // First sample by hand at its last masked token (index 3): rho = -0.1 * 0.4 + 2, nothing after it but token 4's
  // masked zero.
  CHECK(r.returns[3] == Approx(2.0 - 0.04).epsilon(1e-6));
  CHECK(r.returns[4] == 0.0f);

  SECTION("a fully masked sample is an error") {
    rollout.loss_mask[5] = rollout.loss_mask[6] = rollout.loss_mask[7] = 0;
    REQUIRE_THROWS_WITH(compute_advantages_and_returns(rollout, config, MPI_COMM_NULL),
                        Contains("sample 1 (3 tokens) is fully masked"));
  }
}

TEST_CASE("discounted_returns: gamma 0, 0.5, 1 against the explicit sum", "[advantages]") {
  std::mt19937 rng(11);
  std::normal_distribution<double> normal;
  for (double gamma : {0.0, 0.5, 0.99, 1.0}) {
    std::vector<double> rewards(300);
    for (double& reward : rewards) reward = normal(rng);
    const std::vector<double> expected = explicit_discounted_sum(rewards, gamma);
    const std::vector<double> actual = discounted_returns(rewards, gamma);
    for (size_t t = 0; t < rewards.size(); ++t) CHECK(actual[t] == Approx(expected[t]).epsilon(1e-9).margin(1e-9));
  }
}

TEST_CASE("reinforce++ baseline: reward - kl_coef * kl on every token (no mask)", "[advantages]") {
  RolloutTokens rollout;
  rollout.offsets = {0, 3};
  rollout.loss_mask = {1, 0, 1};
  rollout.rewards = {0.25f};
  rollout.old_logprobs = {-1, -1, -1};
  rollout.ref_logprobs = {-2, -1, -0.5f};
  AdvantageConfig config;
  config.advantage_estimator = AdvantageEstimator::reinforce_plus_plus_baseline;
  config.kl_coef = 0.5;
  config.kl_loss_type = KlType::k2;  // (old - ref)^2 / 2 = 0.5, 0, 0.125
  const AdvantagesAndReturns r = compute_advantages_and_returns(rollout, config, MPI_COMM_NULL);
  CHECK(as_double(r.advantages) == std::vector<double>{0.25 - 0.25, 0.25, 0.25 - 0.0625});
  CHECK(r.returns == r.advantages);
}

TEST_CASE("ppo: GAE with values, gamma, lambda, kl shaping; returns = advantages + values", "[advantages]") {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  RolloutTokens rollout;
  rollout.offsets = {0, 1, 6, 206};
  rollout.rewards = {1.0f, -0.5f, 2.0f};
  for (int t = 0; t < 206; ++t) {
    rollout.loss_mask.push_back(t % 7 == 3 ? 0.0f : 1.0f);  // GAE ignores the mask
    rollout.values.push_back(uniform(rng));
    rollout.old_logprobs.push_back(-1.0f + 0.2f * uniform(rng));
    rollout.ref_logprobs.push_back(-1.0f + 0.2f * uniform(rng));
  }
  AdvantageConfig config;
  config.advantage_estimator = AdvantageEstimator::ppo;
  config.kl_coef = 0.05;
  config.kl_loss_type = KlType::k3;
  config.gamma = 0.99;
  config.lambd = 0.95;
  const AdvantagesAndReturns r = compute_advantages_and_returns(rollout, config, MPI_COMM_NULL);
  for (size_t s = 0; s < 3; ++s) {
    const int64_t begin = rollout.offsets[s], length = rollout.offsets[s + 1] - begin;
    std::vector<double> delta(length);
    for (int64_t k = 0; k < length; ++k) {
      const double log_ratio = static_cast<double>(rollout.old_logprobs[begin + k]) - rollout.ref_logprobs[begin + k];
      double rho = -config.kl_coef * (std::exp(-log_ratio) - 1 + log_ratio);
      if (k == length - 1) rho += rollout.rewards[s];
      const double next_value = k + 1 < length ? rollout.values[begin + k + 1] : 0.0;
      delta[k] = rho + config.gamma * next_value - rollout.values[begin + k];
    }
    const std::vector<double> expected = explicit_discounted_sum(delta, config.gamma * config.lambd);
    for (int64_t k = 0; k < length; ++k) {
      INFO("sample " << s << " token " << k);
      CHECK(r.advantages[begin + k] == Approx(expected[k]).epsilon(1e-5).margin(1e-6));
      CHECK(r.returns[begin + k] == Approx(expected[k] + rollout.values[begin + k]).epsilon(1e-5).margin(1e-6));
    }
  }
  // One-token sample by hand: A = reward - kl_coef * kl - V.
  const double lr = static_cast<double>(rollout.old_logprobs[0]) - rollout.ref_logprobs[0];
  CHECK(r.advantages[0] == Approx(1.0 - 0.05 * (std::exp(-lr) - 1 + lr) - rollout.values[0]).epsilon(1e-6));

  SECTION("values are required") {
    rollout.values.clear();
    REQUIRE_THROWS_WITH(compute_advantages_and_returns(rollout, config, MPI_COMM_NULL),
                        Contains("values (needed by ppo) has 0 entries, expected 206"));
  }
}

// ---- whitening ---------------------------------------------------------------------------------------------------

TEST_CASE("masked whitening on one rank: masked unbiased mean/var, eps 1e-8, applied to every token",
          "[advantages]") {
  std::vector<float> values = {1, 2, 3, 100, 4};
  const std::vector<float> mask = {1, 1, 1, 0, 1};
  masked_whiten(values, mask, MPI_COMM_NULL);
  // masked: 1 2 3 4 -> mean 2.5, unbiased var 5/3
  const double inverse_std = 1.0 / std::sqrt(5.0 / 3.0 + 1e-8);
  CHECK(values[0] == Approx(-1.5 * inverse_std));
  CHECK(values[3] == Approx(97.5 * inverse_std));  // masked tokens are whitened too
  CHECK(values[4] == Approx(1.5 * inverse_std));

  std::vector<float> single = {5, 7};
  masked_whiten(single, {0, 1}, MPI_COMM_NULL);  // one token: no Bessel correction, var 0 -> / sqrt(1e-8)
  CHECK(single[1] == 0.0f);
  CHECK(single[0] == Approx(-2.0 / std::sqrt(1e-8)));

  std::vector<float> nothing = {1, 2};
  REQUIRE_THROWS_WITH(masked_whiten(nothing, {0, 0}, MPI_COMM_NULL), Contains("loss-mask sum"));
}

TEST_CASE("normalize_advantages whitens advantages, not returns", "[advantages]") {
  RolloutTokens rollout;
  rollout.offsets = {0, 2, 4};
  rollout.loss_mask = {1, 1, 1, 0};
  rollout.rewards = {1.0f, -1.0f};
  AdvantageConfig config;
  config.normalize_advantages = true;
  const AdvantagesAndReturns r = compute_advantages_and_returns(rollout, config, MPI_COMM_NULL);
  // masked values 1, 1, -1: mean 1/3, unbiased var (4/9 * 2 + 16/9) / 2 = 4/3
  const double inverse_std = 1.0 / std::sqrt(4.0 / 3.0 + 1e-8);
  CHECK(r.advantages[0] == Approx((1 - 1.0 / 3) * inverse_std));
  CHECK(r.advantages[3] == Approx((-1 - 1.0 / 3) * inverse_std));
  CHECK(r.returns == std::vector<float>{1, 1, -1, -1});
}

TEST_CASE("advantages: bad input is a slime::Error", "[advantages]") {
  RolloutTokens rollout;
  rollout.offsets = {0, 2};
  rollout.loss_mask = {1, 1};
  rollout.rewards = {1.0f, 2.0f};
  AdvantageConfig config;
  REQUIRE_THROWS_WITH(compute_advantages_and_returns(rollout, config, MPI_COMM_NULL),
                      Contains("rewards has 2 entries, expected 1"));
  rollout.rewards = {1.0f};
  config.kl_coef = 0.1;
  REQUIRE_THROWS_WITH(compute_advantages_and_returns(rollout, config, MPI_COMM_NULL),
                      Contains("old_logprobs (needed for --kl-coef != 0) has 0 entries, expected 2"));
  config.kl_coef = 0;
  rollout.offsets = {0, 3};
  REQUIRE_THROWS_WITH(compute_advantages_and_returns(rollout, config, MPI_COMM_NULL),
                      Contains("loss_mask has 2 entries, expected 3"));
}
