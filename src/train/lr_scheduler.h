// Learning-rate and weight-decay schedule: Megatron-LM's OptimizerParamScheduler
// (megatron/core/optimizer_param_scheduler.py) with the step counts slime gives it.
//
// The schedule counts samples, not optimizer steps: slime calls step(increment = global batch size) after every
// successful optimizer step, and sizes the schedule as Megatron's training.py does for an iteration-based run:
//   train_iters     = num_rollout * rollout_batch_size * n_samples_per_prompt / global_batch_size   (floor)
//   lr_decay_steps  = (lr_decay_iters or train_iters) * global_batch_size
//   lr_warmup_steps = lr_warmup_fraction * lr_decay_steps   or   lr_warmup_iters * global_batch_size
//   wd_incr_steps   = train_iters * global_batch_size
//   wsd_decay_steps = lr_wsd_decay_iters * global_batch_size
// lr() at num_steps = s:
//   warmup (warmup > 0 and s <= warmup):  init + (max - init) * s / warmup
//   constant:                             max
//   s > decay steps:                      min
//   inverse-square-root:                  max(min, max * sqrt(max(warmup, 1)) / sqrt(max(s, 1)))
//   otherwise, r = (s - warmup) / (decay - warmup), lr = min + coeff * (max - min) with coeff
//     linear 1 - r;  cosine 0.5 * (cos(pi r) + 1);
//     WSD: 1 until decay - wsd_decay steps, then over the last wsd_decay steps with q in (0, 1]:
//          linear 1 - q, cosine 0.5 (cos(pi q) + 1), exponential 2 * 0.5^q - 1, minus_sqrt 1 - sqrt(q)
// weight_decay() at s: end_wd once s > wd_incr_steps; else start + coeff * (end - start), coeff constant (start must
// equal end), linear s / wd_incr_steps, cosine 0.5 (cos(pi (1 - s / wd_incr_steps)) + 1).
// Parameters Megatron leaves out of weight decay (megatron_no_weight_decay) multiply it by 0.
// The double arithmetic follows the Python expressions term by term, so the values are Megatron's bit for bit.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "core/io.h"

namespace slime::train {

enum class LrDecayStyle { constant, linear, cosine, inverse_square_root, wsd };
enum class WsdDecayStyle { linear, cosine, exponential, minus_sqrt };
enum class WeightDecayIncrStyle { constant, linear, cosine };

// Megatron's spellings: "constant", "linear", "cosine", "inverse-square-root", "WSD"; "exponential",
// "minus_sqrt". Parsing errors name `option` and list the accepted values.
const char* to_string(LrDecayStyle style);
const char* to_string(WsdDecayStyle style);
const char* to_string(WeightDecayIncrStyle style);
LrDecayStyle parse_lr_decay_style(const std::string& text, const std::string& option);
WsdDecayStyle parse_wsd_decay_style(const std::string& text, const std::string& option);
WeightDecayIncrStyle parse_weight_decay_incr_style(const std::string& text, const std::string& option);

// What load() does when the options and the checkpoint disagree (Megatron's --override-opt_param-scheduler and
// --use-checkpoint-opt_param-scheduler; neither given = require_match).
enum class SchedulerCheckpointPolicy {
  require_match,   // any difference is an error naming the field
  use_checkpoint,  // the checkpoint's values replace the options'
  use_options,     // the options' values win; only num_steps comes from the checkpoint
};

// The schedule in samples, as OptimizerParamScheduler's constructor takes it.
struct LrSchedulerConfig {
  double init_lr = 0.0;           // --lr-warmup-init: lr at num_steps = 0 when there is a warmup
  double max_lr = 0.0;            // --lr
  double min_lr = 0.0;            // --min-lr
  double lr_warmup_steps = 0.0;   // samples; fractional when it comes from --lr-warmup-fraction (as in Megatron)
  int64_t lr_decay_steps = 0;     // samples; > lr_warmup_steps
  LrDecayStyle lr_decay_style = LrDecayStyle::linear;
  int64_t wsd_decay_steps = 0;    // samples of the final WSD anneal; required (> 0) by lr_decay_style wsd
  WsdDecayStyle lr_wsd_decay_style = WsdDecayStyle::exponential;
  double start_wd = 0.0;
  double end_wd = 0.0;
  int64_t wd_incr_steps = 0;      // samples; > 0 unless the increment style is constant
  WeightDecayIncrStyle wd_incr_style = WeightDecayIncrStyle::constant;
  SchedulerCheckpointPolicy checkpoint_policy = SchedulerCheckpointPolicy::require_match;
};

// The command-line options that size the schedule (Megatron's names; `train_iters` already resolved, see
// slime_train_iters). Iterations are optimizer steps of global_batch_size samples each.
struct LrScheduleOptions {
  double lr = 1e-6;
  double min_lr = 0.0;
  std::string lr_decay_style = "linear";
  std::optional<int64_t> lr_decay_iters;          // default: train_iters
  int64_t lr_warmup_iters = 0;
  std::optional<double> lr_warmup_fraction;       // exclusive with lr_warmup_iters
  double lr_warmup_init = 0.0;
  std::optional<int64_t> lr_wsd_decay_iters;      // required by lr_decay_style WSD
  std::string lr_wsd_decay_style = "exponential";
  int64_t train_iters = 0;
  int64_t global_batch_size = 0;
  double weight_decay = 0.01;
  std::optional<double> start_weight_decay;       // only with a non-constant increment style
  std::optional<double> end_weight_decay;
  std::string weight_decay_incr_style = "constant";
  SchedulerCheckpointPolicy checkpoint_policy = SchedulerCheckpointPolicy::require_match;
};

// slime's estimate of the number of optimizer steps of the run (slime/backends/megatron_utils/model.py):
// num_rollout * rollout_batch_size * n_samples_per_prompt / global_batch_size, rounded down.
int64_t slime_train_iters(int64_t num_rollout, int64_t rollout_batch_size, int64_t n_samples_per_prompt,
                          int64_t global_batch_size);

// Megatron's get_optimizer_param_scheduler + the weight-decay part of validate_args: converts iterations to
// samples and checks the options; errors name the options (--lr-warmup-iters, --min-lr, ...).
LrSchedulerConfig lr_scheduler_config_from_options(const LrScheduleOptions& options);

class LrScheduler {
 public:
  // Checks the config as OptimizerParamScheduler's constructor asserts (errors name the field) and starts at
  // num_steps = 0.
  explicit LrScheduler(const LrSchedulerConfig& config);
  explicit LrScheduler(const LrScheduleOptions& options) : LrScheduler(lr_scheduler_config_from_options(options)) {}

  // Advances by `increment` samples (slime: the global batch size of the optimizer step just taken; a skipped
  // step does not call it). 0 is allowed.
  void step(int64_t increment);

  // The learning rate and (before a parameter's no-weight-decay multiplier) weight decay for the next optimizer
  // step, from the current num_steps.
  double lr() const;
  double weight_decay() const;
  // weight_decay() or 0 for parameters Megatron does not decay (megatron_no_weight_decay(name, ndim)).
  double weight_decay_for(const std::string& param_name, int ndim) const;

  int64_t num_steps() const { return num_steps_; }
  const LrSchedulerConfig& config() const { return config_; }

  // Megatron's state_dict keys: max_lr, min_lr, lr_warmup_steps, lr_decay_steps, lr_decay_style, num_steps,
  // start_wd, end_wd, wd_incr_steps, wd_incr_style. init_lr and the WSD fields are not saved (Megatron does not
  // save them either); they always come from the options.
  json state() const;
  // Restores num_steps (replacing the current count) and reconciles the other fields with the options by
  // config().checkpoint_policy. `where` names the document in errors. The legacy key names of old Megatron
  // checkpoints (start_lr, warmup_iter, end_iter, decay_style, num_iters) are not read.
  void load(const json& state, const std::string& where = "lr scheduler state");

 private:
  LrSchedulerConfig config_;
  int64_t num_steps_ = 0;
};

}  // namespace slime::train
