// Rewards to advantages, once per rollout before training (slime's RolloutManager._post_process_rewards and
// loss.py::compute_advantages_and_returns, ppo_utils.py, distributed_utils.py::distributed_masked_whiten).
//   post_process_rewards            group mean subtraction / std normalisation of the scalar rewards
//   compute_advantages_and_returns  per-token advantages and returns for every estimator, with optional masked
//                                   whitening of the advantages over all data-parallel ranks
// Scans (discounted returns, GAE) are plain backward loops in double: on a CPU the serial recurrence is exact and
// cheaper than slime's chunked matrix scan, which exists for GPUs.
#pragma once

#include <mpi.h>

#include <cstdint>
#include <vector>

#include "train/loss.h"

namespace slime::train {

// ---- reward post-processing ------------------------------------------------------------------------------------

struct RewardPostProcessConfig {
  AdvantageEstimator advantage_estimator = AdvantageEstimator::grpo;
  bool rewards_normalization = true;   // false: --disable-rewards-normalization
  bool grpo_std_normalization = true;  // false: --disable-grpo-std-normalization (Dr.GRPO); off when n == 1
  int64_t n_samples_per_prompt = 1;
  int64_t rollout_batch_size = 1;
};

struct PostProcessedRewards {
  std::vector<float> raw;         // [S] as given
  std::vector<float> normalized;  // [S] what the advantage estimator uses
};

// grpo/gspo/cispo/reinforce_plus_plus_baseline with rewards normalisation: r - mean(group); grpo/gspo/cispo with
// std normalisation (and n_samples_per_prompt > 1): (r - mean) / (unbiased std + 1e-6). Groups are consecutive
// runs of n_samples_per_prompt samples when there are exactly rollout_batch_size * n_samples_per_prompt rewards,
// otherwise (fan-out, filtered groups) the whole batch is one group. ppo, reinforce_plus_plus: unchanged.
PostProcessedRewards post_process_rewards(const std::vector<float>& raw_rewards,
                                          const RewardPostProcessConfig& config);

// ---- advantages and returns ------------------------------------------------------------------------------------

struct AdvantageConfig {
  AdvantageEstimator advantage_estimator = AdvantageEstimator::grpo;
  double kl_coef = 0.0;               // reward-shaping KL penalty (--kl-coef)
  KlType kl_loss_type = KlType::k1;   // estimator of the reward-shaping KL (slime reuses --kl-loss-type)
  double gamma = 1.0;                 // discount (ppo, reinforce_plus_plus)
  double lambd = 1.0;                 // GAE lambda (ppo)
  bool normalize_advantages = false;  // masked whitening over the data-parallel communicator
};

// One rank's share of a rollout: S samples' response tokens back to back.
struct RolloutTokens {
  std::vector<int64_t> offsets;       // [S + 1]: sample s owns tokens [offsets[s], offsets[s+1])
  std::vector<float> loss_mask;       // [N] 0/1
  std::vector<float> rewards;         // [S] post-processed scalar rewards (PostProcessedRewards::normalized)
  std::vector<float> old_logprobs;    // [N] pi_old (the engine's with --use-rollout-logprobs); needed when kl_coef != 0
  std::vector<float> ref_logprobs;    // [N] reference model; needed when kl_coef != 0
  std::vector<float> values;          // [N] critic values; needed by ppo
};

struct AdvantagesAndReturns {
  std::vector<float> advantages;  // [N] whitened when normalize_advantages
  std::vector<float> returns;     // [N] never whitened (the critic's target for ppo)
  std::vector<float> kl;          // [N] the reward-shaping KL per token (zero when kl_coef == 0), for logging
};

// slime's compute_advantages_and_returns. kl_t = approx_kl(old_t, ref_t) when kl_coef != 0, else 0.
//   grpo, gspo, cispo             A_t = R_t = reward_i
//   reinforce_plus_plus           rho_t = -kl_coef * kl_t * m_t, plus reward_i at the sample's last masked token;
//                                 R_t = sum_k gamma^k rho_{t+k}; A = R. A fully masked sample is an error.
//   reinforce_plus_plus_baseline  A_t = R_t = reward_i - kl_coef * kl_t
//   ppo                           rho_t = -kl_coef * kl_t, plus reward_i at the last response token;
//                                 delta_t = rho_t + gamma V_{t+1} - V_t (V past the end = 0);
//                                 A_t = sum_k (gamma lambd)^k delta_{t+k}; R_t = A_t + V_t
// With normalize_advantages the advantages are whitened with masked_whiten over `data_parallel_comm` (collective:
// every rank of it must call, even with no tokens). MPI_COMM_NULL whitens with this rank's tokens only.
AdvantagesAndReturns compute_advantages_and_returns(const RolloutTokens& rollout, const AdvantageConfig& config,
                                                    MPI_Comm data_parallel_comm);

// slime's distributed_masked_whiten (shift_mean = true): over all ranks of `comm` (MPI_Allreduce of sum m*x,
// sum m*x^2, sum m), mean = sum/count, var = sum_sq/count - mean^2, times count/(count - 1) when count >= 2,
// then x <- (x - mean) / sqrt(var + epsilon) for every token (masked ones too). A zero global mask sum is an
// error. MPI_COMM_NULL: this rank's data only, no MPI call.
void masked_whiten(std::vector<float>& values, const std::vector<float>& mask, MPI_Comm comm,
                   double epsilon = 1e-8);

// Discounted returns of one sequence: R_t = rewards_t + gamma * R_{t+1}.
std::vector<double> discounted_returns(const std::vector<double>& rewards, double gamma);

}  // namespace slime::train
