// Megatron's OptimizerParamScheduler and the sample-based sizing slime gives it (see lr_scheduler.h).
#include "train/lr_scheduler.h"

#include <cmath>
#include <cstdio>

#include "core/error.h"
#include "train/adamw.h"

namespace slime::train {

namespace {

constexpr double kPi = 3.141592653589793;  // math.pi

// Enough digits that two different doubles never print the same (errors compare exact values).
std::string exact(double value) {
  char buffer[40];
  std::snprintf(buffer, sizeof buffer, "%.17g", value);
  return buffer;
}

template <class Style>
struct StyleName {
  Style style;
  const char* name;
};

constexpr StyleName<LrDecayStyle> kLrDecayStyles[] = {
    {LrDecayStyle::constant, "constant"},
    {LrDecayStyle::linear, "linear"},
    {LrDecayStyle::cosine, "cosine"},
    {LrDecayStyle::inverse_square_root, "inverse-square-root"},
    {LrDecayStyle::wsd, "WSD"},
};
constexpr StyleName<WsdDecayStyle> kWsdDecayStyles[] = {
    {WsdDecayStyle::linear, "linear"},
    {WsdDecayStyle::cosine, "cosine"},
    {WsdDecayStyle::exponential, "exponential"},
    {WsdDecayStyle::minus_sqrt, "minus_sqrt"},
};
constexpr StyleName<WeightDecayIncrStyle> kWeightDecayIncrStyles[] = {
    {WeightDecayIncrStyle::constant, "constant"},
    {WeightDecayIncrStyle::linear, "linear"},
    {WeightDecayIncrStyle::cosine, "cosine"},
};

template <class Style, size_t N>
const char* style_name(const StyleName<Style> (&table)[N], Style style) {
  for (const auto& entry : table)
    if (entry.style == style) return entry.name;
  SLIME_ASSERT(false, "style value ", static_cast<int>(style), " has no name");
  return "";
}

template <class Style, size_t N>
Style parse_style(const StyleName<Style> (&table)[N], const std::string& text, const std::string& option) {
  std::string accepted;
  for (const auto& entry : table) {
    if (text == entry.name) return entry.style;
    accepted += accepted.empty() ? "" : ", ";
    accepted += entry.name;
  }
  SLIME_FAIL(option, ": unknown value '", text, "'; expected one of ", accepted);
}

// OptimizerParamScheduler's constructor asserts (and get_wd's constant-style assert), as errors naming the field.
void check_config(const LrSchedulerConfig& c, const std::string& where) {
  SLIME_CHECK(std::isfinite(c.init_lr) && std::isfinite(c.max_lr) && std::isfinite(c.min_lr), where,
              ": learning rates must be finite (init_lr ", c.init_lr, ", max_lr ", c.max_lr, ", min_lr ", c.min_lr,
              ")");
  SLIME_CHECK(c.min_lr >= 0.0, where, ": min_lr must be >= 0, got ", c.min_lr);
  SLIME_CHECK(c.max_lr >= c.min_lr, where, ": max_lr (", c.max_lr, ") must be >= min_lr (", c.min_lr, ")");
  SLIME_CHECK(c.init_lr <= c.max_lr, where, ": init_lr (", c.init_lr, ") must be <= max_lr (", c.max_lr, ")");
  SLIME_CHECK(c.lr_decay_steps > 0, where, ": lr_decay_steps must be > 0, got ", c.lr_decay_steps);
  SLIME_CHECK(std::isfinite(c.lr_warmup_steps) && c.lr_warmup_steps >= 0.0, where,
              ": lr_warmup_steps must be >= 0, got ", c.lr_warmup_steps);
  SLIME_CHECK(c.lr_warmup_steps < static_cast<double>(c.lr_decay_steps), where, ": lr_warmup_steps (",
              c.lr_warmup_steps, ") must be < lr_decay_steps (", c.lr_decay_steps, ")");
  if (c.lr_decay_style == LrDecayStyle::wsd)
    SLIME_CHECK(c.wsd_decay_steps > 0 && c.wsd_decay_steps <= c.lr_decay_steps, where,
                ": lr_decay_style WSD needs 0 < wsd_decay_steps <= lr_decay_steps (", c.lr_decay_steps, "), got ",
                c.wsd_decay_steps);
  SLIME_CHECK(std::isfinite(c.start_wd) && std::isfinite(c.end_wd), where, ": weight decays must be finite");
  SLIME_CHECK(c.start_wd >= 0.0, where, ": start_wd must be >= 0, got ", c.start_wd);
  SLIME_CHECK(c.end_wd >= c.start_wd, where, ": end_wd (", c.end_wd, ") must be >= start_wd (", c.start_wd, ")");
  SLIME_CHECK(c.wd_incr_steps >= 0, where, ": wd_incr_steps must be >= 0, got ", c.wd_incr_steps);
  if (c.wd_incr_style == WeightDecayIncrStyle::constant)
    SLIME_CHECK(c.start_wd == c.end_wd, where, ": wd_incr_style constant needs start_wd == end_wd, got ",
                c.start_wd, " and ", c.end_wd);
  else
    SLIME_CHECK(c.wd_incr_steps > 0, where, ": wd_incr_style ", to_string(c.wd_incr_style),
                " needs wd_incr_steps > 0");
}

// Megatron's _check_and_set: one field of the checkpoint against the options, by policy.
template <class T, class Print>
T reconcile(const T& from_options, const T& from_checkpoint, const char* field, SchedulerCheckpointPolicy policy,
            const std::string& where, Print print) {
  switch (policy) {
    case SchedulerCheckpointPolicy::use_options:
      return from_options;
    case SchedulerCheckpointPolicy::use_checkpoint:
      return from_checkpoint;
    case SchedulerCheckpointPolicy::require_match:
      SLIME_CHECK(from_options == from_checkpoint, where, ": ", field, " is ", print(from_options),
                  " from the options but ", print(from_checkpoint),
                  " in the checkpoint (--override-opt_param-scheduler keeps the options, "
                  "--use-checkpoint-opt_param-scheduler takes the checkpoint's)");
      return from_checkpoint;
  }
  SLIME_ASSERT(false, "unknown checkpoint policy");
  return from_checkpoint;
}

std::string print_double(double value) { return exact(value); }
std::string print_int(int64_t value) { return std::to_string(value); }

}  // namespace

const char* to_string(LrDecayStyle style) { return style_name(kLrDecayStyles, style); }
const char* to_string(WsdDecayStyle style) { return style_name(kWsdDecayStyles, style); }
const char* to_string(WeightDecayIncrStyle style) { return style_name(kWeightDecayIncrStyles, style); }

LrDecayStyle parse_lr_decay_style(const std::string& text, const std::string& option) {
  return parse_style(kLrDecayStyles, text, option);
}
WsdDecayStyle parse_wsd_decay_style(const std::string& text, const std::string& option) {
  return parse_style(kWsdDecayStyles, text, option);
}
WeightDecayIncrStyle parse_weight_decay_incr_style(const std::string& text, const std::string& option) {
  return parse_style(kWeightDecayIncrStyles, text, option);
}

// ---------------------------------------------------------------------------------------------------------------
// Sizing from the options

int64_t slime_train_iters(int64_t num_rollout, int64_t rollout_batch_size, int64_t n_samples_per_prompt,
                          int64_t global_batch_size) {
  SLIME_CHECK(num_rollout >= 0, "--num-rollout must be >= 0, got ", num_rollout);
  SLIME_CHECK(rollout_batch_size > 0, "--rollout-batch-size must be > 0, got ", rollout_batch_size);
  SLIME_CHECK(n_samples_per_prompt > 0, "--n-samples-per-prompt must be > 0, got ", n_samples_per_prompt);
  SLIME_CHECK(global_batch_size > 0, "--global-batch-size must be > 0, got ", global_batch_size);
  return num_rollout * rollout_batch_size * n_samples_per_prompt / global_batch_size;
}

LrSchedulerConfig lr_scheduler_config_from_options(const LrScheduleOptions& o) {
  SLIME_CHECK(o.global_batch_size > 0, "--global-batch-size must be > 0, got ", o.global_batch_size);
  SLIME_CHECK(o.train_iters > 0,
              "the LR schedule needs at least one training iteration (--train-iters, or --num-rollout x "
              "--rollout-batch-size x --n-samples-per-prompt / --global-batch-size), got ",
              o.train_iters);
  const int64_t lr_decay_iters = o.lr_decay_iters.value_or(o.train_iters);
  SLIME_CHECK(lr_decay_iters > 0, "--lr-decay-iters must be > 0, got ", lr_decay_iters);

  SLIME_CHECK(std::isfinite(o.lr) && std::isfinite(o.min_lr) && std::isfinite(o.lr_warmup_init),
              "--lr, --min-lr and --lr-warmup-init must be finite");
  SLIME_CHECK(o.min_lr >= 0.0, "--min-lr must be >= 0, got ", o.min_lr);
  SLIME_CHECK(o.min_lr <= o.lr, "--min-lr (", o.min_lr, ") must be <= --lr (", o.lr, ")");
  SLIME_CHECK(o.lr_warmup_init <= o.lr, "--lr-warmup-init (", o.lr_warmup_init, ") must be <= --lr (", o.lr,
              ")");

  LrSchedulerConfig c;
  c.init_lr = o.lr_warmup_init;
  c.max_lr = o.lr;
  c.min_lr = o.min_lr;
  c.lr_decay_style = parse_lr_decay_style(o.lr_decay_style, "--lr-decay-style");
  c.lr_wsd_decay_style = parse_wsd_decay_style(o.lr_wsd_decay_style, "--lr-wsd-decay-style");
  c.lr_decay_steps = lr_decay_iters * o.global_batch_size;
  c.wd_incr_steps = o.train_iters * o.global_batch_size;
  c.checkpoint_policy = o.checkpoint_policy;

  SLIME_CHECK(o.lr_warmup_iters >= 0, "--lr-warmup-iters must be >= 0, got ", o.lr_warmup_iters);
  if (o.lr_warmup_fraction) {
    SLIME_CHECK(o.lr_warmup_iters == 0, "--lr-warmup-fraction and --lr-warmup-iters are exclusive (got ",
                *o.lr_warmup_fraction, " and ", o.lr_warmup_iters, ")");
    SLIME_CHECK(*o.lr_warmup_fraction >= 0.0 && *o.lr_warmup_fraction < 1.0,
                "--lr-warmup-fraction must be in [0, 1) (warm-up must end before the decay does), got ",
                *o.lr_warmup_fraction);
    c.lr_warmup_steps = *o.lr_warmup_fraction * static_cast<double>(c.lr_decay_steps);
  } else {
    SLIME_CHECK(o.lr_warmup_iters < lr_decay_iters, "--lr-warmup-iters (", o.lr_warmup_iters,
                ") must be < --lr-decay-iters (", lr_decay_iters,
                o.lr_decay_iters ? ")" : ", the training iterations since --lr-decay-iters is not set)");
    c.lr_warmup_steps = static_cast<double>(o.lr_warmup_iters * o.global_batch_size);
  }

  if (o.lr_wsd_decay_iters) {
    SLIME_CHECK(*o.lr_wsd_decay_iters > 0 && *o.lr_wsd_decay_iters <= lr_decay_iters,
                "--lr-wsd-decay-iters must be in (0, --lr-decay-iters = ", lr_decay_iters, "], got ",
                *o.lr_wsd_decay_iters);
    c.wsd_decay_steps = *o.lr_wsd_decay_iters * o.global_batch_size;
  }
  if (c.lr_decay_style == LrDecayStyle::wsd)
    SLIME_CHECK(o.lr_wsd_decay_iters.has_value(), "--lr-decay-style WSD needs --lr-wsd-decay-iters");

  // Megatron's validate_args: a constant increment style takes --weight-decay for both ends, and forbids the
  // start/end options; the other styles need both.
  c.wd_incr_style = parse_weight_decay_incr_style(o.weight_decay_incr_style, "--weight-decay-incr-style");
  if (c.wd_incr_style == WeightDecayIncrStyle::constant) {
    SLIME_CHECK(!o.start_weight_decay && !o.end_weight_decay,
                "--start-weight-decay and --end-weight-decay need --weight-decay-incr-style linear or cosine "
                "(with constant, --weight-decay is used throughout)");
    SLIME_CHECK(std::isfinite(o.weight_decay) && o.weight_decay >= 0.0, "--weight-decay must be >= 0, got ",
                o.weight_decay);
    c.start_wd = o.weight_decay;
    c.end_wd = o.weight_decay;
  } else {
    SLIME_CHECK(o.start_weight_decay && o.end_weight_decay, "--weight-decay-incr-style ",
                o.weight_decay_incr_style, " needs --start-weight-decay and --end-weight-decay");
    SLIME_CHECK(*o.start_weight_decay >= 0.0, "--start-weight-decay must be >= 0, got ", *o.start_weight_decay);
    SLIME_CHECK(*o.end_weight_decay >= *o.start_weight_decay, "--end-weight-decay (", *o.end_weight_decay,
                ") must be >= --start-weight-decay (", *o.start_weight_decay, ")");
    c.start_wd = *o.start_weight_decay;
    c.end_wd = *o.end_weight_decay;
  }
  return c;
}

// ---------------------------------------------------------------------------------------------------------------
// The scheduler

LrScheduler::LrScheduler(const LrSchedulerConfig& config) : config_(config) {
  check_config(config_, "lr scheduler");
}

void LrScheduler::step(int64_t increment) {
  SLIME_CHECK(increment >= 0, "lr scheduler: step increment must be >= 0, got ", increment);
  num_steps_ += increment;
}

double LrScheduler::lr() const {
  const LrSchedulerConfig& c = config_;
  const double steps = static_cast<double>(num_steps_);
  const double max_lr = c.max_lr;
  const double min_lr = c.min_lr;

  // Linear warm-up from init_lr.
  if (c.lr_warmup_steps > 0.0 && steps <= c.lr_warmup_steps)
    return c.init_lr + (max_lr - c.init_lr) * steps / c.lr_warmup_steps;

  if (c.lr_decay_style == LrDecayStyle::constant) return max_lr;

  if (num_steps_ > c.lr_decay_steps) return min_lr;

  if (c.lr_decay_style == LrDecayStyle::inverse_square_root) {
    const double warmup_steps = c.lr_warmup_steps > 1.0 ? c.lr_warmup_steps : 1.0;
    const double num_steps = steps > 1.0 ? steps : 1.0;
    const double lr = max_lr * std::pow(warmup_steps, 0.5) / std::pow(num_steps, 0.5);
    return min_lr > lr ? min_lr : lr;
  }

  const double decay_ratio =
      (steps - c.lr_warmup_steps) / (static_cast<double>(c.lr_decay_steps) - c.lr_warmup_steps);
  SLIME_ASSERT(decay_ratio >= 0.0 && decay_ratio <= 1.0, "decay ratio ", decay_ratio, " at num_steps ", num_steps_);
  const double delta_lr = max_lr - min_lr;

  double coeff = 0.0;
  switch (c.lr_decay_style) {
    case LrDecayStyle::linear:
      coeff = 1.0 - decay_ratio;
      break;
    case LrDecayStyle::cosine:
      coeff = 0.5 * (std::cos(kPi * decay_ratio) + 1.0);
      break;
    case LrDecayStyle::wsd: {
      const int64_t anneal_start = c.lr_decay_steps - c.wsd_decay_steps;
      if (num_steps_ <= anneal_start) {
        coeff = 1.0;
      } else {
        const double wsd_ratio =
            static_cast<double>(num_steps_ - anneal_start) / static_cast<double>(c.wsd_decay_steps);
        switch (c.lr_wsd_decay_style) {
          case WsdDecayStyle::linear:
            coeff = 1.0 - wsd_ratio;
            break;
          case WsdDecayStyle::cosine:
            coeff = 0.5 * (std::cos(kPi * wsd_ratio) + 1.0);
            break;
          case WsdDecayStyle::exponential:
            coeff = (2.0 * std::pow(0.5, wsd_ratio)) - 1.0;
            break;
          case WsdDecayStyle::minus_sqrt:
            coeff = 1.0 - std::sqrt(wsd_ratio);
            break;
        }
      }
      break;
    }
    case LrDecayStyle::constant:
    case LrDecayStyle::inverse_square_root:
      SLIME_ASSERT(false, "handled above");
  }
  return min_lr + coeff * delta_lr;
}

double LrScheduler::weight_decay() const {
  const LrSchedulerConfig& c = config_;
  if (num_steps_ > c.wd_incr_steps) return c.end_wd;
  if (c.wd_incr_style == WeightDecayIncrStyle::constant) return c.end_wd;

  const double incr_ratio = static_cast<double>(num_steps_) / static_cast<double>(c.wd_incr_steps);
  SLIME_ASSERT(incr_ratio >= 0.0 && incr_ratio <= 1.0, "weight decay ratio ", incr_ratio);
  const double delta_wd = c.end_wd - c.start_wd;
  const double coeff = c.wd_incr_style == WeightDecayIncrStyle::linear
                           ? incr_ratio
                           : 0.5 * (std::cos(kPi * (1 - incr_ratio)) + 1.0);
  return c.start_wd + coeff * delta_wd;
}

double LrScheduler::weight_decay_for(const std::string& param_name, int ndim) const {
  return megatron_no_weight_decay(param_name, ndim) ? 0.0 : weight_decay();
}

json LrScheduler::state() const {
  const LrSchedulerConfig& c = config_;
  return json{
      {"max_lr", c.max_lr},
      {"lr_warmup_steps", c.lr_warmup_steps},
      {"num_steps", num_steps_},
      {"lr_decay_style", to_string(c.lr_decay_style)},
      {"lr_decay_steps", c.lr_decay_steps},
      {"min_lr", c.min_lr},
      {"start_wd", c.start_wd},
      {"end_wd", c.end_wd},
      {"wd_incr_style", to_string(c.wd_incr_style)},
      {"wd_incr_steps", c.wd_incr_steps},
  };
}

void LrScheduler::load(const json& state, const std::string& where) {
  SLIME_CHECK(state.is_object(), where, ": expected an object, got ", json_type_name(state));
  LrSchedulerConfig c = config_;
  const SchedulerCheckpointPolicy policy = c.checkpoint_policy;

  c.max_lr = reconcile(c.max_lr, json_number(state, "max_lr", where), "max_lr (--lr)", policy, where, print_double);
  c.min_lr = reconcile(c.min_lr, json_number(state, "min_lr", where), "min_lr (--min-lr)", policy, where,
                       print_double);
  c.lr_warmup_steps = reconcile(c.lr_warmup_steps, json_number(state, "lr_warmup_steps", where),
                                "lr_warmup_steps (samples)", policy, where, print_double);
  c.lr_decay_steps = reconcile(c.lr_decay_steps, json_int(state, "lr_decay_steps", where),
                               "lr_decay_steps (samples)", policy, where, print_int);
  const LrDecayStyle saved_style =
      parse_lr_decay_style(json_string(state, "lr_decay_style", where), where + ": field 'lr_decay_style'");
  c.lr_decay_style = reconcile(c.lr_decay_style, saved_style, "lr_decay_style (--lr-decay-style)", policy, where,
                               [](LrDecayStyle s) { return std::string(to_string(s)); });
  const int64_t saved_num_steps = json_int(state, "num_steps", where);
  SLIME_CHECK(saved_num_steps >= 0, where, ": field 'num_steps' must be >= 0, got ", saved_num_steps);

  // Megatron reads the weight-decay fields only when the checkpoint has them (older ones do not).
  if (json_has(state, "start_wd")) {
    c.start_wd = reconcile(c.start_wd, json_number(state, "start_wd", where), "start_wd", policy, where,
                           print_double);
    c.end_wd = reconcile(c.end_wd, json_number(state, "end_wd", where), "end_wd", policy, where, print_double);
    c.wd_incr_steps = reconcile(c.wd_incr_steps, json_int(state, "wd_incr_steps", where),
                                "wd_incr_steps (samples)", policy, where, print_int);
    const WeightDecayIncrStyle saved_wd_style = parse_weight_decay_incr_style(
        json_string(state, "wd_incr_style", where), where + ": field 'wd_incr_style'");
    c.wd_incr_style = reconcile(c.wd_incr_style, saved_wd_style, "wd_incr_style (--weight-decay-incr-style)",
                                policy, where, [](WeightDecayIncrStyle s) { return std::string(to_string(s)); });
  }

  check_config(c, where + " (after reconciling with the options)");
  config_ = c;
  num_steps_ = saved_num_steps;
}

}  // namespace slime::train
