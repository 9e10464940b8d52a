// Tests of the RL losses: hand-computed cases for each clip rule, metric and reduction, a straightforward
// double-precision reference of slime's policy_loss_function for random batches, and every analytic gradient
// against central finite differences of the loss value.
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <map>
#include <random>

#include "core/error.h"
#include "train/loss.h"

using namespace slime::train;
using Catch::Matchers::Contains;

namespace {

// One sample of `n` tokens, mask all ones, advantages `a`, logprobs and old chosen so that exp(logp - old) = ratio.
struct TokenCase {
  ResponseBatch batch;
  std::vector<float> logprobs;
  std::vector<float> entropy;
};
TokenCase single_sample(const std::vector<double>& ratios, const std::vector<double>& advantages) {
  TokenCase c;
  const size_t n = ratios.size();
  c.batch.offsets = {0, static_cast<int64_t>(n)};
  c.batch.loss_mask.assign(n, 1.0f);
  for (size_t t = 0; t < n; ++t) {
    const float logprob = -0.5f - 0.1f * t;
    c.logprobs.push_back(logprob);
    c.batch.old_logprobs.push_back(static_cast<float>(logprob - std::log(ratios[t])));
    c.batch.advantages.push_back(static_cast<float>(advantages[t]));
  }
  c.entropy.assign(n, 0.0f);
  return c;
}

// The ratio the loss actually sees after the float rounding of old_logprobs.
double actual_ratio(const TokenCase& c, size_t t) {
  return std::exp(static_cast<double>(c.logprobs[t]) - c.batch.old_logprobs[t]);
}

// Random test data is quantised to multiples of 2^-12 (|x| < 8), so x +/- h with h = 2^-10 is exact in float and
// no rounding enters the finite differences.
float quantize(double x) { return static_cast<float>(std::round(x * 4096.0) / 4096.0); }

// Central difference of `loss_of(x, shifted)` at every coordinate of x. `shifted_with_x` (may be empty) moves by the
// same step as x: CISPO's stop-gradient ratio is held fixed by shifting old_logprobs together with logprobs.
void check_gradient(const std::function<double(const std::vector<float>&, const std::vector<float>&)>& loss_of,
                    const std::vector<float>& x, const std::vector<float>& shifted_with_x,
                    const std::vector<float>& analytic, const char* what) {
  const double h = 1.0 / 1024;
  REQUIRE(analytic.size() == x.size());
  for (size_t t = 0; t < x.size(); ++t) {
    std::vector<float> plus = x, minus = x, shift_plus = shifted_with_x, shift_minus = shifted_with_x;
    plus[t] = static_cast<float>(x[t] + h);
    minus[t] = static_cast<float>(x[t] - h);
    REQUIRE(static_cast<double>(plus[t]) - minus[t] == 2 * h);
    if (!shifted_with_x.empty()) {
      shift_plus[t] = static_cast<float>(shifted_with_x[t] + h);
      shift_minus[t] = static_cast<float>(shifted_with_x[t] - h);
      REQUIRE(static_cast<double>(shift_plus[t]) - shift_minus[t] == 2 * h);
    }
    const double numeric = (loss_of(plus, shift_plus) - loss_of(minus, shift_minus)) / (2 * h);
    INFO(what << " token " << t << ": analytic " << analytic[t] << " numeric " << numeric);
    CHECK(std::abs(numeric - analytic[t]) <= 2e-5 + 2e-4 * std::abs(numeric));
  }
}

// ---- a straightforward reference of slime's policy_loss_function (value and metrics only) ----------------------

double ref_kl(double logprob, double base, KlType type) {
  const double log_ratio = logprob - base;
  if (type == KlType::k1) return log_ratio;
  if (type == KlType::k2) return log_ratio * log_ratio / 2.0;
  const double negative = -log_ratio;
  return std::exp(negative) - 1 - negative;
}

std::map<std::string, double> reference_policy_loss(const ResponseBatch& batch, const std::vector<float>& logprobs,
                                                    const std::vector<float>& entropy, const LossConfig& config,
                                                    double scale) {
  const size_t n = logprobs.size(), samples = batch.offsets.size() - 1;
  std::vector<double> logp(logprobs.begin(), logprobs.end());
  std::vector<double> old(n), adv(batch.advantages.begin(), batch.advantages.end());
  for (size_t t = 0; t < n; ++t) old[t] = batch.old_logprobs.empty() ? logp[t] : batch.old_logprobs[t];
  std::vector<int> sample_of(n);
  std::vector<double> mask_sum(samples, 0.0), denominator(samples);
  for (size_t s = 0; s < samples; ++s)
    for (int64_t t = batch.offsets[s]; t < batch.offsets[s + 1]; ++t) {
      sample_of[t] = static_cast<int>(s);
      mask_sum[s] += batch.loss_mask[t];
    }
  for (size_t s = 0; s < samples; ++s) denominator[s] = batch.denominators.empty() ? mask_sum[s] : batch.denominators[s];
  auto reducer = [&](const std::vector<double>& x) {
    double total = 0;
    for (size_t s = 0; s < samples; ++s) {
      double sum = 0;
      for (int64_t t = batch.offsets[s]; t < batch.offsets[s + 1]; ++t) sum += x[t] * batch.loss_mask[t];
      total += config.calculate_per_token_loss ? sum : sum / std::max(denominator[s], 1.0);
    }
    return total * scale;
  };
  std::vector<double> seq_kl(samples, 0.0);
  for (size_t t = 0; t < n; ++t) seq_kl[sample_of[t]] += (old[t] - logp[t]) * batch.loss_mask[t];
  for (size_t s = 0; s < samples; ++s) seq_kl[s] /= std::max(mask_sum[s], 1.0);

  std::vector<double> ppo_kl(n), pg(n), clipfrac(n);
  const double lo = 1 - config.eps_clip, hi = 1 + config.eps_clip_high.value_or(config.eps_clip);
  for (size_t t = 0; t < n; ++t) {
    ppo_kl[t] = config.advantage_estimator == AdvantageEstimator::gspo ? seq_kl[sample_of[t]] : old[t] - logp[t];
    const double ratio = std::exp(-ppo_kl[t]);
    const double clamped = std::min(std::max(ratio, lo), hi);
    if (config.advantage_estimator == AdvantageEstimator::cispo) {
      pg[t] = -clamped * adv[t] * logp[t];
      clipfrac[t] = clamped != ratio;
    } else {
      const double l1 = -ratio * adv[t], l2 = -clamped * adv[t];
      pg[t] = std::max(l1, l2);
      clipfrac[t] = l2 > l1;
      if (config.eps_clip_c && adv[t] < 0) pg[t] = std::min(-*config.eps_clip_c * adv[t], pg[t]);
    }
  }
  double opsm_clipfrac = 0;
  if (config.use_opsm) {
    for (size_t s = 0; s < samples; ++s) {
      double dropped = 0;
      for (int64_t t = batch.offsets[s]; t < batch.offsets[s + 1]; ++t)
        if (adv[t] < 0 && seq_kl[s] > config.opsm_delta) {
          pg[t] = 0;
          dropped += 1;
        }
      opsm_clipfrac += dropped / std::max(mask_sum[s], 1.0);
    }
  }
  std::map<std::string, double> out;
  if (config.use_tis) {
    std::vector<double> tis(n), tis_clip(n), tis_abs(n), ois(n);
    for (size_t t = 0; t < n; ++t) {
      tis[t] = std::exp(old[t] - batch.rollout_logprobs[t]);
      const double w = std::min(std::max(tis[t], config.tis_clip_low), config.tis_clip);
      tis_clip[t] = w != tis[t];
      tis_abs[t] = std::abs(tis[t] - 1);
      ois[t] = std::exp(-ppo_kl[t]);
      pg[t] *= w;
    }
    out["tis"] = reducer(tis);
    out["tis_clipfrac"] = reducer(tis_clip);
    out["tis_abs"] = reducer(tis_abs);
    out["ois"] = reducer(ois);
  }
  out["pg_loss"] = reducer(pg);
  out["pg_clipfrac"] = reducer(clipfrac);
  out["ppo_kl"] = reducer(ppo_kl);
  out["entropy_loss"] = reducer(std::vector<double>(entropy.begin(), entropy.end()));
  double loss = out["pg_loss"] - config.entropy_coef * out["entropy_loss"];
  if (config.use_kl_loss) {
    std::vector<double> kl(n);
    for (size_t t = 0; t < n; ++t) {
      kl[t] = ref_kl(logp[t], batch.ref_logprobs[t], config.kl_loss_type);
      if (config.use_unbiased_kl) kl[t] *= std::exp(logp[t] - old[t]);
      if (config.kl_loss_type == KlType::low_var_kl) kl[t] = std::min(std::max(kl[t], -10.0), 10.0);
    }
    out["kl_loss"] = reducer(kl);
    loss += config.kl_loss_coef * out["kl_loss"];
  }
  if (!batch.rollout_logprobs.empty()) {
    std::vector<double> diff(n);
    for (size_t t = 0; t < n; ++t) diff[t] = std::abs(old[t] - batch.rollout_logprobs[t]);
    out["train_rollout_logprob_abs_diff"] = reducer(diff);
  }
  if (config.use_opsm) out["opsm_clipfrac"] = opsm_clipfrac * scale;
  out["loss"] = loss;
  return out;
}

// Random batch: samples of the given lengths, some masked tokens, log ratios kept away from the clip kinks so
// that central differences are smooth.
struct RandomCase {
  ResponseBatch batch;
  std::vector<float> logprobs, entropy;
};
RandomCase random_case(const std::vector<int>& lengths, uint32_t seed, bool group_advantages) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  const double safe_log_ratios[] = {-0.9, -0.5, -0.1, 0.0, 0.1, 0.5, 1.5};
  RandomCase c;
  c.batch.offsets = {0};
  for (int length : lengths) {
    const double sample_advantage = uniform(rng) * 2 - 1;
    for (int t = 0; t < length; ++t) {
      const double logprob = -0.1 - 2.5 * uniform(rng);
      const double log_ratio = safe_log_ratios[rng() % 7] + 0.02 * (uniform(rng) - 0.5);
      c.logprobs.push_back(quantize(logprob));
      c.batch.old_logprobs.push_back(quantize(logprob - log_ratio));
      c.batch.ref_logprobs.push_back(quantize(logprob + 0.4 * (uniform(rng) - 0.5)));
      c.batch.rollout_logprobs.push_back(quantize(c.batch.old_logprobs.back() + 1.6 * (uniform(rng) - 0.5)));
      c.batch.advantages.push_back(static_cast<float>(group_advantages ? sample_advantage : uniform(rng) * 2 - 1));
      c.batch.loss_mask.push_back(uniform(rng) < 0.8 ? 1.0f : 0.0f);
      c.entropy.push_back(quantize(3 * uniform(rng)));
    }
    c.batch.offsets.push_back(c.batch.offsets.back() + length);
  }
  return c;
}

}  // namespace

// ---- PPO clipping, hand-computed ---------------------------------------------------------------------------------

TEST_CASE("ppo clip: slime's dual-clip example, clipfrac, ppo_kl and gradients by hand", "[loss]") {
  // ratios [2, 2, 0.5], A [2, -2, 2], eps 0.2, c 1.5 -> per-token losses [-2.4, 3.0, -1.0] (slime test_policy_loss).
  TokenCase c = single_sample({2.0, 2.0, 0.5}, {2.0, -2.0, 2.0});
  LossConfig config;
  config.eps_clip = 0.2;
  config.eps_clip_c = 1.5;
  const LossResult r = policy_loss(c.batch, c.logprobs, c.entropy, config, 1.0);
  const double r2 = actual_ratio(c, 2);
  // token 0: A > 0 above 1 + eps: clipped at 1.2 (L2 = -2.4 > L1 = -4); token 1: A < 0, L = max(4, 2.4) = 4,
  // dual clip min(3, 4) = 3; token 2: below 1 - eps with A > 0: the unclipped -ratio * A = -1 wins.
  CHECK(r.metrics.at("pg_loss") == Approx((-2.4 + 3.0 - 2.0 * r2) / 3.0).epsilon(1e-12));
  CHECK(r.metrics.at("pg_clipfrac") == Approx(1.0 / 3.0));
  double ppo_kl = 0;
  for (int t = 0; t < 3; ++t) ppo_kl += static_cast<double>(c.batch.old_logprobs[t]) - c.logprobs[t];
  CHECK(r.metrics.at("ppo_kl") == Approx(ppo_kl / 3.0).epsilon(1e-12));
  CHECK(r.dlogprobs[0] == 0.0f);  // clipped: no gradient
  CHECK(r.dlogprobs[1] == 0.0f);  // dual clip: constant -c * A
  CHECK(r.dlogprobs[2] == Approx(-2.0 * r2 / 3.0).epsilon(1e-6));  // d(-ratio * A)/dlogp = -A * ratio
  CHECK(r.loss == Approx(r.metrics.at("pg_loss")));
}

TEST_CASE("ppo clip: each side of the clip range, clip-higher asymmetry", "[loss]") {
  LossConfig config;
  config.eps_clip = 0.2;
  config.eps_clip_high = 0.28;
  config.calculate_per_token_loss = true;  // plain sums, scale 1
  struct Expect {
    double ratio, advantage, loss_over_ratio_or_const;
    bool clipped_constant;  // true: loss is the constant -clip * A and the gradient is 0
    bool clipfrac;
  };
  // inside; above 1+eps_high with A>0 (clipped); above with A<0 (not clipped); below 1-eps with A<0 (clipped);
  // below with A>0 (not clipped); between 1+eps and 1+eps_high with A>0 (inside thanks to clip-higher).
  const Expect cases[] = {
      {1.1, 1.0, -1.0, false, false},  {1.5, 1.0, -1.28, true, true},  {1.5, -1.0, 1.0, false, false},
      {0.5, -1.0, 0.8, true, true},    {0.5, 1.0, -1.0, false, false}, {1.25, 1.0, -1.0, false, false},
  };
  for (const Expect& e : cases) {
    TokenCase c = single_sample({e.ratio}, {e.advantage});
    const double ratio = actual_ratio(c, 0);
    const LossResult r = policy_loss(c.batch, c.logprobs, c.entropy, config, 1.0);
    INFO("ratio " << e.ratio << " advantage " << e.advantage);
    if (e.clipped_constant) {
      CHECK(r.loss == Approx(e.loss_over_ratio_or_const).epsilon(1e-12));
      CHECK(r.dlogprobs[0] == 0.0f);
    } else {
      CHECK(r.loss == Approx(e.loss_over_ratio_or_const * ratio * std::abs(e.advantage)).epsilon(1e-12));
      CHECK(r.dlogprobs[0] == Approx(-e.advantage * ratio).epsilon(1e-6));
    }
    CHECK(r.metrics.at("pg_clipfrac") == (e.clipfrac ? 1.0 : 0.0));
  }
  // Symmetric eps 0.2 clips ratio 1.25 with A > 0 that clip-higher 0.28 leaves alone.
  config.eps_clip_high.reset();
  TokenCase c = single_sample({1.25}, {1.0});
  const LossResult symmetric = policy_loss(c.batch, c.logprobs, c.entropy, config, 1.0);
  CHECK(symmetric.loss == Approx(-1.2).epsilon(1e-12));
  CHECK(symmetric.metrics.at("pg_clipfrac") == 1.0);
  CHECK(symmetric.dlogprobs[0] == 0.0f);
}

TEST_CASE("dual clip acts only on negative advantages and only when -c*A is smaller", "[loss]") {
  LossConfig config;
  config.eps_clip_c = 3.0;
  config.calculate_per_token_loss = true;
  // A = -1: ratio 2 -> L = 2 < c = 3 (no dual clip); ratio 4 -> min(3, 4) = 3, gradient 0.
  TokenCase below = single_sample({2.0}, {-1.0});
  LossResult r = policy_loss(below.batch, below.logprobs, below.entropy, config, 1.0);
  CHECK(r.loss == Approx(actual_ratio(below, 0)).epsilon(1e-12));
  CHECK(r.dlogprobs[0] == Approx(actual_ratio(below, 0)).epsilon(1e-6));
  TokenCase above = single_sample({4.0}, {-1.0});
  r = policy_loss(above.batch, above.logprobs, above.entropy, config, 1.0);
  CHECK(r.loss == Approx(3.0).epsilon(1e-12));
  CHECK(r.dlogprobs[0] == 0.0f);
  // A = +1, ratio 4: clipped at 1.2 whatever c says.
  TokenCase positive = single_sample({4.0}, {1.0});
  r = policy_loss(positive.batch, positive.logprobs, positive.entropy, config, 1.0);
  CHECK(r.loss == Approx(-1.2).epsilon(1e-12));
}

TEST_CASE("on-policy (no old_logprobs): ratio 1 with the gradient of exp(logp - sg(logp))", "[loss]") {
  TokenCase c = single_sample({1.0, 1.0}, {0.5, -2.0});
  c.batch.old_logprobs.clear();
  const LossResult r = policy_loss(c.batch, c.logprobs, c.entropy, LossConfig{}, 1.0);
  CHECK(r.loss == Approx((-0.5 + 2.0) / 2.0));
  CHECK(r.dlogprobs[0] == Approx(-0.5 / 2.0));
  CHECK(r.dlogprobs[1] == Approx(2.0 / 2.0));
  CHECK(r.metrics.at("ppo_kl") == 0.0);
}

// ---- masks and reductions ----------------------------------------------------------------------------------------

TEST_CASE("masks, an all-zero-mask sample, per-sample vs per-token, fan-out denominators", "[loss]") {
  // Three samples, ratio 1 everywhere (old == logp) so the per-token loss is -A.
  ResponseBatch batch;
  batch.offsets = {0, 2, 5, 7};
  batch.loss_mask = {1, 1, 1, 0, 1, 0, 0};  // sample 2 is fully masked
  batch.advantages = {1, 3, 2, 100, 4, 7, 7};
  std::vector<float> logprobs = {-1, -1, -1, -1, -1, -1, -1};
  batch.old_logprobs = logprobs;
  std::vector<float> entropy(7, 0.0f);
  LossConfig config;

  SECTION("per sample: sum_i sum_t x m / max(M_i, 1), times scale") {
    const double scale = 1.0 / 3.0;
    const LossResult r = policy_loss(batch, logprobs, entropy, config, scale);
    // sample 0: -(1 + 3)/2 = -2; sample 1: -(2 + 4)/2 = -3; sample 2: 0 (masked, denominator max(0, 1) = 1).
    CHECK(r.loss == Approx((-2.0 - 3.0) * scale));
    CHECK(std::isfinite(r.loss));
    const float expected[] = {-0.5f, -1.5f, -1.0f, 0.0f, -2.0f, 0.0f, 0.0f};  // -A * m / M_i
    for (int t = 0; t < 7; ++t) CHECK(r.dlogprobs[t] == Approx(expected[t] * scale));
  }
  SECTION("per token: sum_i sum_t x m, times scale = 1 / tokens") {
    config.calculate_per_token_loss = true;
    const double tokens = count_loss_tokens(batch.offsets, batch.loss_mask);
    CHECK(tokens == 2 + 2 + 1);  // max(M_i, 1) per sample
    const LossResult r = policy_loss(batch, logprobs, entropy, config, 1.0 / tokens);
    CHECK(r.loss == Approx(-(1.0 + 3 + 2 + 4) / tokens));
    CHECK(r.dlogprobs[0] == Approx(-1.0 / tokens));
    CHECK(r.dlogprobs[3] == 0.0f);
  }
  SECTION("fan-out siblings share one denominator (rollout_mask_sums)") {
    batch.denominators = rollout_mask_sums(batch.offsets, batch.loss_mask, {7, 7, 9});
    CHECK(batch.denominators == std::vector<double>{4.0, 4.0, 0.0});
    const LossResult r = policy_loss(batch, logprobs, entropy, config, 1.0);
    CHECK(r.loss == Approx(-(1.0 + 3 + 2 + 4) / 4.0));
    CHECK(r.dlogprobs[4] == Approx(-4.0 / 4.0));
  }
}

// ---- GSPO, CISPO, OPSM, TIS --------------------------------------------------------------------------------------

TEST_CASE("gspo: sequence-level ratio over masked tokens, gradient through the sequence mean", "[loss]") {
  ResponseBatch batch;
  batch.offsets = {0, 3};
  batch.loss_mask = {1, 1, 0};
  batch.advantages = {1, 1, 1};
  std::vector<float> logprobs = {-1.0f, -2.0f, -3.0f};
  batch.old_logprobs = {-0.9f, -1.7f, -9.0f};  // masked token's huge log ratio must not count
  std::vector<float> entropy(3, 0.0f);
  LossConfig config;
  config.advantage_estimator = AdvantageEstimator::gspo;
  config.eps_clip = 0.3;
  const double seq_kl = ((static_cast<double>(batch.old_logprobs[0]) - logprobs[0]) +
                         (static_cast<double>(batch.old_logprobs[1]) - logprobs[1])) / 2.0;
  const double ratio = std::exp(-seq_kl);  // ~ exp(-0.2) = 0.82, inside [0.7, 1.3]
  const LossResult r = policy_loss(batch, logprobs, entropy, config, 1.0);
  CHECK(r.loss == Approx(-ratio).epsilon(1e-12));  // (-ratio - ratio) / 2
  CHECK(r.metrics.at("ppo_kl") == Approx(seq_kl).epsilon(1e-12));
  // d/dlogp_t of -ratio * (m0 + m1)/2 with ratio = exp(mean_t m_t (logp_t - old_t)): -ratio * m_t / 2.
  CHECK(r.dlogprobs[0] == Approx(-ratio / 2).epsilon(1e-6));
  CHECK(r.dlogprobs[1] == Approx(-ratio / 2).epsilon(1e-6));
  CHECK(r.dlogprobs[2] == 0.0f);
  // eps 0.1, A < 0: the sequence ratio 0.82 is below 1 - eps, so every token takes the clipped 0.9 * |A|.
  config.eps_clip = 0.1;
  batch.advantages = {-1, -1, -1};
  const LossResult clipped = policy_loss(batch, logprobs, entropy, config, 1.0);
  CHECK(clipped.loss == Approx(0.9).epsilon(1e-12));
  CHECK(clipped.metrics.at("pg_clipfrac") == 1.0);
  CHECK(clipped.dlogprobs[0] == 0.0f);
}

TEST_CASE("cispo: slime's closed-form cases, gradient only through logp with the clipped ratio detached", "[loss]") {
  const std::vector<double> advantages = {1.0, -0.5, 2.0, -1.0};
  const std::vector<float> logprobs = {-0.7f, -1.2f, -0.4f, -2.1f};
  struct Band {
    double eps_clip, eps_clip_high;
    std::vector<double> ratios, clamped;
  };
  const Band bands[] = {{0.2, 0.28, {1.0, 1.14, 1.56, 0.4}, {1.0, 1.14, 1.28, 0.8}},
                        {1.0, 4.0, {1.0, 3.0, 9.0, 0.4}, {1.0, 3.0, 5.0, 0.4}}};
  for (const Band& band : bands) {
    ResponseBatch batch;
    batch.offsets = {0, 4};
    batch.loss_mask.assign(4, 1.0f);
    for (int t = 0; t < 4; ++t) {
      batch.advantages.push_back(static_cast<float>(advantages[t]));
      batch.old_logprobs.push_back(static_cast<float>(logprobs[t] - std::log(band.ratios[t])));
    }
    LossConfig config;
    config.advantage_estimator = AdvantageEstimator::cispo;
    config.eps_clip = band.eps_clip;
    config.eps_clip_high = band.eps_clip_high;
    config.calculate_per_token_loss = true;
    const LossResult r = policy_loss(batch, logprobs, std::vector<float>(4, 0.0f), config, 1.0);
    double expected_loss = 0, expected_clipfrac = 0;
    for (int t = 0; t < 4; ++t) {
      expected_loss += -band.clamped[t] * advantages[t] * logprobs[t];
      expected_clipfrac += band.clamped[t] != band.ratios[t];
      CHECK(r.dlogprobs[t] == Approx(-band.clamped[t] * advantages[t]).epsilon(1e-5));
    }
    CHECK(r.loss == Approx(expected_loss).epsilon(1e-5));
    CHECK(r.metrics.at("pg_clipfrac") == expected_clipfrac);
  }
}

TEST_CASE("opsm: drops negative-advantage sequences that drifted past delta", "[loss]") {
  ResponseBatch batch;
  batch.offsets = {0, 2, 4, 6};
  batch.loss_mask = {1, 1, 1, 0, 1, 1};
  batch.advantages = {-1, -1, -1, -1, 1, 1};
  std::vector<float> logprobs = {-1, -1, -1, -1, -1, -1};
  // sample 0: seq kl 0.2 > delta, A < 0 -> dropped; sample 1: seq kl 0 -> kept; sample 2: A > 0 -> kept.
  batch.old_logprobs = {-0.8f, -0.8f, -1.0f, -0.2f, -0.5f, -0.5f};
  std::vector<float> entropy(6, 0.0f);
  LossConfig config;
  config.use_opsm = true;
  config.opsm_delta = 1e-4;
  config.eps_clip = 10;  // keep the PPO clip out of the way: loss = -ratio * A
  const double scale = 0.25;
  const LossResult r = policy_loss(batch, logprobs, entropy, config, scale);
  const double ratio2 = std::exp(-0.5);
  // sample 1: -1 * -1 over its one mask token (1/1); sample 2: -ratio2 * 1 twice over 2.
  CHECK(r.loss == Approx((1.0 + (-ratio2)) * scale).epsilon(1e-6));
  CHECK(r.dlogprobs[0] == 0.0f);
  CHECK(r.dlogprobs[1] == 0.0f);
  CHECK(r.dlogprobs[2] == Approx(1.0 * scale));
  // slime's metric: dropped tokens / max(mask sum, 1) per sample: 2 / 2 for sample 0.
  CHECK(r.metrics.at("opsm_clipfrac") == Approx(1.0 * scale));
}

TEST_CASE("tis: clamped weights scale the pg loss, metrics tis/tis_clipfrac/tis_abs/ois", "[loss]") {
  ResponseBatch batch;
  batch.offsets = {0, 3};
  batch.loss_mask = {1, 1, 1};
  batch.advantages = {1, 1, 1};
  std::vector<float> logprobs = {-1, -1, -1};
  batch.old_logprobs = logprobs;  // ratio 1
  // exp(old - rollout) = 3 (clamped to 2), 0.5 (kept), e^-4 (below a 0.1 floor)
  batch.rollout_logprobs = {static_cast<float>(-1 - std::log(3.0)), static_cast<float>(-1 + std::log(2.0)), 3.0f};
  std::vector<float> entropy(3, 0.0f);
  LossConfig config;
  config.use_tis = true;
  config.tis_clip = 2.0;
  config.tis_clip_low = 0.1;
  const LossResult r = policy_loss(batch, logprobs, entropy, config, 1.0);
  const double w[] = {2.0, 0.5, 0.1};
  const double raw[] = {3.0, 0.5, std::exp(-4.0)};
  CHECK(r.loss == Approx(-(w[0] + w[1] + w[2]) / 3).epsilon(1e-6));
  for (int t = 0; t < 3; ++t) CHECK(r.dlogprobs[t] == Approx(-w[t] / 3).epsilon(1e-5));
  CHECK(r.metrics.at("tis") == Approx((raw[0] + raw[1] + raw[2]) / 3).epsilon(1e-5));
  CHECK(r.metrics.at("tis_clipfrac") == Approx(2.0 / 3));
  CHECK(r.metrics.at("tis_abs") == Approx((2.0 + 0.5 + (1 - raw[2])) / 3).epsilon(1e-5));
  CHECK(r.metrics.at("ois") == Approx(1.0));
  CHECK(r.metrics.at("train_rollout_logprob_abs_diff") == Approx((std::log(3.0) + std::log(2.0) + 4.0) / 3).epsilon(1e-5));

  SECTION("--get-mismatch-metrics alone applies the same TIS function (as slime does)") {
    config.use_tis = false;
    config.get_mismatch_metrics = true;
    const LossResult mismatch = policy_loss(batch, logprobs, entropy, config, 1.0);
    CHECK(mismatch.loss == r.loss);
    CHECK(mismatch.metrics == r.metrics);
  }
  SECTION("--use-rollout-logprobs: the mismatch metric compares the current log-probs with the rollout's") {
    config.use_tis = false;
    config.use_rollout_logprobs = true;
    const std::vector<float> current = {-1.5f, -1.5f, -1.5f};
    const LossResult own = policy_loss(batch, current, entropy, config, 1.0);
    CHECK(own.metrics.at("train_rollout_logprob_abs_diff") ==
          Approx((std::abs(-0.5 + std::log(3.0)) + std::abs(-0.5 - std::log(2.0)) + 4.5) / 3).epsilon(1e-5));
    CHECK(own.metrics.count("tis") == 0);
  }
  SECTION("icepop zeroes tokens outside [low, high] instead of clamping") {
    config.tis_function = TisFunction::icepop;
    const LossResult ice = policy_loss(batch, logprobs, entropy, config, 1.0);
    CHECK(ice.loss == Approx(-0.5 / 3).epsilon(1e-5));
    CHECK(ice.dlogprobs[0] == 0.0f);
    CHECK(ice.metrics.at("tis_clipfrac") == Approx(2.0 / 3));
  }
  SECTION("missing rollout_logprobs is an error") {
    batch.rollout_logprobs.clear();
    REQUIRE_THROWS_WITH(policy_loss(batch, logprobs, entropy, config, 1.0), Contains("rollout_logprobs"));
  }
}

// ---- KL estimators -----------------------------------------------------------------------------------------------

TEST_CASE("kl estimators k1/k2/k3/low_var_kl: values, gradients and the low_var_kl clamp", "[loss]") {
  // log_ratio = logp - ref = 0.5
  CHECK(approx_kl(-1.0, -1.5, KlType::k1).value == Approx(0.5));
  CHECK(approx_kl(-1.0, -1.5, KlType::k1).dlogprob == Approx(1.0));
  CHECK(approx_kl(-1.0, -1.5, KlType::k2).value == Approx(0.125));
  CHECK(approx_kl(-1.0, -1.5, KlType::k2).dlogprob == Approx(0.5));
  CHECK(approx_kl(-1.0, -1.5, KlType::k3).value == Approx(std::exp(-0.5) - 1 + 0.5));
  CHECK(approx_kl(-1.0, -1.5, KlType::k3).dlogprob == Approx(1 - std::exp(-0.5)));
  CHECK(approx_kl(-1.0, -1.5, KlType::low_var_kl).value == Approx(std::exp(-0.5) - 1 + 0.5));
  // log_ratio = -13: k3 = e^13 - 14, low_var_kl clamps to 10 with zero gradient.
  CHECK(approx_kl(-14.0, -1.0, KlType::k3).value == Approx(std::exp(13.0) - 14));
  CHECK(approx_kl(-14.0, -1.0, KlType::low_var_kl).value == 10.0);
  CHECK(approx_kl(-14.0, -1.0, KlType::low_var_kl).dlogprob == 0.0);
  // Unbiased: multiplied by exp(logp - old) = e^0.3; low_var_kl clamps the product.
  const double r = std::exp(0.3);
  CHECK(approx_kl_unbiased(-1.0, -1.5, -1.3, KlType::k1).value == Approx(r * 0.5));
  CHECK(approx_kl_unbiased(-1.0, -1.5, -1.3, KlType::k1).dlogprob == Approx(r * 0.5 + r));
  CHECK(approx_kl_unbiased(-3.0, -0.5, -5.0, KlType::low_var_kl).value == 10.0);  // e^2 * (e^2.5 - 3.5) > 10

  // Finite differences of every estimator, biased and unbiased.
  for (KlType type : {KlType::k1, KlType::k2, KlType::k3, KlType::low_var_kl}) {
    for (double logprob : {-2.3, -1.0, -0.2}) {
      const double h = 1e-5;
      const double numeric =
          (approx_kl(logprob + h, -1.1, type).value - approx_kl(logprob - h, -1.1, type).value) / (2 * h);
      CHECK(approx_kl(logprob, -1.1, type).dlogprob == Approx(numeric).epsilon(1e-6));
      const double numeric_unbiased = (approx_kl_unbiased(logprob + h, -1.1, -1.4, type).value -
                                       approx_kl_unbiased(logprob - h, -1.1, -1.4, type).value) / (2 * h);
      CHECK(approx_kl_unbiased(logprob, -1.1, -1.4, type).dlogprob == Approx(numeric_unbiased).epsilon(1e-6));
    }
  }
}

// ---- entropy, SFT, value loss ------------------------------------------------------------------------------------

TEST_CASE("entropy bonus lowers the loss; dentropy = -entropy_coef * weight", "[loss]") {
  TokenCase c = single_sample({1.0, 1.0}, {0.0, 0.0});
  c.entropy = {2.0f, 4.0f};
  LossConfig config;
  config.entropy_coef = 0.01;
  const LossResult r = policy_loss(c.batch, c.logprobs, c.entropy, config, 0.5);
  CHECK(r.metrics.at("entropy_loss") == Approx(3.0 * 0.5));
  CHECK(r.loss == Approx(-0.01 * 3.0 * 0.5));
  CHECK(r.dentropy[0] == Approx(-0.01 / 2 * 0.5));
  config.entropy_coef = 0;
  const LossResult off = policy_loss(c.batch, c.logprobs, c.entropy, config, 0.5);
  CHECK(off.dentropy == std::vector<float>(2, 0.0f));
  CHECK(off.metrics.at("entropy_loss") == Approx(1.5));  // still reported
}

TEST_CASE("sft loss = -reduce(logprobs)", "[loss]") {
  ResponseBatch batch;
  batch.offsets = {0, 2, 3};
  batch.loss_mask = {1, 0, 1};
  std::vector<float> logprobs = {-1.5f, -7.0f, -0.5f};
  LossConfig config;
  config.loss_type = LossType::sft_loss;
  const LossResult r = compute_loss(batch, logprobs, {}, config, 0.5);
  CHECK(r.loss == Approx((1.5 / 1 + 0.5 / 1) * 0.5));
  CHECK(r.dlogprobs == std::vector<float>{-0.5f, 0.0f, -0.5f});
  CHECK(r.metrics.at("loss") == r.loss);
}

TEST_CASE("value loss: max of clipped and unclipped squared error, no 1/2", "[loss]") {
  ResponseBatch batch;
  batch.offsets = {0, 3};
  batch.loss_mask = {1, 1, 1};
  const std::vector<float> old_values = {1.0f, 1.0f, 1.0f}, returns = {2.0f, 2.0f, 2.0f};
  const std::vector<float> values = {1.5f, 0.5f, 1.1f};
  const ValueLossResult r = value_loss(batch, values, old_values, returns, 0.2, 1.0, true);
  // 1.5: clipped to 1.2 -> max(0.64, 0.25) = 0.64, gradient 0 (clamp saturated);
  // 0.5: clipped to 0.8 -> max(1.44, 2.25) = 2.25, gradient 2 * (0.5 - 2) = -3;
  // 1.1: inside -> 0.81, gradient -1.8.
  CHECK(r.loss == Approx(0.64 + 2.25 + 0.81).epsilon(1e-6));
  CHECK(r.dvalues[0] == 0.0f);
  CHECK(r.dvalues[1] == Approx(-3.0));
  CHECK(r.dvalues[2] == Approx(-1.8).epsilon(1e-5));
  CHECK(r.metrics.at("value_clipfrac") == Approx(2.0));

  // Per-sample reduction and finite differences on random data.
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  ResponseBatch random;
  random.offsets = {0, 4, 9};
  for (int t = 0; t < 9; ++t) random.loss_mask.push_back(t == 2 ? 0.0f : 1.0f);
  std::vector<float> v, old_v, ret;
  for (int t = 0; t < 9; ++t) {
    old_v.push_back(quantize(uniform(rng)));
    // steps of +/-0.05 (inside) or +/-0.5 (outside) keep away from the clip kink at 0.2
    v.push_back(quantize(old_v.back() + (t % 2 ? 0.05 : 0.5) * (t % 3 ? 1 : -1)));
    ret.push_back(quantize(uniform(rng)));
  }
  const double scale = 0.5;
  const ValueLossResult rr = value_loss(random, v, old_v, ret, 0.2, scale, false);
  double expected = 0;
  for (int s = 0; s < 2; ++s) {
    double sum = 0, mask = 0;
    for (int64_t t = random.offsets[s]; t < random.offsets[s + 1]; ++t) {
      const double clipped = old_v[t] + std::min(std::max(static_cast<double>(v[t]) - old_v[t], -0.2), 0.2);
      sum += random.loss_mask[t] * std::max((clipped - ret[t]) * (clipped - ret[t]),
                                            (static_cast<double>(v[t]) - ret[t]) * (v[t] - ret[t]));
      mask += random.loss_mask[t];
    }
    expected += sum / mask;
  }
  CHECK(rr.loss == Approx(expected * scale).epsilon(1e-9));
  check_gradient([&](const std::vector<float>& x, const std::vector<float>&) {
    return value_loss(random, x, old_v, ret, 0.2, scale, false).loss;
  }, v, {}, rr.dvalues, "dvalues");
}

// ---- random batches: reference values and finite-difference gradients --------------------------------------------

TEST_CASE("policy loss on random batches: values and metrics match the reference, gradients match finite "
          "differences", "[loss]") {
  struct Variant {
    const char* name;
    AdvantageEstimator estimator;
    bool per_token, dual_clip, tis, opsm, kl_loss, unbiased_kl;
    KlType kl_type;
  };
  const Variant variants[] = {
      {"grpo per-sample", AdvantageEstimator::grpo, false, false, false, false, false, false, KlType::k1},
      {"grpo per-token dual-clip kl k3", AdvantageEstimator::grpo, true, true, false, false, true, false, KlType::k3},
      {"ppo tis opsm kl k2", AdvantageEstimator::ppo, false, true, true, true, true, false, KlType::k2},
      {"grpo unbiased low_var_kl", AdvantageEstimator::grpo, false, false, false, false, true, true,
       KlType::low_var_kl},
      {"gspo per-sample", AdvantageEstimator::gspo, false, false, false, false, true, false, KlType::k3},
      {"gspo per-token tis unbiased k1", AdvantageEstimator::gspo, true, false, true, false, true, true, KlType::k1},
      {"cispo kl k2", AdvantageEstimator::cispo, false, false, false, false, true, false, KlType::k2},
  };
  for (const Variant& v : variants) {
    INFO("variant: " << v.name);
    RandomCase c = random_case({5, 1, 8, 3}, 1234, v.estimator != AdvantageEstimator::ppo);
    c.batch.denominators = rollout_mask_sums(c.batch.offsets, c.batch.loss_mask, {0, 1, 1, 2});
    LossConfig config;
    config.advantage_estimator = v.estimator;
    config.eps_clip = 0.2;
    config.eps_clip_high = 0.28;
    if (v.dual_clip) config.eps_clip_c = 3.0;
    if (v.estimator == AdvantageEstimator::gspo) {
      // GSPO's sequence ratios land anywhere: use a range that keeps them away from the clip kinks.
      config.eps_clip = 0.05;
      config.eps_clip_high = 0.05;
    }
    config.use_tis = v.tis;
    config.tis_clip = 1.5;
    config.tis_clip_low = 0.8;
    config.use_opsm = v.opsm;
    config.opsm_delta = 0.05;
    config.use_kl_loss = v.kl_loss;
    config.kl_loss_coef = 0.3;
    config.kl_loss_type = v.kl_type;
    config.use_unbiased_kl = v.unbiased_kl;
    config.entropy_coef = 0.02;
    config.calculate_per_token_loss = v.per_token;
    const double scale = v.per_token ? 1.0 / count_loss_tokens(c.batch.offsets, c.batch.loss_mask) : 1.0 / 4;

    if (v.estimator == AdvantageEstimator::gspo || v.opsm) {  // keep sequence statistics off their kinks
      for (size_t s = 0; s + 1 < c.batch.offsets.size(); ++s) {
        double sum = 0, mask = 0;
        for (int64_t t = c.batch.offsets[s]; t < c.batch.offsets[s + 1]; ++t) {
          sum += (static_cast<double>(c.batch.old_logprobs[t]) - c.logprobs[t]) * c.batch.loss_mask[t];
          mask += c.batch.loss_mask[t];
        }
        const double seq_kl = sum / std::max(mask, 1.0);
        if (v.opsm) REQUIRE(std::abs(seq_kl - config.opsm_delta) > 0.01);
        if (v.estimator == AdvantageEstimator::gspo && mask > 0) {
          REQUIRE(std::abs(-seq_kl - std::log(0.95)) > 0.01);
          REQUIRE(std::abs(-seq_kl - std::log(1.05)) > 0.01);
        }
      }
    }

    const LossResult r = policy_loss(c.batch, c.logprobs, c.entropy, config, scale);
    const auto expected = reference_policy_loss(c.batch, c.logprobs, c.entropy, config, scale);
    for (const auto& [key, value] : expected) {
      INFO("metric " << key);
      REQUIRE(r.metrics.count(key) == 1);
      CHECK(r.metrics.at(key) == Approx(value).epsilon(1e-10).margin(1e-13));
    }
    CHECK(r.metrics.size() == expected.size());
    CHECK(r.loss == Approx(expected.at("loss")).epsilon(1e-12));

    // CISPO detaches its clipped ratio: hold the ratio fixed by moving old_logprobs with logprobs.
    const bool cispo = v.estimator == AdvantageEstimator::cispo;
    check_gradient([&](const std::vector<float>& logprobs, const std::vector<float>& old) {
      ResponseBatch moved = c.batch;
      if (cispo) moved.old_logprobs = old;
      return policy_loss(moved, logprobs, c.entropy, config, scale).loss;
    }, c.logprobs, cispo ? c.batch.old_logprobs : std::vector<float>{}, r.dlogprobs, "dlogprobs");
    check_gradient([&](const std::vector<float>& entropy, const std::vector<float>&) {
      return policy_loss(c.batch, c.logprobs, entropy, config, scale).loss;
    }, c.entropy, {}, r.dentropy, "dentropy");
  }
}

TEST_CASE("sft loss gradient matches finite differences", "[loss]") {
  RandomCase c = random_case({4, 6}, 99, true);
  LossConfig config;
  const LossResult r = sft_loss(c.batch, c.logprobs, config, 0.5);
  check_gradient([&](const std::vector<float>& x, const std::vector<float>&) {
    return sft_loss(c.batch, x, config, 0.5).loss;
  }, c.logprobs, {}, r.dlogprobs, "sft dlogprobs");
}

// ---- bad input ---------------------------------------------------------------------------------------------------

TEST_CASE("bad input is a slime::Error naming what is wrong", "[loss]") {
  TokenCase c = single_sample({1.0, 1.1}, {1.0, 1.0});
  LossConfig config;
  SECTION("mismatched vector sizes") {
    std::vector<float> short_logprobs = {-1.0f};
    REQUIRE_THROWS_AS(policy_loss(c.batch, short_logprobs, c.entropy, config, 1.0), slime::Error);
    REQUIRE_THROWS_WITH(policy_loss(c.batch, short_logprobs, c.entropy, config, 1.0),
                        Contains("logprobs has 1 entries, expected 2"));
    c.batch.advantages.push_back(0.0f);
    REQUIRE_THROWS_WITH(policy_loss(c.batch, c.logprobs, c.entropy, config, 1.0),
                        Contains("advantages has 3 entries, expected 2"));
  }
  SECTION("offsets not covering the tokens") {
    c.batch.offsets = {0, 1};
    REQUIRE_THROWS_WITH(policy_loss(c.batch, c.logprobs, c.entropy, config, 1.0),
                        Contains("offsets cover 1 tokens but loss_mask has 2"));
    c.batch.offsets = {0, 3, 2};
    REQUIRE_THROWS_WITH(policy_loss(c.batch, c.logprobs, c.entropy, config, 1.0), Contains("must not decrease"));
    c.batch.offsets = {1, 2};
    REQUIRE_THROWS_WITH(policy_loss(c.batch, c.logprobs, c.entropy, config, 1.0), Contains("offsets[0] is 1"));
  }
  SECTION("denominators of the wrong length") {
    c.batch.denominators = {1.0, 2.0};
    REQUIRE_THROWS_WITH(policy_loss(c.batch, c.logprobs, c.entropy, config, 1.0),
                        Contains("denominators has 2 entries, expected 1"));
  }
  SECTION("eps_clip_c <= 1") {
    config.eps_clip_c = 1.0;
    REQUIRE_THROWS_WITH(policy_loss(c.batch, c.logprobs, c.entropy, config, 1.0),
                        Contains("--eps-clip-c (dual-clip constant) must be > 1, got 1"));
  }
  SECTION("kl loss without reference log-probs") {
    config.use_kl_loss = true;
    REQUIRE_THROWS_WITH(policy_loss(c.batch, c.logprobs, c.entropy, config, 1.0), Contains("ref_logprobs"));
  }
  SECTION("unknown option values") {
    REQUIRE_THROWS_WITH(parse_kl_type("k4"), Contains("--kl-loss-type: expected one of k1, k2, k3, low_var_kl, "
                                                      "got 'k4'"));
    REQUIRE_THROWS_WITH(parse_advantage_estimator("dpo"), Contains("--advantage-estimator: expected one of grpo"));
    REQUIRE_THROWS_WITH(parse_loss_type("value"), Contains("--loss-type"));
    CHECK(parse_kl_type("low_var_kl") == KlType::low_var_kl);
    CHECK(parse_advantage_estimator("reinforce_plus_plus_baseline") ==
          AdvantageEstimator::reinforce_plus_plus_baseline);
    CHECK(std::string(kl_type_name(KlType::k3)) == "k3");
  }
  SECTION("value loss sizes") {
    REQUIRE_THROWS_WITH(value_loss(c.batch, {1.0f}, {1.0f, 1.0f}, {1.0f, 1.0f}, 0.2, 1.0, false),
                        Contains("values has 1 entries, expected 2"));
  }
}
