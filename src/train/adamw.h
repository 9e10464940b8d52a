// AdamW and gradient-clipping math on one rank's flat fp32 spans: the arithmetic the distributed optimizer runs
// after it has reduce-scattered the gradients and before it all-gathers the parameters.
//
// AdamW follows the fused kernel Megatron-LM runs (Transformer Engine / Apex FusedAdam, adam_w_mode=1,
// bias_correction=1), which is torch.optim.AdamW up to rounding:
//   m     = beta1 * m + (1 - beta1) * g
//   v     = beta2 * v + (1 - beta2) * g * g
//   denom = sqrt(v / (1 - beta2^t)) + eps                  eps is added after the bias-corrected square root
//   p     = p - lr * ((m / (1 - beta1^t)) / denom + weight_decay * p)   decay uses p before this step
// Arithmetic is fp32 per element in that order, with the scalars rounded to fp32 as the kernel receives them
// and the bias corrections computed as 1 - pow(beta, t) in double, then rounded (as TE's host code does). Every
// element is independent, so the result does not depend on how a span is split or threaded.
//
// Clipping follows Megatron's clip_grad_norm_fp32: norm = sqrt(sum over all ranks of sum of squares),
// coefficient = clip_grad / (norm + 1e-6), applied only when it is below 1. A non-finite norm is reported to the
// caller, who skips the step (and does not advance the LR schedule).
#pragma once

#include <cstdint>
#include <string>

namespace slime::train {

// The constant hyperparameters of AdamW (--adam-beta1, --adam-beta2, --adam-eps). The learning rate and weight
// decay change every step (LrScheduler) and per parameter (megatron_no_weight_decay), so they are arguments of
// adamw_step.
struct AdamWConfig {
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
};

// Throws when beta1/beta2 are outside [0, 1) or eps is negative or not finite; names the option.
void check_adamw_config(const AdamWConfig& config);

// One AdamW step on n elements. exp_avg (m) and exp_avg_sq (v) start at zero; step is the number of this update,
// counted from 1 (the bias corrections use it). param, exp_avg and exp_avg_sq are updated in place.
//   param, grad, exp_avg, exp_avg_sq: [n] fp32 (the fp32 master copy, the reduced gradient, the two moments)
void adamw_step(float* param, const float* grad, float* exp_avg, float* exp_avg_sq, int64_t n, int64_t step,
                const AdamWConfig& config, double lr, double weight_decay);

// Megatron's default no-weight-decay rule (megatron/core/optimizer: _get_param_groups): biases and 1-D
// parameters (norm weights) get weight_decay * 0. `name` is the Megatron parameter name, `ndim` the rank of its
// full (unsharded) shape.
bool megatron_no_weight_decay(const std::string& name, int ndim);

// ---------------------------------------------------------------------------------------------------------------
// Gradient clipping

// Sum of x[i]^2 accumulated in double, in a fixed order (so the same span gives the same bits every time).
// An inf or nan element makes the result inf or nan.
double sum_of_squares(const float* values, int64_t n);

// L2 norm from the all-reduced sum of squares: sqrt(total). inf/nan pass through (check with std::isfinite).
double grad_norm_from_sum_of_squares(double total_sum_of_squares);

// min(1, clip_grad / (norm + 1e-6)) as Megatron computes it; clip_grad <= 0 means clipping is off (returns 1).
// The norm must be finite: the caller skips the step on a non-finite norm before asking for a coefficient.
double clip_coefficient(double grad_norm, double clip_grad);

// values[i] *= scale in fp32 (Megatron's multi_tensor_scale receives the coefficient as fp32).
void scale_in_place(float* values, int64_t n, double scale);

// What to do with this step's gradients, from the global sum of squares.
struct GradClipDecision {
  double grad_norm = 0.0;    // sqrt(global sum of squares); the value Megatron logs as grad_norm
  bool finite = true;        // false: skip the optimizer step and the scheduler increment
  double coefficient = 1.0;  // multiply every gradient by this (1 = leave them alone); 1 when !finite
};
GradClipDecision decide_grad_clip(double global_sum_of_squares, double clip_grad);

}  // namespace slime::train
