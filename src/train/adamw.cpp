// AdamW step and gradient-clipping helpers (see adamw.h for the formulas and the sources they follow).
#include "train/adamw.h"

#include <cmath>

#include "core/error.h"

namespace slime::train {

void check_adamw_config(const AdamWConfig& config) {
  SLIME_CHECK(config.beta1 >= 0.0 && config.beta1 < 1.0, "--adam-beta1 must be in [0, 1), got ", config.beta1);
  SLIME_CHECK(config.beta2 >= 0.0 && config.beta2 < 1.0, "--adam-beta2 must be in [0, 1), got ", config.beta2);
  SLIME_CHECK(std::isfinite(config.eps) && config.eps >= 0.0, "--adam-eps must be finite and >= 0, got ",
              config.eps);
}

void adamw_step(float* param, const float* grad, float* exp_avg, float* exp_avg_sq, int64_t n, int64_t step,
                const AdamWConfig& config, double lr, double weight_decay) {
  check_adamw_config(config);
  SLIME_CHECK(step >= 1, "adamw_step: step counts updates from 1, got ", step);
  SLIME_CHECK(n >= 0, "adamw_step: negative element count ", n);
  SLIME_CHECK(std::isfinite(lr) && lr >= 0.0, "adamw_step: learning rate must be finite and >= 0, got ", lr);
  SLIME_CHECK(std::isfinite(weight_decay) && weight_decay >= 0.0,
              "adamw_step: weight decay must be finite and >= 0, got ", weight_decay);
  if (n == 0) return;
  SLIME_ASSERT(param && grad && exp_avg && exp_avg_sq, "null span of ", n, " elements");

  // The scalars as the fused kernel receives them: fp32 arguments, bias corrections from a double pow.
  const float beta1 = static_cast<float>(config.beta1);
  const float beta2 = static_cast<float>(config.beta2);
  const float eps = static_cast<float>(config.eps);
  const float lr_f = static_cast<float>(lr);
  const float decay = static_cast<float>(weight_decay);
  const float beta1_correction = static_cast<float>(1.0 - std::pow(static_cast<double>(beta1), step));
  const float beta2_correction = static_cast<float>(1.0 - std::pow(static_cast<double>(beta2), step));
  const float one_minus_beta1 = 1.0f - beta1;
  const float one_minus_beta2 = 1.0f - beta2;

  for (int64_t i = 0; i < n; ++i) {
    const float g = grad[i];
    const float p = param[i];
    const float m = beta1 * exp_avg[i] + one_minus_beta1 * g;
    const float v = beta2 * exp_avg_sq[i] + one_minus_beta2 * g * g;
    const float m_unbiased = m / beta1_correction;
    const float v_unbiased = v / beta2_correction;
    const float denom = std::sqrt(v_unbiased) + eps;
    const float update = (m_unbiased / denom) + (decay * p);
    param[i] = p - (lr_f * update);
    exp_avg[i] = m;
    exp_avg_sq[i] = v;
  }
}

bool megatron_no_weight_decay(const std::string& name, int ndim) {
  static const std::string bias_suffix = ".bias";
  const bool is_bias = name.size() >= bias_suffix.size() &&
                       name.compare(name.size() - bias_suffix.size(), bias_suffix.size(), bias_suffix) == 0;
  return is_bias || ndim == 1;
}

// ---------------------------------------------------------------------------------------------------------------
// Gradient clipping

double sum_of_squares(const float* values, int64_t n) {
  SLIME_CHECK(n >= 0, "sum_of_squares: negative element count ", n);
  if (n == 0) return 0.0;
  SLIME_ASSERT(values != nullptr, "null span of ", n, " elements");
  // Eight running sums (element i goes to sum i % 8), added in a fixed order at the end: deterministic, and the
  // independent chains let the compiler keep several additions in flight.
  constexpr int kLanes = 8;
  double lane_sums[kLanes] = {0, 0, 0, 0, 0, 0, 0, 0};
  const int64_t full = n - n % kLanes;
  for (int64_t i = 0; i < full; i += kLanes) {
    for (int lane = 0; lane < kLanes; ++lane) {
      const double x = values[i + lane];
      lane_sums[lane] += x * x;
    }
  }
  for (int64_t i = full; i < n; ++i) {
    const double x = values[i];
    lane_sums[i - full] += x * x;
  }
  double total = 0.0;
  for (int lane = 0; lane < kLanes; ++lane) total += lane_sums[lane];
  return total;
}

double grad_norm_from_sum_of_squares(double total_sum_of_squares) {
  // A negative total cannot come from squares; nan passes through (it compares false).
  SLIME_ASSERT(!(total_sum_of_squares < 0.0), "sum of squares is negative: ", total_sum_of_squares);
  return std::sqrt(total_sum_of_squares);
}

double clip_coefficient(double grad_norm, double clip_grad) {
  SLIME_CHECK(std::isfinite(grad_norm), "clip_coefficient: gradient norm is ", grad_norm,
              "; a step with a non-finite gradient norm must be skipped, not clipped");
  SLIME_CHECK(grad_norm >= 0.0, "clip_coefficient: gradient norm must be >= 0, got ", grad_norm);
  if (clip_grad <= 0.0) return 1.0;
  const double coefficient = clip_grad / (grad_norm + 1.0e-6);
  return coefficient < 1.0 ? coefficient : 1.0;
}

void scale_in_place(float* values, int64_t n, double scale) {
  SLIME_CHECK(n >= 0, "scale_in_place: negative element count ", n);
  if (n == 0) return;
  SLIME_ASSERT(values != nullptr, "null span of ", n, " elements");
  const float scale_f = static_cast<float>(scale);
  for (int64_t i = 0; i < n; ++i) values[i] *= scale_f;
}

GradClipDecision decide_grad_clip(double global_sum_of_squares, double clip_grad) {
  GradClipDecision decision;
  decision.grad_norm = grad_norm_from_sum_of_squares(global_sum_of_squares);
  decision.finite = std::isfinite(decision.grad_norm);
  decision.coefficient = decision.finite ? clip_coefficient(decision.grad_norm, clip_grad) : 1.0;
  return decision;
}

}  // namespace slime::train
