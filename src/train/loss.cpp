// slime's RL losses with analytic gradients (see loss.h). Everything is computed in double from the float inputs.
// Stop-gradients follow slime: old/ref/rollout log-probs, advantages, TIS weights, the OPSM mask and CISPO's
// clipped ratio carry no gradient; the PPO ratio, GSPO's sequence ratio, the KL terms (and the unbiased-KL
// importance ratio) and the CISPO log-prob do. Where torch would split a gradient between two equal arguments of
// max/min we do the same (half each); inside the clip range both halves are equal anyway.
#include "train/loss.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "core/error.h"

namespace slime::train {

// ---- option names ----------------------------------------------------------------------------------------------

namespace {

template <class Enum>
struct NamedValue {
  const char* name;
  Enum value;
};

const NamedValue<AdvantageEstimator> kEstimators[] = {
    {"grpo", AdvantageEstimator::grpo},
    {"gspo", AdvantageEstimator::gspo},
    {"cispo", AdvantageEstimator::cispo},
    {"reinforce_plus_plus", AdvantageEstimator::reinforce_plus_plus},
    {"reinforce_plus_plus_baseline", AdvantageEstimator::reinforce_plus_plus_baseline},
    {"ppo", AdvantageEstimator::ppo},
};
const NamedValue<KlType> kKlTypes[] = {
    {"k1", KlType::k1}, {"k2", KlType::k2}, {"k3", KlType::k3}, {"low_var_kl", KlType::low_var_kl}};
const NamedValue<LossType> kLossTypes[] = {{"policy_loss", LossType::policy_loss}, {"sft_loss", LossType::sft_loss}};
const NamedValue<TisFunction> kTisFunctions[] = {{"vanilla", TisFunction::vanilla}, {"icepop", TisFunction::icepop}};

template <class Enum, size_t K>
Enum parse_named(const NamedValue<Enum> (&table)[K], const std::string& name, const char* option) {
  std::string accepted;
  for (const auto& entry : table) {
    if (name == entry.name) return entry.value;
    accepted += accepted.empty() ? entry.name : std::string(", ") + entry.name;
  }
  SLIME_FAIL(option, ": expected one of ", accepted, ", got '", name, "'");
}

template <class Enum, size_t K>
const char* name_of(const NamedValue<Enum> (&table)[K], Enum value) {
  for (const auto& entry : table)
    if (entry.value == value) return entry.name;
  SLIME_ASSERT(false, "enum value without a name");
  return "";
}

}  // namespace

AdvantageEstimator parse_advantage_estimator(const std::string& name) {
  return parse_named(kEstimators, name, "--advantage-estimator");
}
KlType parse_kl_type(const std::string& name) { return parse_named(kKlTypes, name, "--kl-loss-type"); }
LossType parse_loss_type(const std::string& name) { return parse_named(kLossTypes, name, "--loss-type"); }
TisFunction parse_tis_function(const std::string& name) { return parse_named(kTisFunctions, name, "TIS function"); }
const char* advantage_estimator_name(AdvantageEstimator estimator) { return name_of(kEstimators, estimator); }
const char* kl_type_name(KlType type) { return name_of(kKlTypes, type); }

void validate_loss_config(const LossConfig& config) {
  const double eps_clip_high = config.eps_clip_high.value_or(config.eps_clip);
  SLIME_CHECK(std::isfinite(config.eps_clip) && std::isfinite(eps_clip_high) && config.eps_clip + eps_clip_high >= 0,
              "--eps-clip (", config.eps_clip, ") and --eps-clip-high (", eps_clip_high,
              ") must give a clip range [1 - eps-clip, 1 + eps-clip-high] that is not empty");
  if (config.eps_clip_c)
    SLIME_CHECK(*config.eps_clip_c > 1.0, "--eps-clip-c (dual-clip constant) must be > 1, got ", *config.eps_clip_c);
  SLIME_CHECK(config.tis_clip >= config.tis_clip_low, "--tis-clip (", config.tis_clip,
              ") must be >= --tis-clip-low (", config.tis_clip_low, ")");
  SLIME_CHECK(!(config.use_rollout_logprobs && config.use_tis), "--use-rollout-logprobs and --use-tis are exclusive");
  SLIME_CHECK(config.opsm_delta >= 0 || !config.use_opsm, "--opsm-delta must be >= 0, got ", config.opsm_delta);
}

// ---- batch checks and the reduction ----------------------------------------------------------------------------

namespace {

template <class T>
void check_length(const char* where, const char* name, const std::vector<T>& values, size_t expected) {
  SLIME_CHECK(values.size() == expected, where, ": ", name, " has ", values.size(), " entries, expected ", expected,
              " (one per response token: offsets.back())");
}

// Checks the batch's shape and returns N. Optional per-token fields may be empty; `need_advantages` makes
// advantages required.
size_t check_batch(const ResponseBatch& batch, const char* where, bool need_advantages) {
  SLIME_CHECK(!batch.offsets.empty(), where, ": offsets is empty, expected S + 1 entries starting at 0");
  SLIME_CHECK(batch.offsets.front() == 0, where, ": offsets[0] is ", batch.offsets.front(), ", expected 0");
  for (size_t s = 1; s < batch.offsets.size(); ++s)
    SLIME_CHECK(batch.offsets[s] >= batch.offsets[s - 1], where, ": offsets must not decrease, but offsets[", s,
                "] = ", batch.offsets[s], " < offsets[", s - 1, "] = ", batch.offsets[s - 1]);
  const size_t tokens = static_cast<size_t>(batch.offsets.back());
  SLIME_CHECK(batch.loss_mask.size() == tokens, where, ": offsets cover ", tokens, " tokens but loss_mask has ",
              batch.loss_mask.size());
  if (need_advantages || !batch.advantages.empty()) check_length(where, "advantages", batch.advantages, tokens);
  if (!batch.old_logprobs.empty()) check_length(where, "old_logprobs", batch.old_logprobs, tokens);
  if (!batch.ref_logprobs.empty()) check_length(where, "ref_logprobs", batch.ref_logprobs, tokens);
  if (!batch.rollout_logprobs.empty()) check_length(where, "rollout_logprobs", batch.rollout_logprobs, tokens);
  const size_t samples = batch.offsets.size() - 1;
  SLIME_CHECK(batch.denominators.empty() || batch.denominators.size() == samples, where, ": denominators has ",
              batch.denominators.size(), " entries, expected ", samples, " (one per sample) or none");
  return tokens;
}

double mask_sum(const ResponseBatch& batch, size_t sample) {
  double sum = 0;
  for (int64_t t = batch.offsets[sample]; t < batch.offsets[sample + 1]; ++t) sum += batch.loss_mask[t];
  return sum;
}

// weight[t] such that reduce(x) = sum_t weight[t] * x[t]: m_t / max(D_i, 1) per sample, m_t per token; times scale.
std::vector<double> reduction_weights(const ResponseBatch& batch, bool per_token, double scale) {
  std::vector<double> weight(batch.loss_mask.size());
  for (size_t s = 0; s + 1 < batch.offsets.size(); ++s) {
    double factor = scale;
    if (!per_token) {
      const double denominator = batch.denominators.empty() ? mask_sum(batch, s) : batch.denominators[s];
      factor = scale / std::max(denominator, 1.0);
    }
    for (int64_t t = batch.offsets[s]; t < batch.offsets[s + 1]; ++t) weight[t] = batch.loss_mask[t] * factor;
  }
  return weight;
}

double reduce(const std::vector<double>& weight, const std::vector<double>& values) {
  double sum = 0;
  for (size_t t = 0; t < weight.size(); ++t) sum += weight[t] * values[t];
  return sum;
}

// max(a, b) (or min) with its derivative; torch gives half the gradient to each argument on a tie.
struct ValueAndSlope {
  double value;
  double slope;
};
ValueAndSlope max_of(ValueAndSlope a, ValueAndSlope b) {
  if (a.value > b.value) return a;
  if (b.value > a.value) return b;
  return {a.value, 0.5 * (a.slope + b.slope)};
}
ValueAndSlope min_of(ValueAndSlope a, ValueAndSlope b) {
  if (a.value < b.value) return a;
  if (b.value < a.value) return b;
  return {a.value, 0.5 * (a.slope + b.slope)};
}
// clamp(x, lo, hi) with torch's gradient: 1 where lo <= x <= hi, else 0.
ValueAndSlope clamp_of(double x, double lo, double hi) {
  return {std::clamp(x, lo, hi), (x >= lo && x <= hi) ? 1.0 : 0.0};
}

// slime's compute_policy_loss for one token: value, d value / d ratio, and whether the clip was active (L2 > L1).
struct SurrogateToken {
  double loss;
  double dloss_dratio;
  bool clipped;
};
SurrogateToken ppo_surrogate(double ratio, double advantage, double clip_low, double clip_high,
                             const std::optional<double>& eps_clip_c) {
  const ValueAndSlope unclipped{-ratio * advantage, -advantage};
  const ValueAndSlope clamped = clamp_of(ratio, clip_low, clip_high);
  const ValueAndSlope clipped{-clamped.value * advantage, -clamped.slope * advantage};
  ValueAndSlope loss = max_of(unclipped, clipped);
  const bool clip_active = clipped.value > unclipped.value;
  if (eps_clip_c && advantage < 0) loss = min_of({-*eps_clip_c * advantage, 0.0}, loss);
  return {loss.value, loss.slope, clip_active};
}

}  // namespace

std::vector<double> rollout_mask_sums(const std::vector<int64_t>& offsets, const std::vector<float>& loss_mask,
                                      const std::vector<int64_t>& rollout_ids) {
  ResponseBatch shape;
  shape.offsets = offsets;
  shape.loss_mask = loss_mask;
  check_batch(shape, "rollout_mask_sums", false);
  const size_t samples = offsets.size() - 1;
  SLIME_CHECK(rollout_ids.size() == samples, "rollout_mask_sums: rollout_ids has ", rollout_ids.size(),
              " entries, expected ", samples, " (one per sample)");
  std::map<int64_t, double> total_by_rollout;
  for (size_t s = 0; s < samples; ++s) total_by_rollout[rollout_ids[s]] += mask_sum(shape, s);
  std::vector<double> sums(samples);
  for (size_t s = 0; s < samples; ++s) sums[s] = total_by_rollout[rollout_ids[s]];
  return sums;
}

double count_loss_tokens(const std::vector<int64_t>& offsets, const std::vector<float>& loss_mask) {
  ResponseBatch shape;
  shape.offsets = offsets;
  shape.loss_mask = loss_mask;
  check_batch(shape, "count_loss_tokens", false);
  double tokens = 0;
  for (size_t s = 0; s + 1 < offsets.size(); ++s) tokens += std::max(mask_sum(shape, s), 1.0);
  return tokens;
}

// ---- KL estimators ---------------------------------------------------------------------------------------------

namespace {

// The estimator before the low_var_kl clamp.
KlValue raw_kl(double logprob, double base_logprob, KlType type) {
  const double log_ratio = logprob - base_logprob;
  switch (type) {
    case KlType::k1:
      return {log_ratio, 1.0};
    case KlType::k2:
      return {0.5 * log_ratio * log_ratio, log_ratio};
    case KlType::k3:
    case KlType::low_var_kl: {
      // exp(-r) - 1 + r; d/dlogprob = 1 - exp(-r)
      const double inverse_ratio = std::exp(-log_ratio);
      return {inverse_ratio - 1.0 + log_ratio, 1.0 - inverse_ratio};
    }
  }
  SLIME_ASSERT(false, "unknown KlType");
  return {};
}

KlValue clamp_low_var(KlValue kl, KlType type) {
  if (type != KlType::low_var_kl) return kl;
  const ValueAndSlope clamped = clamp_of(kl.value, -10.0, 10.0);
  return {clamped.value, clamped.slope * kl.dlogprob};
}

}  // namespace

KlValue approx_kl(double logprob, double base_logprob, KlType type) {
  return clamp_low_var(raw_kl(logprob, base_logprob, type), type);
}

KlValue approx_kl_unbiased(double logprob, double base_logprob, double old_logprob, KlType type) {
  const KlValue kl = raw_kl(logprob, base_logprob, type);
  const double ratio = std::exp(logprob - old_logprob);  // d ratio / d logprob = ratio
  return clamp_low_var({ratio * kl.value, ratio * kl.value + ratio * kl.dlogprob}, type);
}

// ---- policy loss -----------------------------------------------------------------------------------------------

LossResult policy_loss(const ResponseBatch& batch, const std::vector<float>& logprobs,
                       const std::vector<float>& entropy, const LossConfig& config, double scale) {
  validate_loss_config(config);
  const char* where = "policy_loss";
  const size_t tokens = check_batch(batch, where, true);
  check_length(where, "logprobs", logprobs, tokens);
  check_length(where, "entropy", entropy, tokens);
  const bool apply_tis = config.use_tis || config.get_mismatch_metrics;
  SLIME_CHECK(!apply_tis || !batch.rollout_logprobs.empty(), where,
              ": --use-tis / --get-mismatch-metrics need rollout_logprobs, but the batch has none");
  SLIME_CHECK(!config.use_kl_loss || !batch.ref_logprobs.empty(), where,
              ": --use-kl-loss needs ref_logprobs, but the batch has none");

  const size_t samples = batch.offsets.size() - 1;
  const std::vector<double> weight = reduction_weights(batch, config.calculate_per_token_loss, scale);
  // pi_old: the batch's, or the current log-probs under stop-gradient (slime: log_prob.detach()).
  std::vector<double> old_logprob(tokens);
  for (size_t t = 0; t < tokens; ++t)
    old_logprob[t] = batch.old_logprobs.empty() ? logprobs[t] : batch.old_logprobs[t];

  // Sequence-level mean of (old - logprob) over the mask (GSPO's log ratio and OPSM's statistic). Its derivative
  // with respect to logprob_t is -m_t / max(M_i, 1).
  std::vector<double> sequence_kl(samples, 0.0), sequence_mask(samples, 0.0);
  for (size_t s = 0; s < samples; ++s) {
    double sum = 0;
    for (int64_t t = batch.offsets[s]; t < batch.offsets[s + 1]; ++t)
      sum += (old_logprob[t] - logprobs[t]) * batch.loss_mask[t];
    sequence_mask[s] = mask_sum(batch, s);
    sequence_kl[s] = sum / std::max(sequence_mask[s], 1.0);
  }

  const bool gspo = config.advantage_estimator == AdvantageEstimator::gspo;
  const bool cispo = config.advantage_estimator == AdvantageEstimator::cispo;
  const double clip_low = 1.0 - config.eps_clip;
  const double clip_high = 1.0 + config.eps_clip_high.value_or(config.eps_clip);

  LossResult result;
  result.dlogprobs.assign(tokens, 0.0f);
  result.dentropy.assign(tokens, 0.0f);
  std::vector<double> dlogprobs(tokens, 0.0);
  std::vector<double> ppo_kl(tokens), pg_clipfrac(tokens), pg_loss(tokens), entropy_values(tokens);
  std::vector<double> ois(tokens), tis_ratio(tokens), tis_clipfrac(tokens), tis_abs(tokens);
  double opsm_clipfrac = 0;

  for (size_t s = 0; s < samples; ++s) {
    const int64_t begin = batch.offsets[s], end = batch.offsets[s + 1];
    double sequence_ratio_gradient = 0;  // GSPO: d loss / d (sequence ratio of this sample)
    int64_t opsm_masked_tokens = 0;
    for (int64_t t = begin; t < end; ++t) {
      const double advantage = batch.advantages[t];
      ppo_kl[t] = gspo ? sequence_kl[s] : old_logprob[t] - logprobs[t];
      const double ratio = std::exp(-ppo_kl[t]);
      ois[t] = ratio;

      // OPSM (slime's compute_opsm_mask): a token is dropped when its advantage is negative and its sequence has
      // drifted more than opsm_delta from pi_old. The mask itself carries no gradient.
      double keep = 1.0;
      if (config.use_opsm && advantage < 0 && sequence_kl[s] > config.opsm_delta) {
        keep = 0.0;
        ++opsm_masked_tokens;
      }

      // TIS: a weight from pi_old vs the rollout engine, no gradient.
      double tis_weight = 1.0;
      if (apply_tis) {
        const double is_ratio = std::exp(old_logprob[t] - static_cast<double>(batch.rollout_logprobs[t]));
        if (config.tis_function == TisFunction::vanilla)
          tis_weight = std::clamp(is_ratio, config.tis_clip_low, config.tis_clip);
        else
          tis_weight = (is_ratio >= config.tis_clip_low && is_ratio <= config.tis_clip) ? is_ratio : 0.0;
        tis_ratio[t] = is_ratio;
        tis_clipfrac[t] = tis_weight != is_ratio ? 1.0 : 0.0;
        tis_abs[t] = std::abs(is_ratio - 1.0);
      }

      const double token_factor = keep * tis_weight;
      if (cispo) {
        // -sg(clamp(ratio)) * A * logprob: the gradient flows through logprob only.
        const double clipped_ratio = std::clamp(ratio, clip_low, clip_high);
        pg_loss[t] = -clipped_ratio * advantage * logprobs[t] * token_factor;
        pg_clipfrac[t] = clipped_ratio != ratio ? 1.0 : 0.0;
        dlogprobs[t] += weight[t] * token_factor * (-clipped_ratio * advantage);
      } else {
        const SurrogateToken surrogate = ppo_surrogate(ratio, advantage, clip_low, clip_high, config.eps_clip_c);
        pg_loss[t] = surrogate.loss * token_factor;
        pg_clipfrac[t] = surrogate.clipped ? 1.0 : 0.0;
        // ratio = exp(logprob - old) per token (d/dlogprob = ratio), or the sequence ratio for GSPO.
        const double dloss_dratio = weight[t] * token_factor * surrogate.dloss_dratio;
        if (gspo)
          sequence_ratio_gradient += dloss_dratio * ratio;
        else
          dlogprobs[t] += dloss_dratio * ratio;
      }
    }
    if (gspo) {
      // d sequence_ratio / d logprob_t = sequence_ratio * m_t / max(M_i, 1) (already multiplied in above).
      const double per_mask_token = sequence_ratio_gradient / std::max(sequence_mask[s], 1.0);
      for (int64_t t = begin; t < end; ++t) dlogprobs[t] += per_mask_token * batch.loss_mask[t];
    }
    // slime sums the mask over all of the sample's tokens (masked positions included) before dividing.
    opsm_clipfrac += opsm_masked_tokens / std::max(sequence_mask[s], 1.0);
  }

  const double pg_loss_reduced = reduce(weight, pg_loss);
  for (size_t t = 0; t < tokens; ++t) entropy_values[t] = entropy[t];
  const double entropy_loss = reduce(weight, entropy_values);
  double loss = pg_loss_reduced - config.entropy_coef * entropy_loss;
  for (size_t t = 0; t < tokens; ++t) result.dentropy[t] = static_cast<float>(-config.entropy_coef * weight[t]);

  result.metrics["pg_loss"] = pg_loss_reduced;
  result.metrics["entropy_loss"] = entropy_loss;
  result.metrics["pg_clipfrac"] = reduce(weight, pg_clipfrac);
  result.metrics["ppo_kl"] = reduce(weight, ppo_kl);

  if (config.use_kl_loss) {
    std::vector<double> kl(tokens);
    for (size_t t = 0; t < tokens; ++t) {
      const KlValue token_kl =
          config.use_unbiased_kl
              ? approx_kl_unbiased(logprobs[t], batch.ref_logprobs[t], old_logprob[t], config.kl_loss_type)
              : approx_kl(logprobs[t], batch.ref_logprobs[t], config.kl_loss_type);
      kl[t] = token_kl.value;
      dlogprobs[t] += config.kl_loss_coef * weight[t] * token_kl.dlogprob;
    }
    const double kl_loss = reduce(weight, kl);
    loss += config.kl_loss_coef * kl_loss;
    result.metrics["kl_loss"] = kl_loss;
  }

  if (!batch.rollout_logprobs.empty()) {
    std::vector<double> abs_diff(tokens);
    for (size_t t = 0; t < tokens; ++t) {
      const double compared = config.use_rollout_logprobs ? static_cast<double>(logprobs[t]) : old_logprob[t];
      abs_diff[t] = std::abs(compared - batch.rollout_logprobs[t]);
    }
    result.metrics["train_rollout_logprob_abs_diff"] = reduce(weight, abs_diff);
  }
  if (apply_tis) {
    result.metrics["ois"] = reduce(weight, ois);
    result.metrics["tis"] = reduce(weight, tis_ratio);
    result.metrics["tis_clipfrac"] = reduce(weight, tis_clipfrac);
    result.metrics["tis_abs"] = reduce(weight, tis_abs);
  }
  if (config.use_opsm) result.metrics["opsm_clipfrac"] = opsm_clipfrac * scale;

  result.loss = loss;
  result.metrics["loss"] = loss;
  for (size_t t = 0; t < tokens; ++t) result.dlogprobs[t] = static_cast<float>(dlogprobs[t]);
  return result;
}

// ---- SFT loss, dispatch ----------------------------------------------------------------------------------------

LossResult sft_loss(const ResponseBatch& batch, const std::vector<float>& logprobs, const LossConfig& config,
                    double scale) {
  const size_t tokens = check_batch(batch, "sft_loss", false);
  check_length("sft_loss", "logprobs", logprobs, tokens);
  const std::vector<double> weight = reduction_weights(batch, config.calculate_per_token_loss, scale);
  LossResult result;
  result.dlogprobs.resize(tokens);
  result.dentropy.assign(tokens, 0.0f);
  double loss = 0;
  for (size_t t = 0; t < tokens; ++t) {
    loss -= weight[t] * logprobs[t];
    result.dlogprobs[t] = static_cast<float>(-weight[t]);
  }
  result.loss = loss;
  result.metrics["loss"] = loss;
  return result;
}

LossResult compute_loss(const ResponseBatch& batch, const std::vector<float>& logprobs,
                        const std::vector<float>& entropy, const LossConfig& config, double scale) {
  switch (config.loss_type) {
    case LossType::policy_loss:
      return policy_loss(batch, logprobs, entropy, config, scale);
    case LossType::sft_loss:
      return sft_loss(batch, logprobs, config, scale);
  }
  SLIME_ASSERT(false, "unknown LossType");
  return {};
}

// ---- value loss ------------------------------------------------------------------------------------------------

ValueLossResult value_loss(const ResponseBatch& batch, const std::vector<float>& values,
                           const std::vector<float>& old_values, const std::vector<float>& returns,
                           double value_clip, double scale, bool per_token) {
  const char* where = "value_loss";
  const size_t tokens = check_batch(batch, where, false);
  check_length(where, "values", values, tokens);
  check_length(where, "old_values", old_values, tokens);
  check_length(where, "returns", returns, tokens);
  SLIME_CHECK(value_clip >= 0, "--value-clip must be >= 0, got ", value_clip);
  const std::vector<double> weight = reduction_weights(batch, per_token, scale);

  ValueLossResult result;
  result.dvalues.resize(tokens);
  double loss = 0, clipfrac = 0;
  for (size_t t = 0; t < tokens; ++t) {
    const double value = values[t], old_value = old_values[t], target = returns[t];
    const ValueAndSlope step = clamp_of(value - old_value, -value_clip, value_clip);
    const double clipped_value = old_value + step.value;
    const ValueAndSlope clipped_error{(clipped_value - target) * (clipped_value - target),
                                      2.0 * (clipped_value - target) * step.slope};
    const ValueAndSlope error{(value - target) * (value - target), 2.0 * (value - target)};
    const ValueAndSlope token_loss = max_of(clipped_error, error);
    loss += weight[t] * token_loss.value;
    result.dvalues[t] = static_cast<float>(weight[t] * token_loss.slope);
    if (std::abs(value - old_value) > value_clip) clipfrac += weight[t];
  }
  result.loss = loss;
  result.metrics["value_loss"] = loss;
  result.metrics["value_clipfrac"] = clipfrac;
  return result;
}

}  // namespace slime::train
