// RL losses of slime (policy loss with PPO/GSPO/CISPO surrogates, KL loss, entropy bonus, TIS, OPSM; SFT loss;
// the critic's value loss) as closed-form values with analytic gradients: no autograd. Each loss returns its
// value and d loss / d (per-token log-prob, entropy or value); the trainer feeds those into the model's backward.
// Formulas, stop-gradients, clamps and metric definitions follow slime's loss.py / ppo_utils.py / cp_utils.py
// (see docs: shared/reference/slime_features.md §3.2, §3.5, §3.6).
//
// Reduction (slime's get_sum_of_sample_mean): a per-token quantity x is reduced over a micro-batch as
//   per-sample (default)   sum_i sum_t x_it * m_it / max(D_i, 1)    D_i = batch.denominators[i]
//   per-token              sum_i sum_t x_it * m_it                   (--calculate-per-token-loss)
// and then multiplied by `scale`, which turns the micro-batch sum into its share of the optimizer step:
//   per-sample: scale = 1 / (samples in the global step)            (slime: * num_mb / gbs * dp, Megatron / num_mb / dp)
//   per-token:  scale = 1 / (sum over the step of max(M_i, 1))       (Megatron's num_tokens normaliser; see
//               count_loss_tokens)
// Every metric is reduced the same way, so summing a metric over the step's micro-batches and data-parallel ranks
// gives slime's logged value.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace slime::train {

// ---- options ---------------------------------------------------------------------------------------------------

enum class AdvantageEstimator { grpo, gspo, cispo, reinforce_plus_plus, reinforce_plus_plus_baseline, ppo };
enum class KlType { k1, k2, k3, low_var_kl };
enum class LossType { policy_loss, sft_loss };
// Built-in TIS functions of slime: vanilla_tis_function (clamp) and icepop_function (zero outside the band).
enum class TisFunction { vanilla, icepop };

// Parse slime's option values; an unknown name is a slime::Error naming the option and the accepted values.
AdvantageEstimator parse_advantage_estimator(const std::string& name);  // --advantage-estimator
KlType parse_kl_type(const std::string& name);                          // --kl-loss-type
LossType parse_loss_type(const std::string& name);                      // --loss-type (value_loss: see value_loss)
TisFunction parse_tis_function(const std::string& name);                // "vanilla" | "icepop"
const char* advantage_estimator_name(AdvantageEstimator estimator);
const char* kl_type_name(KlType type);

struct LossConfig {
  LossType loss_type = LossType::policy_loss;
  AdvantageEstimator advantage_estimator = AdvantageEstimator::grpo;  // picks the surrogate: gspo, cispo, else PPO
  double eps_clip = 0.2;                    // ratio >= 1 - eps_clip
  std::optional<double> eps_clip_high;      // ratio <= 1 + eps_clip_high; None -> eps_clip
  std::optional<double> eps_clip_c;         // dual-clip constant (> 1); None -> off
  double entropy_coef = 0.0;                // loss -= entropy_coef * reduce(entropy)
  bool use_kl_loss = false;                 // loss += kl_loss_coef * reduce(kl(logprobs, ref_logprobs))
  double kl_loss_coef = 0.0;
  KlType kl_loss_type = KlType::k1;
  bool use_unbiased_kl = false;             // kl *= exp(logprobs - old_logprobs) (gradient flows through it)
  bool use_tis = false;                     // weight pg loss by the TIS function of exp(old - rollout)
  bool get_mismatch_metrics = false;        // as in slime this also applies the TIS function; TIS weights use
                                            // old_logprobs (slime: the recomputed log-probs) vs rollout_logprobs
  TisFunction tis_function = TisFunction::vanilla;
  double tis_clip = 2.0;
  double tis_clip_low = 0.0;
  bool use_opsm = false;                    // off-policy sequence masking
  double opsm_delta = 1e-4;
  bool use_rollout_logprobs = false;        // old_logprobs are the engine's: the mismatch metric compares logprobs
  bool calculate_per_token_loss = false;
};

// Checks option ranges (eps_clip_c > 1, tis_clip >= tis_clip_low, use_tis without use_rollout_logprobs, ...).
void validate_loss_config(const LossConfig& config);

// ---- data ------------------------------------------------------------------------------------------------------

// The response tokens of one micro-batch, samples back to back (prompt tokens are not here). N tokens, S samples.
struct ResponseBatch {
  std::vector<int64_t> offsets;         // [S + 1]: sample s owns tokens [offsets[s], offsets[s+1]); offsets[S] == N
  std::vector<float> loss_mask;         // [N] 0/1
  std::vector<float> advantages;        // [N]
  std::vector<float> old_logprobs;      // [N] pi_old; empty = on-policy (old = current logprobs, detached)
  std::vector<float> ref_logprobs;      // [N] reference model (needed with use_kl_loss), or empty
  std::vector<float> rollout_logprobs;  // [N] rollout engine's (needed with TIS; enables the mismatch metric)
  std::vector<double> denominators;     // [S] per-sample token-mean denominator (slime's rollout_mask_sums);
                                        // empty = each sample's own mask sum
};

// slime's rollout_mask_sums: for each sample, the loss-mask total of all samples sharing its rollout id (fan-out
// siblings share one denominator; an ordinary sample gets its own mask sum). rollout_ids: [S].
std::vector<double> rollout_mask_sums(const std::vector<int64_t>& offsets, const std::vector<float>& loss_mask,
                                      const std::vector<int64_t>& rollout_ids);

// Megatron's per-token normaliser for one micro-batch: sum over samples of max(sum of the mask, 1).
double count_loss_tokens(const std::vector<int64_t>& offsets, const std::vector<float>& loss_mask);

struct LossResult {
  double loss = 0;                        // this micro-batch's contribution to the step loss (after `scale`)
  std::vector<float> dlogprobs;           // [N] d loss / d logprob_t
  std::vector<float> dentropy;            // [N] d loss / d entropy_t (all zero when entropy_coef == 0 and for
                                          // sft_loss)
  std::map<std::string, double> metrics;  // slime's names, reduced like the loss (after `scale`)
};

// ---- KL estimators ---------------------------------------------------------------------------------------------

struct KlValue {
  double value = 0;     // the estimate for one token
  double dlogprob = 0;  // its derivative with respect to `logprob`
};
// slime's compute_approx_kl for one token, log_ratio = logprob - base_logprob:
//   k1 = log_ratio; k2 = log_ratio^2 / 2; k3 = exp(-log_ratio) - 1 + log_ratio; low_var_kl = clamp(k3, -10, 10).
KlValue approx_kl(double logprob, double base_logprob, KlType type);
// The same multiplied by the importance ratio exp(logprob - old_logprob) (--use-unbiased-kl, DeepSeek-V3.2); for
// low_var_kl the clamp applies after the multiplication. The gradient includes the ratio's own derivative.
KlValue approx_kl_unbiased(double logprob, double base_logprob, double old_logprob, KlType type);

// ---- losses ----------------------------------------------------------------------------------------------------

// slime's policy_loss_function. logprobs, entropy: [N] from the current policy's forward pass.
// Metrics: loss, pg_loss, entropy_loss, pg_clipfrac, ppo_kl; kl_loss (use_kl_loss);
// train_rollout_logprob_abs_diff (rollout_logprobs given); ois, tis, tis_clipfrac, tis_abs (use_tis or
// get_mismatch_metrics); opsm_clipfrac (use_opsm).
LossResult policy_loss(const ResponseBatch& batch, const std::vector<float>& logprobs,
                       const std::vector<float>& entropy, const LossConfig& config, double scale);

// slime's sft_loss_function: loss = -reduce(logprobs). Metric: loss.
LossResult sft_loss(const ResponseBatch& batch, const std::vector<float>& logprobs, const LossConfig& config,
                    double scale);

// Dispatches on config.loss_type (policy_loss or sft_loss); `entropy` is ignored by sft_loss.
LossResult compute_loss(const ResponseBatch& batch, const std::vector<float>& logprobs,
                        const std::vector<float>& entropy, const LossConfig& config, double scale);

struct ValueLossResult {
  double loss = 0;                        // this micro-batch's contribution to the critic's step loss
  std::vector<float> dvalues;             // [N] d loss / d value_t
  std::map<std::string, double> metrics;  // value_loss, value_clipfrac (reduced like the loss)
};
// slime's value_loss_function (critic, PPO): per token max((V_old + clamp(V - V_old, -c, c) - R)^2, (V - R)^2), no
// 1/2; reduced like the policy loss with batch.offsets, loss_mask and denominators (advantages and log-prob fields
// of `batch` are not used). values, old_values, returns: [N].
ValueLossResult value_loss(const ResponseBatch& batch, const std::vector<float>& values,
                           const std::vector<float>& old_values, const std::vector<float>& returns,
                           double value_clip, double scale, bool per_token);

}  // namespace slime::train
