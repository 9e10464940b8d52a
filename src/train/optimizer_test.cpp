// Tests of AdamW, gradient clipping and the LR schedule against values computed here independently: closed forms
// at step 1, a double-precision reference loop written the way torch.optim.AdamW writes it (decay first, eps after
// the bias-corrected square root), and schedule values worked out by hand from Megatron's formulas.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <vector>

#include "core/error.h"
#include "train/adamw.h"
#include "train/lr_scheduler.h"

using namespace slime;
using namespace slime::train;
using Catch::Contains;

namespace {

// The fused kernel receives the betas as fp32, so its 1 - beta2 is 1 - fl(0.999) = 9.99987e-4, 1.3e-5 (relative)
// away from 0.001. The references below use the same fp32-rounded betas and do everything else in double.
double fp32(double value) { return static_cast<float>(value); }

// torch.optim.AdamW (single-tensor path) in double: p *= 1 - lr*wd; m = lerp(m, g, 1-b1); v = b2 v + (1-b2) g^2;
// p -= (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps).
struct ReferenceAdamW {
  std::vector<double> param, exp_avg, exp_avg_sq;

  void step(const std::vector<double>& grad, int64_t t, const AdamWConfig& c, double lr, double wd) {
    const double beta1 = fp32(c.beta1), beta2 = fp32(c.beta2);
    const double bc1 = 1.0 - std::pow(beta1, static_cast<double>(t));
    const double bc2 = 1.0 - std::pow(beta2, static_cast<double>(t));
    for (size_t i = 0; i < param.size(); ++i) {
      param[i] *= 1.0 - lr * wd;
      exp_avg[i] += (grad[i] - exp_avg[i]) * (1.0 - beta1);
      exp_avg_sq[i] = beta2 * exp_avg_sq[i] + (1.0 - beta2) * grad[i] * grad[i];
      const double denom = std::sqrt(exp_avg_sq[i]) / std::sqrt(bc2) + c.eps;
      param[i] -= (lr / bc1) * exp_avg[i] / denom;
    }
  }
};

std::vector<float> to_float(const std::vector<double>& values) { return {values.begin(), values.end()}; }

// Deterministic, varied gradients: mixed signs and magnitudes from 1e-4 to ~3.
double test_gradient(int step, size_t i) {
  const double phase = 0.7 * static_cast<double>(step) + 1.3 * static_cast<double>(i);
  return std::sin(phase) * std::pow(10.0, static_cast<double>(i % 5) - 3.5);
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------------
// AdamW

TEST_CASE("adamw: step 1 is p - lr * (g / (|g| + eps) + wd * p)", "[adamw]") {
  const AdamWConfig config{0.9, 0.999, 1e-8};
  const double lr = 1e-3;
  const double wd = 0.1;
  const std::vector<double> p0 = {0.5, -1.25, 3.0, 0.0, -0.25, 2.0};
  const std::vector<double> g = {0.1, -2.0, 1e-3, 0.5, -1e-9, 0.0};
  std::vector<float> param = to_float(p0), grad = to_float(g), m(p0.size(), 0.0f), v(p0.size(), 0.0f);

  adamw_step(param.data(), grad.data(), m.data(), v.data(), static_cast<int64_t>(param.size()), 1, config, lr, wd);

  for (size_t i = 0; i < p0.size(); ++i) {
    const double gi = static_cast<float>(g[i]);  // the gradient as the optimizer saw it
    const double expected = p0[i] - lr * (gi / (std::fabs(gi) + config.eps) + wd * p0[i]);
    CHECK(param[i] == Approx(expected).epsilon(1e-6).margin(1e-9));
    CHECK(m[i] == Approx((1.0 - fp32(0.9)) * gi).epsilon(1e-6));
    CHECK(v[i] == Approx((1.0 - fp32(0.999)) * gi * gi).epsilon(1e-6));
  }
  // |g| >> eps moves the parameter by ~lr * sign(g); g = -1e-9 by lr * 1e-9 / 1.1e-8; g = 0 only by decay.
  CHECK(p0[1] - param[1] == Approx(-1e-3 - 1e-3 * 0.1 * 1.25).margin(1.2e-7));  // fp32 spacing at 1.25
  CHECK(param[4] - p0[4] == Approx(1e-3 * (1e-9 / 1.1e-8) - 1e-3 * 0.1 * -0.25).margin(3e-8));
  CHECK(param[5] == Approx(2.0 * (1.0 - 1e-4)).epsilon(1e-7));
}

TEST_CASE("adamw: eps is added after the bias-corrected square root", "[adamw]") {
  // g = eps = 1e-8 at step 1: m_hat = g, sqrt(v_hat) = g, update = g / (g + eps) = 0.5.
  //   eps inside the square root would give 1e-8 / sqrt(1e-16 + 1e-8) ~ 1e-4;
  //   eps added to the uncorrected sqrt(v) (the Adam paper's variant) would give ~0.031.
  const AdamWConfig config{0.9, 0.999, 1e-8};
  std::vector<float> param(4, 1.0f), grad(4, 1e-8f), m(4, 0.0f), v(4, 0.0f);
  adamw_step(param.data(), grad.data(), m.data(), v.data(), 4, 1, config, /*lr=*/1.0, /*wd=*/0.0);
  for (float p : param) CHECK(1.0 - p == Approx(0.5).epsilon(1e-5));
}

TEST_CASE("adamw: the betas are fp32 as the fused kernel takes them", "[adamw]") {
  const AdamWConfig config{0.9, 0.999, 1e-8};
  std::vector<float> param = {1.0f}, grad = {2.0f}, m = {0.0f}, v = {0.0f};
  adamw_step(param.data(), grad.data(), m.data(), v.data(), 1, 1, config, 1e-3, 0.0);
  CHECK(v[0] == Approx((1.0 - fp32(0.999)) * 4.0).epsilon(1e-7));
  CHECK(std::fabs(v[0] / 0.004 - 1.0) > 1e-5);  // not torch's fl(1 - 0.999) = 0.001
}

TEST_CASE("adamw: bias correction at step 1 and step 10 from the same state", "[adamw]") {
  const AdamWConfig config{0.9, 0.95, 1e-8};
  const double lr = 2e-3, wd = 0.01;
  const std::vector<double> p0 = {1.0, -0.5, 0.25};
  const std::vector<double> g = {0.3, 0.05, -1.5};
  const std::vector<double> m0 = {0.02, -0.01, 0.5};
  const std::vector<double> v0 = {1e-3, 2e-4, 0.8};

  for (int64_t t : {int64_t{1}, int64_t{10}}) {
    std::vector<float> param = to_float(p0), grad = to_float(g), m = to_float(m0), v = to_float(v0);
    adamw_step(param.data(), grad.data(), m.data(), v.data(), 3, t, config, lr, wd);
    const double bc1 = 1.0 - std::pow(0.9, static_cast<double>(t));   // t=1: 0.1;  t=10: 0.6513215599
    const double bc2 = 1.0 - std::pow(0.95, static_cast<double>(t));  // t=1: 0.05; t=10: 0.4012630608
    for (size_t i = 0; i < 3; ++i) {
      const double m1 = 0.9 * m0[i] + 0.1 * g[i];
      const double v1 = 0.95 * v0[i] + 0.05 * g[i] * g[i];
      const double expected = p0[i] - lr * ((m1 / bc1) / (std::sqrt(v1 / bc2) + 1e-8) + wd * p0[i]);
      INFO("t = " << t << ", element " << i);
      CHECK(param[i] == Approx(expected).epsilon(2e-6));
      CHECK(m[i] == Approx(m1).epsilon(1e-6));
      CHECK(v[i] == Approx(v1).epsilon(1e-6));
    }
  }
}

TEST_CASE("adamw: ten steps follow the double-precision reference, with and without weight decay", "[adamw]") {
  const AdamWConfig config{0.9, 0.999, 1e-8};
  const size_t n = 37;
  for (double wd : {0.0, 0.1}) {
    ReferenceAdamW reference;
    for (size_t i = 0; i < n; ++i) reference.param.push_back(std::cos(0.37 * static_cast<double>(i)) * 2.0);
    reference.exp_avg.assign(n, 0.0);
    reference.exp_avg_sq.assign(n, 0.0);
    std::vector<float> param = to_float(reference.param), m(n, 0.0f), v(n, 0.0f);

    for (int t = 1; t <= 10; ++t) {
      const double lr = 1e-3 * (1.0 - 0.05 * t);  // a decaying LR, as the scheduler would hand out
      std::vector<double> grad(n);
      for (size_t i = 0; i < n; ++i) grad[i] = static_cast<float>(test_gradient(t, i));
      const std::vector<float> grad_f = to_float(grad);
      adamw_step(param.data(), grad_f.data(), m.data(), v.data(), static_cast<int64_t>(n), t, config, lr, wd);
      reference.step(grad, t, config, lr, wd);
    }
    for (size_t i = 0; i < n; ++i) {
      INFO("wd = " << wd << ", element " << i);
      CHECK(param[i] == Approx(reference.param[i]).margin(2e-6));
      CHECK(m[i] == Approx(reference.exp_avg[i]).epsilon(1e-5).margin(1e-12));
      CHECK(v[i] == Approx(reference.exp_avg_sq[i]).epsilon(1e-5).margin(1e-18));
    }
  }
}

TEST_CASE("adamw: zero gradients", "[adamw]") {
  const AdamWConfig config{0.9, 0.999, 1e-8};
  SECTION("from a fresh state only the weight decay moves the parameters") {
    std::vector<float> param = {1.5f, -2.0f, 0.0f}, grad(3, 0.0f), m(3, 0.0f), v(3, 0.0f);
    adamw_step(param.data(), grad.data(), m.data(), v.data(), 3, 1, config, 1e-2, 0.1);
    CHECK(param[0] == Approx(1.5 * (1.0 - 1e-3)).epsilon(1e-7));
    CHECK(param[1] == Approx(-2.0 * (1.0 - 1e-3)).epsilon(1e-7));
    CHECK(param[2] == 0.0f);
    CHECK(m == std::vector<float>(3, 0.0f));
    CHECK(v == std::vector<float>(3, 0.0f));
  }
  SECTION("with momentum the moments decay and the step continues in their direction") {
    std::vector<float> param = {1.0f}, grad = {0.0f}, m = {0.05f}, v = {4e-4f};
    adamw_step(param.data(), grad.data(), m.data(), v.data(), 1, 3, config, 1e-3, 0.0);
    const double m1 = 0.9 * 0.05, v1 = 0.999 * 4e-4;
    const double expected = 1.0 - 1e-3 * (m1 / (1 - 0.729)) / (std::sqrt(v1 / (1 - std::pow(0.999, 3))) + 1e-8);
    CHECK(m[0] == Approx(m1).epsilon(1e-6));
    CHECK(v[0] == Approx(v1).epsilon(1e-6));
    CHECK(param[0] == Approx(expected).epsilon(1e-6));
  }
}

TEST_CASE("adamw: a span updated in pieces equals the span updated at once, bit for bit", "[adamw]") {
  const AdamWConfig config{0.9, 0.999, 1e-8};
  const int64_t n = 101;
  std::vector<float> param_a(n), grad(n), m_a(n, 0.0f), v_a(n, 0.0f);
  for (int64_t i = 0; i < n; ++i) {
    param_a[i] = static_cast<float>(std::sin(0.1 * i));
    grad[i] = static_cast<float>(test_gradient(1, static_cast<size_t>(i)));
  }
  std::vector<float> param_b = param_a, m_b = m_a, v_b = v_a;
  for (int t = 1; t <= 3; ++t) {
    adamw_step(param_a.data(), grad.data(), m_a.data(), v_a.data(), n, t, config, 1e-3, 0.05);
    adamw_step(param_b.data(), grad.data(), m_b.data(), v_b.data(), 40, t, config, 1e-3, 0.05);
    adamw_step(param_b.data() + 40, grad.data() + 40, m_b.data() + 40, v_b.data() + 40, n - 40, t, config, 1e-3,
               0.05);
  }
  CHECK(param_a == param_b);
  CHECK(m_a == m_b);
  CHECK(v_a == v_b);
}

TEST_CASE("adamw: bad arguments are errors that say what is wrong", "[adamw]") {
  std::vector<float> param(2, 1.0f), grad(2, 0.1f), m(2, 0.0f), v(2, 0.0f);
  const AdamWConfig good{0.9, 0.999, 1e-8};
  REQUIRE_THROWS_WITH(adamw_step(param.data(), grad.data(), m.data(), v.data(), 2, 0, good, 1e-3, 0.0),
                      Contains("step counts updates from 1"));
  REQUIRE_THROWS_WITH(adamw_step(param.data(), grad.data(), m.data(), v.data(), 2, 1, AdamWConfig{1.0, 0.999, 1e-8},
                                 1e-3, 0.0),
                      Contains("--adam-beta1"));
  REQUIRE_THROWS_WITH(adamw_step(param.data(), grad.data(), m.data(), v.data(), 2, 1, AdamWConfig{0.9, -0.1, 1e-8},
                                 1e-3, 0.0),
                      Contains("--adam-beta2"));
  REQUIRE_THROWS_WITH(adamw_step(param.data(), grad.data(), m.data(), v.data(), 2, 1, good, -1e-3, 0.0),
                      Contains("learning rate"));
  CHECK(param == std::vector<float>(2, 1.0f));  // nothing was touched
}

TEST_CASE("megatron_no_weight_decay: biases and 1-D parameters", "[adamw]") {
  CHECK(megatron_no_weight_decay("decoder.layers.0.self_attention.linear_qkv.bias", 1));
  CHECK(megatron_no_weight_decay("decoder.layers.3.self_attention.linear_qkv.layer_norm_weight", 1));
  CHECK(megatron_no_weight_decay("decoder.final_layernorm.weight", 1));
  CHECK(megatron_no_weight_decay("some.odd.bias", 2));
  CHECK_FALSE(megatron_no_weight_decay("decoder.layers.0.mlp.linear_fc1.weight", 2));
  CHECK_FALSE(megatron_no_weight_decay("embedding.word_embeddings.weight", 2));
  CHECK_FALSE(megatron_no_weight_decay("output_layer.bias_scale", 2));
  CHECK_FALSE(megatron_no_weight_decay("bias", 2));
}

// ---------------------------------------------------------------------------------------------------------------
// Gradient clipping

TEST_CASE("clipping: sum of squares in double", "[clip]") {
  const std::vector<float> small = {3.0f, 4.0f};
  CHECK(sum_of_squares(small.data(), 2) == 25.0);
  CHECK(sum_of_squares(small.data(), 0) == 0.0);

  // 1/8 .. 1003/8 are exact in fp32; the sum of their squares is exact in double: sum k^2 / 64.
  std::vector<float> values;
  for (int k = 1; k <= 1003; ++k) values.push_back(static_cast<float>(k) / 8.0f);
  const double n = 1003;
  CHECK(sum_of_squares(values.data(), 1003) == n * (n + 1) * (2 * n + 1) / 6.0 / 64.0);

  // Values whose squares underflow fp32 but not double.
  const std::vector<float> tiny(13, 1e-30f);
  CHECK(sum_of_squares(tiny.data(), 13) == Approx(13 * 1e-60).epsilon(1e-6));
}

TEST_CASE("clipping: norm below and above clip-grad", "[clip]") {
  SECTION("below: coefficient 1") {
    const GradClipDecision decision = decide_grad_clip(0.25, 1.0);
    CHECK(decision.finite);
    CHECK(decision.grad_norm == 0.5);
    CHECK(decision.coefficient == 1.0);
  }
  SECTION("above: clip / (norm + 1e-6), and the clipped gradients have norm ~clip") {
    std::vector<float> grads = {3.0f, 0.0f, -4.0f};  // norm 5
    const double norm = grad_norm_from_sum_of_squares(sum_of_squares(grads.data(), 3));
    CHECK(norm == 5.0);
    const double coefficient = clip_coefficient(norm, 1.0);
    CHECK(coefficient == Approx(1.0 / (5.0 + 1e-6)).epsilon(1e-15));
    CHECK(coefficient < 0.2);
    scale_in_place(grads.data(), 3, coefficient);
    CHECK(grads[0] == Approx(0.6).epsilon(1e-6));
    CHECK(grads[2] == Approx(-0.8).epsilon(1e-6));
    CHECK(std::sqrt(sum_of_squares(grads.data(), 3)) == Approx(1.0).epsilon(1e-6));
  }
  SECTION("exactly at the threshold the 1e-6 makes it clip a hair") {
    CHECK(clip_coefficient(1.0, 1.0) == Approx(1.0 / 1.000001).epsilon(1e-15));
    CHECK(clip_coefficient(1.0, 1.0) < 1.0);
  }
  SECTION("clip-grad 0 turns clipping off") {
    CHECK(clip_coefficient(1e6, 0.0) == 1.0);
    CHECK(decide_grad_clip(1e12, 0.0).coefficient == 1.0);
  }
}

TEST_CASE("clipping: inf and nan gradients are detected, not clipped", "[clip]") {
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> with_inf = {1.0f, inf, 2.0f};
  const std::vector<float> with_nan = {1.0f, 2.0f, nan, 3.0f, 4.0f, 5.0f, 6.0f, 7.0f, 8.0f};

  const GradClipDecision inf_decision = decide_grad_clip(sum_of_squares(with_inf.data(), 3), 1.0);
  CHECK_FALSE(inf_decision.finite);
  CHECK(std::isinf(inf_decision.grad_norm));
  CHECK(inf_decision.coefficient == 1.0);

  const GradClipDecision nan_decision = decide_grad_clip(sum_of_squares(with_nan.data(), 9), 1.0);
  CHECK_FALSE(nan_decision.finite);
  CHECK(std::isnan(nan_decision.grad_norm));

  // A finite sum that overflows fp32 squares is still finite in double.
  const std::vector<float> large = {3e20f, 4e20f};
  const GradClipDecision large_decision = decide_grad_clip(sum_of_squares(large.data(), 2), 1.0);
  CHECK(large_decision.finite);
  CHECK(large_decision.grad_norm == Approx(5e20).epsilon(1e-6));

  REQUIRE_THROWS_WITH(clip_coefficient(std::numeric_limits<double>::infinity(), 1.0), Contains("skipped"));
  REQUIRE_THROWS_WITH(clip_coefficient(std::nan(""), 1.0), Contains("non-finite"));
}

// ---------------------------------------------------------------------------------------------------------------
// LR schedule

namespace {

// lr 1e-3 -> 1e-4, warm-up from 1e-5 over 10 iterations, 100 training iterations of 4 samples:
// warm-up 40 samples, decay 400 samples.
LrScheduleOptions base_options(const std::string& style) {
  LrScheduleOptions o;
  o.lr = 1e-3;
  o.min_lr = 1e-4;
  o.lr_warmup_init = 1e-5;
  o.lr_decay_style = style;
  o.lr_warmup_iters = 10;
  o.train_iters = 100;
  o.global_batch_size = 4;
  o.weight_decay = 0.01;
  return o;
}

double lr_after(const LrScheduleOptions& options, int64_t samples) {
  LrScheduler scheduler(options);
  scheduler.step(samples);
  return scheduler.lr();
}

constexpr double kTight = 1e-12;

}  // namespace

TEST_CASE("lr schedule: steps are counted in samples as Megatron's training.py sizes them", "[lr]") {
  LrScheduleOptions o = base_options("linear");
  const LrSchedulerConfig c = lr_scheduler_config_from_options(o);
  CHECK(c.lr_warmup_steps == 40.0);
  CHECK(c.lr_decay_steps == 400);
  CHECK(c.wd_incr_steps == 400);
  CHECK(c.init_lr == 1e-5);
  CHECK(c.start_wd == 0.01);
  CHECK(c.end_wd == 0.01);

  o.lr_decay_iters = 50;  // shorter decay; the weight-decay ramp still spans the training iterations
  const LrSchedulerConfig shorter = lr_scheduler_config_from_options(o);
  CHECK(shorter.lr_decay_steps == 200);
  CHECK(shorter.wd_incr_steps == 400);

  // slime: train_iters = num_rollout * rollout_batch_size * n_samples_per_prompt / global_batch_size (floor).
  CHECK(slime_train_iters(10, 8, 4, 16) == 20);
  CHECK(slime_train_iters(3, 5, 3, 8) == 5);
  CHECK(slime_train_iters(0, 8, 4, 16) == 0);

  // Increments are whatever each step consumed (dynamic sampling can vary them); 0 is a no-op.
  LrScheduler scheduler(base_options("linear"));
  scheduler.step(4);
  scheduler.step(0);
  scheduler.step(3);
  CHECK(scheduler.num_steps() == 7);
  CHECK(scheduler.lr() == Approx(1e-5 + (1e-3 - 1e-5) * 7.0 / 40.0).epsilon(kTight));
}

TEST_CASE("lr schedule: linear warm-up from lr-warmup-init", "[lr]") {
  const LrScheduleOptions o = base_options("cosine");
  CHECK(lr_after(o, 0) == 1e-5);
  CHECK(lr_after(o, 4) == Approx(1e-5 + 9.9e-4 * 0.1).epsilon(kTight));
  CHECK(lr_after(o, 20) == Approx(5.05e-4).epsilon(kTight));
  CHECK(lr_after(o, 40) == Approx(1e-3).epsilon(kTight));  // the last warm-up sample reaches --lr

  LrScheduleOptions no_warmup = base_options("linear");
  no_warmup.lr_warmup_iters = 0;
  CHECK(lr_after(no_warmup, 0) == 1e-3);  // no warm-up: the decay starts at --lr, not at --lr-warmup-init
}

TEST_CASE("lr schedule: each decay style at the start, middle and end of the decay, then the floor", "[lr]") {
  // Decay runs over samples 40..400; the middle is 220.
  SECTION("linear") {
    const LrScheduleOptions o = base_options("linear");
    CHECK(lr_after(o, 44) == Approx(1e-4 + 9e-4 * (1.0 - 4.0 / 360.0)).epsilon(kTight));
    CHECK(lr_after(o, 220) == Approx(5.5e-4).epsilon(kTight));
    CHECK(lr_after(o, 310) == Approx(1e-4 + 9e-4 * 0.25).epsilon(kTight));
    CHECK(lr_after(o, 400) == Approx(1e-4).epsilon(kTight));
    CHECK(lr_after(o, 404) == 1e-4);
    CHECK(lr_after(o, 100000) == 1e-4);
  }
  SECTION("cosine") {
    const LrScheduleOptions o = base_options("cosine");
    CHECK(lr_after(o, 130) == Approx(1e-4 + 9e-4 * 0.5 * (std::sqrt(0.5) + 1.0)).epsilon(kTight));  // r = 1/4
    CHECK(lr_after(o, 220) == Approx(5.5e-4).epsilon(kTight));                                         // r = 1/2
    CHECK(lr_after(o, 310) == Approx(1e-4 + 9e-4 * 0.5 * (1.0 - std::sqrt(0.5))).epsilon(kTight));  // r = 3/4
    CHECK(lr_after(o, 400) == Approx(1e-4).epsilon(kTight));
    CHECK(lr_after(o, 1000) == 1e-4);
  }
  SECTION("constant keeps --lr after the warm-up, also past the decay") {
    const LrScheduleOptions o = base_options("constant");
    CHECK(lr_after(o, 20) == Approx(5.05e-4).epsilon(kTight));
    CHECK(lr_after(o, 41) == 1e-3);
    CHECK(lr_after(o, 400) == 1e-3);
    CHECK(lr_after(o, 5000) == 1e-3);
  }
  SECTION("inverse-square-root: lr * sqrt(warmup / steps), floored at --min-lr, --min-lr after the decay") {
    LrScheduleOptions o = base_options("inverse-square-root");
    CHECK(lr_after(o, 160) == Approx(5e-4).epsilon(kTight));
    CHECK(lr_after(o, 360) == Approx(1e-3 / 3.0).epsilon(kTight));
    CHECK(lr_after(o, 401) == 1e-4);
    o.min_lr = 4e-4;
    CHECK(lr_after(o, 360) == 4e-4);
  }
  SECTION("WSD: stable until the last --lr-wsd-decay-iters, then the anneal") {
    LrScheduleOptions o = base_options("WSD");
    o.lr_wsd_decay_iters = 25;  // 100 samples: anneal over 300..400
    o.lr_wsd_decay_style = "linear";
    CHECK(lr_after(o, 41) == 1e-3);
    CHECK(lr_after(o, 300) == 1e-3);
    CHECK(lr_after(o, 350) == Approx(5.5e-4).epsilon(kTight));
    CHECK(lr_after(o, 400) == Approx(1e-4).epsilon(kTight));
    o.lr_wsd_decay_style = "exponential";
    CHECK(lr_after(o, 350) == Approx(1e-4 + 9e-4 * (std::sqrt(2.0) - 1.0)).epsilon(kTight));
    CHECK(lr_after(o, 400) == Approx(1e-4).epsilon(kTight));
    o.lr_wsd_decay_style = "cosine";
    CHECK(lr_after(o, 350) == Approx(5.5e-4).epsilon(kTight));
    o.lr_wsd_decay_style = "minus_sqrt";
    CHECK(lr_after(o, 350) == Approx(1e-4 + 9e-4 * (1.0 - std::sqrt(0.5))).epsilon(kTight));
    CHECK(lr_after(o, 401) == 1e-4);
  }
}

TEST_CASE("lr schedule: --lr-warmup-fraction of the decay samples", "[lr]") {
  LrScheduleOptions o = base_options("linear");
  o.lr_warmup_iters = 0;
  o.lr_warmup_fraction = 0.1;
  CHECK(lr_scheduler_config_from_options(o).lr_warmup_steps == Approx(40.0).epsilon(kTight));
  CHECK(lr_after(o, 20) == Approx(5.05e-4).epsilon(kTight));

  // 10 iterations of 3 samples, a quarter warm-up: 7.5 samples, kept fractional as Megatron keeps it.
  o.train_iters = 10;
  o.global_batch_size = 3;
  o.lr_warmup_fraction = 0.25;
  CHECK(lr_scheduler_config_from_options(o).lr_warmup_steps == 7.5);
  CHECK(lr_after(o, 6) == Approx(1e-5 + 9.9e-4 * 0.8).epsilon(kTight));
  CHECK(lr_after(o, 9) == Approx(1e-4 + 9e-4 * (1.0 - 1.5 / 22.5)).epsilon(kTight));
}

TEST_CASE("lr schedule: weight-decay increment styles", "[lr]") {
  LrScheduleOptions o = base_options("linear");
  SECTION("constant uses --weight-decay throughout") {
    for (int64_t s : {0, 100, 400, 1000}) {
      LrScheduler scheduler(o);
      scheduler.step(s);
      CHECK(scheduler.weight_decay() == 0.01);
    }
  }
  SECTION("linear and cosine ramp from --start-weight-decay to --end-weight-decay over the training samples") {
    o.start_weight_decay = 0.0;
    o.end_weight_decay = 0.1;
    o.weight_decay_incr_style = "linear";
    LrScheduler linear(o);
    linear.step(100);
    CHECK(linear.weight_decay() == Approx(0.025).epsilon(kTight));
    linear.step(400);
    CHECK(linear.weight_decay() == 0.1);

    o.weight_decay_incr_style = "cosine";
    LrScheduler cosine(o);
    CHECK(cosine.weight_decay() == Approx(0.0).margin(1e-15));
    cosine.step(100);
    CHECK(cosine.weight_decay() == Approx(0.1 * 0.5 * (1.0 - std::sqrt(0.5))).epsilon(kTight));
    cosine.step(100);
    CHECK(cosine.weight_decay() == Approx(0.05).epsilon(kTight));
  }
  SECTION("no decay for biases and 1-D parameters") {
    LrScheduler scheduler(o);
    CHECK(scheduler.weight_decay_for("decoder.layers.0.mlp.linear_fc1.weight", 2) == 0.01);
    CHECK(scheduler.weight_decay_for("decoder.layers.0.self_attention.linear_qkv.bias", 1) == 0.0);
    CHECK(scheduler.weight_decay_for("decoder.final_layernorm.weight", 1) == 0.0);
  }
}

TEST_CASE("lr schedule: state save and load continue identically", "[lr]") {
  LrScheduleOptions o = base_options("cosine");
  o.start_weight_decay = 0.01;
  o.end_weight_decay = 0.05;
  o.weight_decay_incr_style = "linear";
  LrScheduler original(o);
  for (int i = 0; i < 37; ++i) original.step(4);

  const json state = original.state();
  CHECK(state.at("num_steps") == 148);
  CHECK(state.at("max_lr") == 1e-3);
  CHECK(state.at("lr_decay_style") == "cosine");
  CHECK(state.at("lr_decay_steps") == 400);
  CHECK(state.at("wd_incr_style") == "linear");

  LrScheduler resumed(o);
  resumed.load(json::parse(state.dump()), "iter_0000037/scheduler");
  CHECK(resumed.num_steps() == 148);
  for (int i = 0; i < 80; ++i) {
    INFO("step " << i);
    REQUIRE(resumed.lr() == original.lr());
    REQUIRE(resumed.weight_decay() == original.weight_decay());
    original.step(4);
    resumed.step(4);
  }
  CHECK(resumed.lr() == 1e-4);  // both reached the floor
}

TEST_CASE("lr schedule: loading a checkpoint whose schedule differs from the options", "[lr]") {
  LrScheduler saved(base_options("linear"));
  saved.step(100);
  const json state = saved.state();

  LrScheduleOptions changed = base_options("linear");
  changed.lr = 2e-3;
  SECTION("by default it is an error naming the field") {
    LrScheduler scheduler(changed);
    REQUIRE_THROWS_WITH(scheduler.load(state, "ckpt/scheduler"),
                        Contains("ckpt/scheduler") && Contains("max_lr") && Contains("0.002") &&
                            Contains("0.001"));
    CHECK(scheduler.num_steps() == 0);  // a failed load leaves the scheduler as it was
  }
  SECTION("use_checkpoint takes the checkpoint's values") {
    changed.checkpoint_policy = SchedulerCheckpointPolicy::use_checkpoint;
    LrScheduler scheduler(changed);
    scheduler.load(state);
    CHECK(scheduler.config().max_lr == 1e-3);
    CHECK(scheduler.lr() == saved.lr());
  }
  SECTION("use_options keeps the options and takes only the step count") {
    changed.checkpoint_policy = SchedulerCheckpointPolicy::use_options;
    LrScheduler scheduler(changed);
    scheduler.load(state);
    CHECK(scheduler.config().max_lr == 2e-3);
    CHECK(scheduler.num_steps() == 100);
    CHECK(scheduler.lr() == Approx(1e-4 + (2e-3 - 1e-4) * (1.0 - 60.0 / 360.0)).epsilon(kTight));
  }
  SECTION("a different decay style is named too") {
    LrScheduler scheduler(base_options("cosine"));
    REQUIRE_THROWS_WITH(scheduler.load(state), Contains("lr_decay_style") && Contains("linear"));
  }
  SECTION("missing or malformed fields name the field") {
    json broken = state;
    broken.erase("num_steps");
    LrScheduler scheduler(base_options("linear"));
    REQUIRE_THROWS_WITH(scheduler.load(broken, "ckpt/scheduler"),
                        Contains("ckpt/scheduler") && Contains("num_steps"));
    broken = state;
    broken["lr_decay_style"] = "exponential";
    REQUIRE_THROWS_WITH(scheduler.load(broken), Contains("lr_decay_style") && Contains("exponential"));
  }
}

TEST_CASE("lr schedule: inconsistent options are errors naming the option", "[lr]") {
  LrScheduleOptions o = base_options("linear");
  SECTION("warm-up as long as the decay") {
    o.lr_warmup_iters = 100;
    REQUIRE_THROWS_WITH(LrScheduler(o), Contains("--lr-warmup-iters (100)") && Contains("--lr-decay-iters"));
    o.lr_warmup_iters = 30;
    o.lr_decay_iters = 20;
    REQUIRE_THROWS_WITH(LrScheduler(o), Contains("--lr-warmup-iters (30) must be < --lr-decay-iters (20)"));
  }
  SECTION("--min-lr above --lr") {
    o.min_lr = 2e-3;
    REQUIRE_THROWS_WITH(LrScheduler(o), Contains("--min-lr") && Contains("--lr ("));
  }
  SECTION("--lr-warmup-init above --lr") {
    o.lr_warmup_init = 5e-3;
    REQUIRE_THROWS_WITH(LrScheduler(o), Contains("--lr-warmup-init"));
  }
  SECTION("warm-up fraction and iterations together, or a fraction of 1") {
    o.lr_warmup_fraction = 0.1;
    REQUIRE_THROWS_WITH(LrScheduler(o), Contains("--lr-warmup-fraction and --lr-warmup-iters are exclusive"));
    o.lr_warmup_iters = 0;
    o.lr_warmup_fraction = 1.0;
    REQUIRE_THROWS_WITH(LrScheduler(o), Contains("--lr-warmup-fraction must be in [0, 1)"));
  }
  SECTION("no training iterations") {
    o.train_iters = 0;
    REQUIRE_THROWS_WITH(LrScheduler(o), Contains("--train-iters") && Contains("--num-rollout"));
  }
  SECTION("unknown decay style") {
    o.lr_decay_style = "exp";
    REQUIRE_THROWS_WITH(LrScheduler(o), Contains("--lr-decay-style") && Contains("'exp'") &&
                                            Contains("inverse-square-root"));
  }
  SECTION("WSD without its decay length") {
    o.lr_decay_style = "WSD";
    REQUIRE_THROWS_WITH(LrScheduler(o), Contains("--lr-wsd-decay-iters"));
  }
  SECTION("start/end weight decay with the constant style, or missing with a ramp") {
    o.start_weight_decay = 0.0;
    REQUIRE_THROWS_WITH(LrScheduler(o), Contains("--start-weight-decay"));
    o.start_weight_decay.reset();
    o.weight_decay_incr_style = "cosine";
    REQUIRE_THROWS_WITH(LrScheduler(o), Contains("needs --start-weight-decay and --end-weight-decay"));
    o.start_weight_decay = 0.1;
    o.end_weight_decay = 0.05;
    REQUIRE_THROWS_WITH(LrScheduler(o), Contains("--end-weight-decay (0.05) must be >= --start-weight-decay"));
  }
  SECTION("a config built by hand is checked by field name") {
    LrSchedulerConfig c = lr_scheduler_config_from_options(base_options("linear"));
    c.min_lr = 2e-3;
    REQUIRE_THROWS_WITH(LrScheduler(c), Contains("max_lr (0.001) must be >= min_lr (0.002)"));
    c = lr_scheduler_config_from_options(base_options("linear"));
    c.lr_warmup_steps = 400;
    REQUIRE_THROWS_WITH(LrScheduler(c), Contains("lr_warmup_steps (400) must be < lr_decay_steps (400)"));
  }
}
