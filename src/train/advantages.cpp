// Reward post-processing, advantage estimators and distributed advantage whitening (see advantages.h).
#include "train/advantages.h"

#include <cmath>

#include "core/error.h"

namespace slime::train {

// ---- reward post-processing ------------------------------------------------------------------------------------

PostProcessedRewards post_process_rewards(const std::vector<float>& raw_rewards,
                                          const RewardPostProcessConfig& config) {
  PostProcessedRewards result{raw_rewards, raw_rewards};
  const AdvantageEstimator estimator = config.advantage_estimator;
  const bool group_estimator = estimator == AdvantageEstimator::grpo || estimator == AdvantageEstimator::gspo ||
                               estimator == AdvantageEstimator::cispo;
  if (!(group_estimator || estimator == AdvantageEstimator::reinforce_plus_plus_baseline) ||
      !config.rewards_normalization || raw_rewards.empty())
    return result;
  SLIME_CHECK(config.n_samples_per_prompt >= 1, "--n-samples-per-prompt must be >= 1, got ",
              config.n_samples_per_prompt);

  const size_t count = raw_rewards.size();
  const size_t group_size =
      count == static_cast<size_t>(config.n_samples_per_prompt * config.rollout_batch_size)
          ? static_cast<size_t>(config.n_samples_per_prompt)
          : count;  // counts don't match (fan-out, filtered groups): the whole batch is one group
  // slime turns std normalisation off when n_samples_per_prompt == 1 (its argument validation does it).
  const bool divide_by_std = group_estimator && config.grpo_std_normalization && config.n_samples_per_prompt > 1;

  for (size_t begin = 0; begin < count; begin += group_size) {
    double mean = 0;
    for (size_t i = begin; i < begin + group_size; ++i) mean += raw_rewards[i];
    mean /= static_cast<double>(group_size);
    double divisor = 1.0;
    if (divide_by_std) {
      SLIME_CHECK(group_size >= 2, "reward std normalisation: a group of ", group_size,
                  " sample has no unbiased std (", count, " rewards, expected rollout_batch_size x "
                  "n_samples_per_prompt = ", config.rollout_batch_size * config.n_samples_per_prompt,
                  "); use --disable-grpo-std-normalization");
      double squares = 0;
      for (size_t i = begin; i < begin + group_size; ++i) squares += (raw_rewards[i] - mean) * (raw_rewards[i] - mean);
      divisor = std::sqrt(squares / static_cast<double>(group_size - 1)) + 1e-6;
    }
    for (size_t i = begin; i < begin + group_size; ++i)
      result.normalized[i] = static_cast<float>((raw_rewards[i] - mean) / divisor);
  }
  return result;
}

// ---- scans -----------------------------------------------------------------------------------------------------

std::vector<double> discounted_returns(const std::vector<double>& rewards, double gamma) {
  std::vector<double> returns(rewards.size());
  double running = 0;
  for (size_t t = rewards.size(); t-- > 0;) {
    running = rewards[t] + gamma * running;
    returns[t] = running;
  }
  return returns;
}

// ---- whitening -------------------------------------------------------------------------------------------------

void masked_whiten(std::vector<float>& values, const std::vector<float>& mask, MPI_Comm comm, double epsilon) {
  SLIME_CHECK(values.size() == mask.size(), "masked_whiten: ", values.size(), " values but ", mask.size(),
              " mask entries");
  double stats[3] = {0, 0, 0};  // sum m*x, sum m*x^2, sum m
  for (size_t t = 0; t < values.size(); ++t) {
    stats[0] += static_cast<double>(mask[t]) * values[t];
    stats[1] += static_cast<double>(mask[t]) * values[t] * values[t];
    stats[2] += mask[t];
  }
  if (comm != MPI_COMM_NULL) {
    const int rc = MPI_Allreduce(MPI_IN_PLACE, stats, 3, MPI_DOUBLE, MPI_SUM, comm);
    SLIME_CHECK(rc == MPI_SUCCESS, "masked_whiten: MPI_Allreduce of the advantage statistics failed (code ", rc, ")");
  }
  const double count = stats[2];
  SLIME_CHECK(count != 0, "masked_whiten: the loss-mask sum over all data-parallel ranks is zero, nothing to whiten");
  const double mean = stats[0] / count;
  double variance = stats[1] / count - mean * mean;
  if (count >= 2) variance *= count / (count - 1);  // Bessel's correction
  const double inverse_std = 1.0 / std::sqrt(variance + epsilon);
  for (float& value : values) value = static_cast<float>((value - mean) * inverse_std);
}

// ---- advantages and returns ------------------------------------------------------------------------------------

namespace {

void check_rollout(const RolloutTokens& rollout, const AdvantageConfig& config) {
  const char* where = "compute_advantages_and_returns";
  SLIME_CHECK(!rollout.offsets.empty() && rollout.offsets.front() == 0, where,
              ": offsets must hold S + 1 entries starting at 0");
  for (size_t s = 1; s < rollout.offsets.size(); ++s)
    SLIME_CHECK(rollout.offsets[s] >= rollout.offsets[s - 1], where, ": offsets must not decrease, but offsets[", s,
                "] = ", rollout.offsets[s], " < offsets[", s - 1, "] = ", rollout.offsets[s - 1]);
  const size_t tokens = static_cast<size_t>(rollout.offsets.back());
  const size_t samples = rollout.offsets.size() - 1;
  auto check_tokens = [&](const char* name, const std::vector<float>& field) {
    SLIME_CHECK(field.size() == tokens, where, ": ", name, " has ", field.size(), " entries, expected ", tokens,
                " (one per response token: offsets.back())");
  };
  check_tokens("loss_mask", rollout.loss_mask);
  SLIME_CHECK(rollout.rewards.size() == samples, where, ": rewards has ", rollout.rewards.size(),
              " entries, expected ", samples, " (one per sample)");
  if (config.kl_coef != 0) {
    check_tokens("old_logprobs (needed for --kl-coef != 0)", rollout.old_logprobs);
    check_tokens("ref_logprobs (needed for --kl-coef != 0)", rollout.ref_logprobs);
  }
  if (config.advantage_estimator == AdvantageEstimator::ppo) check_tokens("values (needed by ppo)", rollout.values);
}

}  // namespace

AdvantagesAndReturns compute_advantages_and_returns(const RolloutTokens& rollout, const AdvantageConfig& config,
                                                    MPI_Comm data_parallel_comm) {
  check_rollout(rollout, config);
  const size_t tokens = rollout.loss_mask.size();
  const size_t samples = rollout.offsets.size() - 1;

  AdvantagesAndReturns result;
  result.kl.assign(tokens, 0.0f);
  std::vector<double> kl(tokens, 0.0);
  if (config.kl_coef != 0) {
    for (size_t t = 0; t < tokens; ++t) {
      kl[t] = approx_kl(rollout.old_logprobs[t], rollout.ref_logprobs[t], config.kl_loss_type).value;
      result.kl[t] = static_cast<float>(kl[t]);
    }
  }

  std::vector<double> advantages(tokens), returns(tokens);
  for (size_t s = 0; s < samples; ++s) {
    const int64_t begin = rollout.offsets[s], end = rollout.offsets[s + 1];
    const double reward = rollout.rewards[s];
    switch (config.advantage_estimator) {
      case AdvantageEstimator::grpo:
      case AdvantageEstimator::gspo:
      case AdvantageEstimator::cispo:
        for (int64_t t = begin; t < end; ++t) advantages[t] = returns[t] = reward;
        break;
      case AdvantageEstimator::reinforce_plus_plus_baseline:
        for (int64_t t = begin; t < end; ++t) advantages[t] = returns[t] = reward - config.kl_coef * kl[t];
        break;
      case AdvantageEstimator::reinforce_plus_plus: {
        int64_t last_masked = -1;
        std::vector<double> token_rewards(end - begin);
        for (int64_t t = begin; t < end; ++t) {
          token_rewards[t - begin] = -config.kl_coef * kl[t] * rollout.loss_mask[t];
          if (rollout.loss_mask[t] != 0) last_masked = t;
        }
        SLIME_CHECK(last_masked >= 0, "reinforce_plus_plus: sample ", s, " (", end - begin,
                    " tokens) is fully masked; its reward has no token to go to");
        token_rewards[last_masked - begin] += reward;
        const std::vector<double> sample_returns = discounted_returns(token_rewards, config.gamma);
        for (int64_t t = begin; t < end; ++t) advantages[t] = returns[t] = sample_returns[t - begin];
        break;
      }
      case AdvantageEstimator::ppo: {
        SLIME_CHECK(end > begin, "ppo: sample ", s, " has an empty response; its reward has no token to go to");
        // Backward GAE: delta_t = rho_t + gamma V_{t+1} - V_t, A_t = delta_t + gamma lambd A_{t+1}.
        double next_value = 0, next_advantage = 0;
        for (int64_t t = end - 1; t >= begin; --t) {
          double token_reward = -config.kl_coef * kl[t];
          if (t == end - 1) token_reward += reward;
          const double value = rollout.values[t];
          const double delta = token_reward + config.gamma * next_value - value;
          advantages[t] = delta + config.gamma * config.lambd * next_advantage;
          returns[t] = advantages[t] + value;
          next_value = value;
          next_advantage = advantages[t];
        }
        break;
      }
    }
  }

  result.advantages.assign(advantages.begin(), advantages.end());
  result.returns.assign(returns.begin(), returns.end());
  if (config.normalize_advantages) masked_whiten(result.advantages, rollout.loss_mask, data_parallel_comm);
  return result;
}

}  // namespace slime::train
