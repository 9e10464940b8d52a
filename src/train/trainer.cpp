#include "train/trainer.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <regex>

#include "ckpt/checkpoint.h"
#include "comm/mpi_utils.h"
#include "core/error.h"
#include "core/log.h"
#include "core/rng.h"
#include "model/hf_mapping.h"
#include "model/init.h"
#include "obs/trace.h"

namespace slime::train {
namespace {

bool is_hf_dir(const std::string& path) { return path_exists(path_join(path, "config.json")); }

std::vector<ckpt::OptimizerShard> optimizer_shards(Optimizer& optimizer) {
  std::vector<ckpt::OptimizerShard> shards;
  for (const auto& r : optimizer.owned_ranges()) shards.push_back({r.param, r.begin, r.end, r.exp_avg, r.exp_avg_sq});
  return shards;
}

LossConfig loss_config_from(const Args& a) {
  LossConfig c;
  c.loss_type = parse_loss_type(a.loss_type);
  c.advantage_estimator = parse_advantage_estimator(a.advantage_estimator);
  c.eps_clip = a.eps_clip;
  c.eps_clip_high = a.eps_clip_high;
  c.eps_clip_c = a.eps_clip_c;
  c.entropy_coef = a.entropy_coef;
  c.use_kl_loss = a.use_kl_loss;
  c.kl_loss_coef = a.kl_loss_coef;
  c.kl_loss_type = parse_kl_type(a.kl_loss_type);
  c.use_unbiased_kl = a.use_unbiased_kl;
  c.use_tis = a.use_tis;
  c.get_mismatch_metrics = a.get_mismatch_metrics;
  c.tis_clip = a.tis_clip;
  c.tis_clip_low = a.tis_clip_low;
  c.use_opsm = a.use_opsm;
  c.opsm_delta = a.opsm_delta;
  c.use_rollout_logprobs = a.use_rollout_logprobs;
  c.calculate_per_token_loss = a.calculate_per_token_loss;
  validate_loss_config(c);
  return c;
}

FlopsModel flops_model_of(const model::ModelConfig& c) {
  FlopsModel f;
  f.num_layers = c.num_layers;
  f.hidden_size = c.hidden_size;
  f.num_attention_heads = c.num_heads;
  f.num_query_groups = c.num_kv_heads;
  f.kv_channels = c.head_dim;
  f.ffn_hidden_size = c.intermediate_size;
  f.vocab_size = c.padded_vocab_size;
  return f;
}

bool needs_reference(const Args& a) { return a.use_kl_loss || a.kl_coef != 0.0; }

std::vector<std::regex> compile_patterns(const std::vector<std::string>& patterns, const char* option) {
  std::vector<std::regex> out;
  for (const std::string& p : patterns) {
    try {
      out.emplace_back(p);
    } catch (const std::regex_error& e) {
      SLIME_FAIL(option, ": '", p, "' is not a valid regular expression: ", e.what());
    }
  }
  return out;
}

// Training options that would change results but that this trainer does not implement are refused, never
// ignored; memory-only options that do not apply to the CPU backend are reported.
void check_supported_options(const Args& a) {
  auto refuse = [](bool set, const char* option, const char* why) { SLIME_CHECK(!set, option, ": ", why); };
  const char* plugins = "plug-in hooks are not supported by this build";
  refuse(a.loss_type == "custom_loss" || a.custom_loss_function_path.has_value(), "--custom-loss-function-path",
         plugins);
  refuse(a.custom_advantage_function_path.has_value(), "--custom-advantage-function-path", plugins);
  refuse(a.custom_tis_function_path.has_value(), "--custom-tis-function-path", plugins);
  refuse(a.custom_pg_loss_reducer_function_path.has_value(), "--custom-pg-loss-reducer-function-path", plugins);
  refuse(a.sequence_parallel, "--sequence-parallel", "not supported by the CPU trainer");
  SLIME_CHECK(a.only_train_params_name_list.empty() || a.freeze_params_name_list.empty(),
              "--only-train-params-name-list and --freeze-params-name-list are exclusive");
  if (a.recompute_granularity)
    SLIME_WARN("--recompute-granularity ", *a.recompute_granularity,
               ": the CPU backend keeps all activations (no recomputation); the option matters on the GPU backend");
}

}  // namespace

bool periodic_action_due(std::optional<int64_t> interval, int64_t rollout_id, int64_t num_rollout,
                         std::optional<int64_t> rollouts_per_epoch, bool last_rollout_too) {
  if (!interval || *interval <= 0) return false;
  if ((rollout_id + 1) % *interval == 0) return true;
  if (rollouts_per_epoch && *rollouts_per_epoch > 0 && (rollout_id + 1) % *rollouts_per_epoch == 0) return true;
  return last_rollout_too && rollout_id + 1 == num_rollout;
}

model::ModelConfig resolve_model_config(const Args& args, int tensor_parallel_size) {
  model::ModelConfig config;
  std::optional<int64_t> stored_padding;
  auto from_checkpoint = [&](const std::string& root, std::optional<int64_t> step) -> bool {
    std::optional<int64_t> it = ckpt::find_checkpoint(root, step);
    if (!it) return false;
    ckpt::CheckpointState s = ckpt::read_checkpoint_state(root, *it);
    config = model::ModelConfig::from_hf_json(s.model_config, ckpt::iteration_dir(root, *it) + " model_config");
    if (s.megatron.contains("padded_vocab_size")) stored_padding = s.megatron["padded_vocab_size"].get<int64_t>();
    return true;
  };
  if (args.hf_checkpoint) {
    config = model::ModelConfig::from_hf_dir(*args.hf_checkpoint);
  } else if (!(args.load && from_checkpoint(*args.load, args.ckpt_step))) {
    SLIME_CHECK(args.ref_load, "no model: give --hf-checkpoint, or --load / --ref-load with a checkpoint");
    if (is_hf_dir(*args.ref_load)) config = model::ModelConfig::from_hf_dir(*args.ref_load);
    else
      SLIME_CHECK(from_checkpoint(*args.ref_load, args.ref_ckpt_step), *args.ref_load,
                  ": --ref-load is neither a checkpoint directory nor a HF model directory");
  }
  if (args.padded_vocab_size) {
    SLIME_CHECK(*args.padded_vocab_size >= config.vocab_size && *args.padded_vocab_size % tensor_parallel_size == 0,
                "--padded-vocab-size ", *args.padded_vocab_size, " must be >= the vocabulary (", config.vocab_size,
                ") and divisible by --tensor-model-parallel-size ", tensor_parallel_size);
    config.padded_vocab_size = *args.padded_vocab_size;
  } else {
    config.pad_vocab(args.make_vocab_size_divisible_by, tensor_parallel_size);
  }
  return config;
}

struct Trainer::Packed {
  model::PackedBatch batch;
  std::vector<int64_t> targets;        // [T] next token (0 at each sequence's last position, ignored)
  std::vector<int64_t> response_pos;   // [N] packed position whose log-prob scores each response token
  std::vector<int64_t> offsets;        // [S + 1] response tokens of each sample, back to back
};

Trainer::Trainer(const Args& args, const comm::ParallelGroups& groups) : args_(args), groups_(groups) {
  SLIME_CHECK(args_.tensor_model_parallel_size == groups_.tp.size, "--tensor-model-parallel-size ",
              args_.tensor_model_parallel_size, " but the trainer groups have TP size ", groups_.tp.size);
  SLIME_CHECK(args_.global_batch_size && args_.rollout_batch_size,
              "the trainer needs --global-batch-size and --rollout-batch-size (run validate_args first)");
  check_supported_options(args_);
  model_ = std::make_unique<model::Decoder>(resolve_model_config(args_, groups_.tp.size), groups_.tp);
  if (args_.log_probs_chunk_size > 0) model_->set_lm_head_chunk_rows(args_.log_probs_chunk_size);
  gpu_ = GpuActor::create(args_, *model_, groups_);
  AdamWConfig adam;
  adam.beta1 = args_.adam_beta1;
  adam.beta2 = args_.adam_beta2;
  adam.eps = args_.adam_eps;
  if (gpu_)
    optimizer_ = gpu_->make_optimizer(adam, args_.clip_grad);
  else
    optimizer_ = std::make_unique<DistributedOptimizer>(model_->params(), groups_, adam, args_.clip_grad);
  if (!args_.only_train_params_name_list.empty() || !args_.freeze_params_name_list.empty()) {
    const std::vector<std::regex> train = compile_patterns(args_.only_train_params_name_list, "--only-train-params-name-list");
    const std::vector<std::regex> freeze = compile_patterns(args_.freeze_params_name_list, "--freeze-params-name-list");
    auto matches = [](const std::vector<std::regex>& patterns, const std::string& name) {
      for (const std::regex& re : patterns)
        if (std::regex_search(name, re)) return true;
      return false;
    };
    optimizer_->set_frozen([&](const model::Param& p) {
      return train.empty() ? matches(freeze, p.name) : !matches(train, p.name);
    });
  }

  LrScheduleOptions lr;
  lr.lr = args_.lr;
  lr.min_lr = args_.min_lr;
  lr.lr_decay_style = args_.lr_decay_style;
  lr.lr_decay_iters = args_.lr_decay_iters;
  lr.lr_warmup_iters = args_.lr_warmup_iters;
  lr.lr_warmup_fraction = args_.lr_warmup_fraction;
  lr.lr_warmup_init = args_.lr_warmup_init;
  lr.global_batch_size = *args_.global_batch_size;
  lr.weight_decay = args_.weight_decay;
  lr.lr_wsd_decay_iters = args_.lr_wsd_decay_iters;
  lr.lr_wsd_decay_style = args_.lr_wsd_decay_style;
  lr.start_weight_decay = args_.start_weight_decay;
  lr.end_weight_decay = args_.end_weight_decay;
  lr.weight_decay_incr_style = args_.weight_decay_incr_style;
  lr.checkpoint_policy = args_.override_opt_param_scheduler        ? SchedulerCheckpointPolicy::use_options
                         : args_.use_checkpoint_opt_param_scheduler ? SchedulerCheckpointPolicy::use_checkpoint
                                                                    : SchedulerCheckpointPolicy::require_match;
  lr.train_iters = args_.train_iters.value_or(
      args_.num_rollout ? slime_train_iters(*args_.num_rollout, *args_.rollout_batch_size, args_.n_samples_per_prompt,
                                            *args_.global_batch_size)
                        : 1);
  lr.train_iters = std::max<int64_t>(lr.train_iters, 1);
  if (!lr.lr_decay_iters && lr.lr_warmup_iters >= lr.train_iters) lr.lr_decay_iters = lr.lr_warmup_iters + 1;
  scheduler_ = std::make_unique<LrScheduler>(lr);

  loss_config_ = loss_config_from(args_);
  advantage_config_.advantage_estimator = loss_config_.advantage_estimator;
  advantage_config_.kl_coef = args_.kl_coef;
  advantage_config_.kl_loss_type = loss_config_.kl_loss_type;
  advantage_config_.gamma = args_.gamma;
  advantage_config_.lambd = args_.lambd;
  advantage_config_.normalize_advantages = args_.normalize_advantages;
  reward_config_.advantage_estimator = loss_config_.advantage_estimator;
  reward_config_.rewards_normalization = args_.rewards_normalization;
  reward_config_.grpo_std_normalization = args_.grpo_std_normalization;
  reward_config_.n_samples_per_prompt = args_.n_samples_per_prompt;
  reward_config_.rollout_batch_size = *args_.rollout_batch_size;

  schedule_options_.global_batch_size = *args_.global_batch_size;
  schedule_options_.micro_batch_size = args_.micro_batch_size;
  schedule_options_.use_dynamic_batch_size = args_.use_dynamic_batch_size;
  schedule_options_.max_tokens_per_gpu = args_.max_tokens_per_gpu;
  schedule_options_.balance_data = args_.balance_data;
  schedule_options_.dp_size = groups_.dp.size;
  schedule_options_.flops = flops_model_of(model_->config());

  load_initial_weights();
  if (needs_reference(args_)) load_reference_weights();
  if (loss_config_.advantage_estimator == AdvantageEstimator::ppo) build_critic(lr);
  if (args_.start_rollout_id) start_rollout_id_ = *args_.start_rollout_id;
}

void Trainer::load_weights(const std::string& source, std::optional<int64_t> step, model::Decoder& model,
                           const std::vector<std::string>& skip) {
  load_model_weights(source, step, model, groups_, skip);
}

std::string weights_source(const Args& args, std::optional<int64_t>& step) {
  if (args.load && ckpt::find_checkpoint(*args.load, args.ckpt_step)) {
    step = args.ckpt_step;
    return *args.load;
  }
  if (args.ref_load) {
    step = args.ref_ckpt_step;
    return *args.ref_load;
  }
  SLIME_CHECK(args.hf_checkpoint, "no weights: give --hf-checkpoint (and --load for an HDF5 checkpoint)");
  return *args.hf_checkpoint;
}

void load_model_weights(const std::string& source, std::optional<int64_t> step, model::Decoder& model,
                        const comm::ParallelGroups& groups, const std::vector<std::string>& skip) {
  if (is_hf_dir(source)) {
    model::load_hf_weights(source, model.config(), model.params());
    return;
  }
  std::optional<int64_t> it = ckpt::find_checkpoint(source, step);
  SLIME_CHECK(it, source, ": neither a HF model directory (config.json) nor a checkpoint directory "
                          "(latest_checkpointed_iteration.txt)");
  ckpt::LoadOptions options;
  options.load_optimizer = false;
  options.expect_config = &model.config();
  options.skip_params = skip;
  ckpt::load_checkpoint(source, *it, model.params(), {}, groups, options);
}

// Resumes a model with its optimizer and LR schedule from a checkpoint root, as --load, --ckpt-step,
// --no-load-optim and --finetune say. nullopt when the root holds no checkpoint.
std::optional<ckpt::CheckpointState> Trainer::resume(const std::string& root, model::Decoder& model,
                                                     Optimizer& optimizer, LrScheduler& scheduler) {
  std::optional<int64_t> it = ckpt::find_checkpoint(root, args_.ckpt_step);
  if (!it) return std::nullopt;
  const bool weights_only = args_.finetune || args_.no_load_optim;
  std::vector<ckpt::OptimizerShard> shards;
  if (!weights_only) shards = optimizer_shards(optimizer);
  ckpt::LoadOptions options;
  options.load_optimizer = !weights_only;
  options.expect_config = &model.config();
  ckpt::CheckpointState state = ckpt::load_checkpoint(root, *it, model.params(), shards, groups_, options);
  optimizer.host_state_done(!weights_only);
  if (!args_.finetune && state.trainer.contains("lr_scheduler")) scheduler.load(state.trainer["lr_scheduler"], root);
  if (!weights_only) optimizer.set_step_count(state.optimizer_step);
  SLIME_INFO0("loaded checkpoint ", ckpt::iteration_dir(root, *it), args_.finetune ? " (--finetune)" : "",
              weights_only ? ", weights only" : "");
  return state;
}

void Trainer::actor_forward(const model::PackedBatch& batch, const std::vector<int64_t>& targets, float temperature,
                            Tensor* logprobs, Tensor* entropy) {
  if (gpu_)
    gpu_->forward(batch, targets, temperature, logprobs, entropy);
  else
    model_->forward(batch, targets, temperature, logprobs, entropy);
}

void Trainer::actor_backward(const Tensor& dlogprobs, const Tensor& dentropy) {
  if (gpu_)
    gpu_->backward(dlogprobs, dentropy);
  else
    model_->backward(dlogprobs, dentropy);
}

void Trainer::load_initial_weights() {
  if (args_.load) {
    if (std::optional<ckpt::CheckpointState> state = resume(*args_.load, *model_, *optimizer_, *scheduler_)) {
      actor_weights_changed();
      if (!args_.finetune) {
        start_rollout_id_ = state->rollout_id + 1;
        consumed_samples_ = state->consumed_samples;
        if (state->trainer.contains("extra")) loaded_extra_ = state->trainer["extra"];
      }
      return;
    }
  }
  // No checkpoint to resume: start from --ref-load, else --hf-checkpoint (slime: finetune, no optimizer state).
  const std::string source = args_.ref_load ? *args_.ref_load : args_.hf_checkpoint.value_or("");
  SLIME_CHECK(!source.empty(), "no initial weights: give --load, --ref-load or --hf-checkpoint");
  load_weights(source, args_.ref_load ? args_.ref_ckpt_step : std::nullopt, *model_);
  actor_weights_changed();
  SLIME_INFO0("initial weights from ", source);
}

void Trainer::load_reference_weights() {
  SLIME_CHECK(args_.ref_load, "a KL term (--use-kl-loss or --kl-coef) needs the reference model: give --ref-load");
  // Load into the live model, keep a copy, put the actor weights back (slime's TensorBackuper does the same).
  model::ParamRegistry& params = model_->params();
  Tensor actor = params.flat_values().clone();
  load_weights(*args_.ref_load, args_.ref_ckpt_step, *model_);
  reference_values_ = params.flat_values().clone();
  std::memcpy(params.flat_values().raw(), actor.raw(), actor.nbytes());
  actor_weights_changed();
}

void Trainer::build_critic(const LrScheduleOptions& lr) {
  critic_ = std::make_unique<model::Decoder>(model_->config(), groups_.tp, model::Head::Value);
  AdamWConfig adam;
  adam.beta1 = args_.adam_beta1;
  adam.beta2 = args_.adam_beta2;
  adam.eps = args_.adam_eps;
  critic_optimizer_ = std::make_unique<DistributedOptimizer>(critic_->params(), groups_, adam, args_.clip_grad);
  critic_scheduler_ = std::make_unique<LrScheduler>(lr);
  if (args_.load && resume(path_join(*args_.load, "critic"), *critic_, *critic_optimizer_, *critic_scheduler_))
    return;
  // Otherwise the body starts from the actor's initial weights and the value head is new (slime re-initialises it:
  // weight ~ N(0, 0.02), bias 0).
  const std::string source = args_.ref_load ? *args_.ref_load : *args_.hf_checkpoint;
  load_weights(source, args_.ref_load ? args_.ref_ckpt_step : std::nullopt, *critic_,
               {"output_layer.weight", "output_layer.bias"});
  model::ParamRegistry& params = critic_->params();
  model::Param& head = params.at("output_layer.weight");
  for (int64_t i = 0; i < head.value.numel(); ++i)
    head.value.data<float>()[i] =
        0.02f * philox_normal(static_cast<uint64_t>(args_.seed), model::param_stream(head.name), i);
  params.at("output_layer.bias").value.fill_zero();
  SLIME_INFO0("critic: body from ", source, ", new value head");
}

Trainer::Packed Trainer::pack(const std::vector<TrainSample>& samples, const std::vector<int64_t>& indices) const {
  Packed p;
  std::vector<std::vector<int64_t>> sequences;
  for (int64_t i : indices) sequences.push_back(samples[i].tokens);
  p.batch = model::PackedBatch::from_sequences(sequences);
  p.targets.assign(p.batch.tokens.size(), 0);
  p.offsets.push_back(0);
  for (size_t s = 0; s < indices.size(); ++s) {
    const int64_t start = p.batch.cu_seqlens[s], end = p.batch.cu_seqlens[s + 1];
    for (int64_t t = start; t + 1 < end; ++t) p.targets[t] = p.batch.tokens[t + 1];
    const int64_t length = end - start, response = samples[indices[s]].response_length;
    for (int64_t j = 0; j < response; ++j) p.response_pos.push_back(start + length - response - 1 + j);
    p.offsets.push_back(p.offsets.back() + response);
  }
  return p;
}

void Trainer::forward_only(const std::vector<TrainSample>& samples,
                           const std::vector<std::vector<int64_t>>& micro_batches, const std::vector<int64_t>& offsets,
                           std::vector<float>* logprobs, std::vector<float>* entropy) {
  const float temperature = static_cast<float>(args_.rollout_temperature);
  for (const auto& mb : micro_batches) {
    Packed p = pack(samples, mb);
    Tensor lp, ent;
    actor_forward(p.batch, p.targets, temperature, &lp, entropy ? &ent : nullptr);
    for (size_t s = 0; s < mb.size(); ++s) {
      for (int64_t j = 0; j < p.offsets[s + 1] - p.offsets[s]; ++j) {
        const int64_t pos = p.response_pos[p.offsets[s] + j];
        (*logprobs)[offsets[mb[s]] + j] = lp.data<float>()[pos];
        if (entropy) (*entropy)[offsets[mb[s]] + j] = ent.data<float>()[pos];
      }
    }
  }
}

struct Trainer::RolloutData {
  const std::vector<TrainSample>* samples = nullptr;
  std::vector<StepSchedule> schedule;
  std::vector<int64_t> offsets;       // [S + 1] response tokens of each sample in the rollout-wide vectors
  std::vector<float> mask;            // [N]
  std::vector<float> old_logprobs;    // [N]
  std::vector<float> ref_logprobs;    // [N] or empty
  std::vector<float> rollout_logprobs;  // [N] or empty
  std::vector<float> advantages;      // [N]
  std::vector<float> values;          // [N] the critic's values before training (PPO), or empty
  std::vector<float> returns;         // [N] the critic's targets (PPO), or empty
  std::vector<double> denominators;   // [S] per-rollout token-mean denominators
};

Trainer::RolloutData Trainer::prepare(const std::vector<TrainSample>& samples, Metrics* rollout_metrics) {
  const int64_t S = static_cast<int64_t>(samples.size());
  SLIME_CHECK(S > 0, "train_rollout: no samples");
  RolloutData d;
  d.samples = &samples;
  // Validate and lay the response tokens of the whole rollout back to back.
  d.offsets = {0};
  std::vector<int64_t> lengths, rollout_ids;
  for (int64_t i = 0; i < S; ++i) {
    const TrainSample& s = samples[i];
    const int64_t L = static_cast<int64_t>(s.tokens.size());
    SLIME_CHECK(s.response_length >= 0 && s.response_length < L, "sample ", i, ": response_length ",
                s.response_length, " must be below the token count ", L, " (the prompt needs a token)");
    SLIME_CHECK(s.loss_mask.empty() || static_cast<int64_t>(s.loss_mask.size()) == s.response_length, "sample ", i,
                ": loss_mask has ", s.loss_mask.size(), " entries for ", s.response_length, " response tokens");
    SLIME_CHECK(s.rollout_logprobs.empty() || static_cast<int64_t>(s.rollout_logprobs.size()) == s.response_length,
                "sample ", i, ": rollout_logprobs has ", s.rollout_logprobs.size(), " entries for ", s.response_length,
                " response tokens");
    d.offsets.push_back(d.offsets.back() + s.response_length);
    lengths.push_back(L);
    rollout_ids.push_back(s.rollout_id >= 0 ? s.rollout_id : -(i + 1));  // a unique id for plain samples
  }
  const int64_t N = d.offsets.back();
  d.mask.assign(N, 1.0f);
  const bool have_rollout_logprobs = !samples[0].rollout_logprobs.empty();
  if (have_rollout_logprobs) d.rollout_logprobs.resize(N);
  for (int64_t i = 0; i < S; ++i) {
    const TrainSample& s = samples[i];
    if (!s.loss_mask.empty()) std::copy(s.loss_mask.begin(), s.loss_mask.end(), d.mask.begin() + d.offsets[i]);
    SLIME_CHECK(s.rollout_logprobs.empty() != have_rollout_logprobs || s.response_length == 0, "sample ", i,
                ": rollout_logprobs must be given for every sample or for none");
    if (have_rollout_logprobs)
      std::copy(s.rollout_logprobs.begin(), s.rollout_logprobs.end(), d.rollout_logprobs.begin() + d.offsets[i]);
  }
  SLIME_CHECK(!args_.use_rollout_logprobs || have_rollout_logprobs,
              "--use-rollout-logprobs: the samples carry no rollout log-probs");
  SLIME_CHECK(!(args_.use_tis || args_.get_mismatch_metrics) || have_rollout_logprobs,
              "--use-tis needs the rollout engine's log-probs in every sample");

  d.schedule = build_dp_schedule(lengths, rollout_ids, schedule_options_);
  std::vector<std::vector<int64_t>> my_micro_batches;
  for (const StepSchedule& step : d.schedule)
    for (const MicroBatch& mb : step.per_rank[groups_.dp.rank]) my_micro_batches.push_back(mb.samples);

  // 1-2. Reference and old log-probs of this rank's samples, summed over DP so every rank has all of them.
  const comm::Group& dp = groups_.dp;
  if (needs_reference(args_)) {
    d.ref_logprobs.assign(N, 0.0f);
    // The reference weights in place of the actor's for these forwards (on the GPU the actor's wait there).
    Tensor actor;
    if (gpu_) {
      gpu_->use_weights(reference_values_);
    } else {
      actor = model_->params().flat_values().clone();
      std::memcpy(model_->params().flat_values().raw(), reference_values_.raw(), actor.nbytes());
    }
    {
      obs::TraceSpan span(obs::process_trace(), "train", "ref_log_probs");
      forward_only(samples, my_micro_batches, d.offsets, &d.ref_logprobs, nullptr);
    }
    if (gpu_)
      gpu_->restore_weights();
    else
      std::memcpy(model_->params().flat_values().raw(), actor.raw(), actor.nbytes());
    dp.allreduce_sum(d.ref_logprobs.data(), N);
  }
  if (args_.use_rollout_logprobs) {
    d.old_logprobs = d.rollout_logprobs;
  } else {
    d.old_logprobs.assign(N, 0.0f);
    obs::TraceSpan span(obs::process_trace(), "train", "old_log_probs");
    forward_only(samples, my_micro_batches, d.offsets, &d.old_logprobs, nullptr);
    dp.allreduce_sum(d.old_logprobs.data(), N);
  }

  if (critic_) {
    d.values.assign(N, 0.0f);
    for (const auto& mb : my_micro_batches) {
      Packed p = pack(samples, mb);
      Tensor values;
      critic_->forward_values(p.batch, &values);
      for (size_t s = 0; s < mb.size(); ++s)
        for (int64_t j = 0; j < p.offsets[s + 1] - p.offsets[s]; ++j)
          d.values[d.offsets[mb[s]] + j] = values.data<float>()[p.response_pos[p.offsets[s] + j]];
    }
    dp.allreduce_sum(d.values.data(), N);
  }

  // 3. Rewards and advantages on the whole rollout.
  std::vector<float> raw_rewards(S);
  for (int64_t i = 0; i < S; ++i) raw_rewards[i] = samples[i].reward;
  if (loss_config_.loss_type == LossType::sft_loss || !args_.compute_advantages_and_returns) {
    d.advantages.assign(N, 0.0f);
  } else {
    RolloutTokens tokens;
    tokens.offsets = d.offsets;
    tokens.loss_mask = d.mask;
    tokens.rewards = post_process_rewards(raw_rewards, reward_config_).normalized;
    tokens.old_logprobs = d.old_logprobs;
    tokens.ref_logprobs = d.ref_logprobs;
    tokens.values = d.values;
    AdvantagesAndReturns adv = compute_advantages_and_returns(tokens, advantage_config_, MPI_COMM_NULL);
    d.advantages = std::move(adv.advantages);
    d.returns = std::move(adv.returns);
  }
  d.denominators = rollout_mask_sums(d.offsets, d.mask, rollout_ids);

  if (rollout_metrics) {
    double masked = 0, sum_lp = 0, sum_ref = 0, sum_adv = 0, sum_raw = 0, sum_len = 0;
    for (int64_t t = 0; t < N; ++t) {
      masked += d.mask[t];
      sum_lp += d.mask[t] * d.old_logprobs[t];
      sum_adv += d.mask[t] * d.advantages[t];
      if (!d.ref_logprobs.empty()) sum_ref += d.mask[t] * d.ref_logprobs[t];
    }
    for (int64_t i = 0; i < S; ++i) {
      sum_raw += raw_rewards[i];
      sum_len += samples[i].response_length;
    }
    const double denom = std::max(masked, 1.0);
    Metrics& m = *rollout_metrics;
    m["rollout/raw_reward"] = sum_raw / S;
    m["rollout/response_lengths"] = sum_len / S;
    m["rollout/log_probs"] = sum_lp / denom;
    m["rollout/advantages"] = sum_adv / denom;
    if (!d.ref_logprobs.empty()) m["rollout/ref_log_probs"] = sum_ref / denom;
  }
  return d;
}

Metrics Trainer::accumulate_step_gradients(const RolloutData& d, const StepSchedule& step) {
  const std::vector<TrainSample>& samples = *d.samples;
  const comm::Group& dp = groups_.dp;
  // The loss of a step is (1 / rollouts in the step) sum over rollouts of their token mean (slime's default), or
  // the mean over the step's loss tokens (--calculate-per-token-loss).
  double scale = 1.0 / static_cast<double>(step.num_rollouts);
  if (loss_config_.calculate_per_token_loss) {
    double tokens_in_step = 0;
    for (const auto& rank_mbs : step.per_rank)
      for (const MicroBatch& mb : rank_mbs)
        for (int64_t i : mb.samples) {
          const std::vector<float> m(d.mask.begin() + d.offsets[i], d.mask.begin() + d.offsets[i + 1]);
          tokens_in_step += count_loss_tokens({0, samples[i].response_length}, m);
        }
    scale = 1.0 / std::max(tokens_in_step, 1.0);
  }
  const float temperature = static_cast<float>(args_.rollout_temperature);
  Metrics metrics;
  for (const MicroBatch& mb : step.per_rank[dp.rank]) {
    Packed p = pack(samples, mb.samples);
    ResponseBatch rb;
    rb.offsets = p.offsets;
    for (int64_t i : mb.samples) {
      auto slice = [&](const std::vector<float>& v, std::vector<float>& out) {
        if (!v.empty()) out.insert(out.end(), v.begin() + d.offsets[i], v.begin() + d.offsets[i + 1]);
      };
      slice(d.mask, rb.loss_mask);
      slice(d.advantages, rb.advantages);
      slice(d.old_logprobs, rb.old_logprobs);
      slice(d.ref_logprobs, rb.ref_logprobs);
      slice(d.rollout_logprobs, rb.rollout_logprobs);
      rb.denominators.push_back(d.denominators[i]);
    }
    Tensor lp, ent;
    obs::TraceSpan forward_span(obs::process_trace(), "train", "forward");
    forward_span.arg("tokens", p.batch.num_tokens());
    actor_forward(p.batch, p.targets, temperature, &lp, &ent);
    forward_span.end();
    std::vector<float> resp_lp(p.response_pos.size()), resp_ent(p.response_pos.size());
    for (size_t k = 0; k < p.response_pos.size(); ++k) {
      resp_lp[k] = lp.data<float>()[p.response_pos[k]];
      resp_ent[k] = ent.data<float>()[p.response_pos[k]];
    }
    const LossResult loss = compute_loss(rb, resp_lp, resp_ent, loss_config_, scale);
    // Scatter d loss / d (response log-prob, entropy) back to the packed positions.
    const int64_t T = p.batch.num_tokens();
    std::vector<float> dlp(T, 0.0f), dent(T, 0.0f);
    for (size_t k = 0; k < p.response_pos.size(); ++k) {
      dlp[p.response_pos[k]] = loss.dlogprobs[k];
      if (!loss.dentropy.empty()) dent[p.response_pos[k]] = loss.dentropy[k];
    }
    {
      obs::TraceSpan span(obs::process_trace(), "train", "backward");
      actor_backward(Tensor::from_vector(dlp, {T}), Tensor::from_vector(dent, {T}));
    }
    for (const auto& [name, value] : loss.metrics) metrics["train/" + name] += value;  // includes "loss"
  }
  // Metrics are already scaled to the global step: sum them over the DP ranks. Every rank must hold the same keys
  // (a rank without micro-batches would not), so the key set is fixed by a dummy loss evaluation when empty.
  if (metrics.empty()) {
    ResponseBatch empty;
    empty.offsets = {0};
    for (const auto& [name, value] : compute_loss(empty, {}, {}, loss_config_, scale).metrics) metrics["train/" + name] = 0;
  }
  std::vector<double> values;
  for (const auto& [name, value] : metrics) values.push_back(value);
  dp.allreduce_sum(values.data(), static_cast<int64_t>(values.size()));
  size_t k = 0;
  for (auto& [name, value] : metrics) value = values[k++];
  return metrics;
}

Metrics Trainer::accumulate_critic_gradients(const RolloutData& d, const StepSchedule& step) {
  const std::vector<TrainSample>& samples = *d.samples;
  double scale = 1.0 / static_cast<double>(step.num_rollouts);
  if (loss_config_.calculate_per_token_loss) {
    double tokens_in_step = 0;
    for (const auto& rank_mbs : step.per_rank)
      for (const MicroBatch& mb : rank_mbs)
        for (int64_t i : mb.samples) {
          const std::vector<float> m(d.mask.begin() + d.offsets[i], d.mask.begin() + d.offsets[i + 1]);
          tokens_in_step += count_loss_tokens({0, samples[i].response_length}, m);
        }
    scale = 1.0 / std::max(tokens_in_step, 1.0);
  }
  Metrics metrics = {{"train/critic-value_loss", 0.0}, {"train/critic-value_clipfrac", 0.0}};
  for (const MicroBatch& mb : step.per_rank[groups_.dp.rank]) {
    Packed p = pack(samples, mb.samples);
    ResponseBatch rb;
    rb.offsets = p.offsets;
    std::vector<float> old_values, returns;
    for (int64_t i : mb.samples) {
      auto slice = [&](const std::vector<float>& v, std::vector<float>& out) {
        out.insert(out.end(), v.begin() + d.offsets[i], v.begin() + d.offsets[i + 1]);
      };
      slice(d.mask, rb.loss_mask);
      slice(d.values, old_values);
      slice(d.returns, returns);
      rb.denominators.push_back(d.denominators[i]);
    }
    Tensor values;
    critic_->forward_values(p.batch, &values);
    std::vector<float> resp_values(p.response_pos.size());
    for (size_t k = 0; k < p.response_pos.size(); ++k) resp_values[k] = values.data<float>()[p.response_pos[k]];
    const ValueLossResult loss = value_loss(rb, resp_values, old_values, returns, args_.value_clip, scale,
                                            loss_config_.calculate_per_token_loss);
    const int64_t T = p.batch.num_tokens();
    std::vector<float> dvalues(T, 0.0f);
    for (size_t k = 0; k < p.response_pos.size(); ++k) dvalues[p.response_pos[k]] = loss.dvalues[k];
    critic_->backward_values(Tensor::from_vector(dvalues, {T}));
    for (const auto& [name, value] : loss.metrics) metrics["train/critic-" + name] += value;
  }
  std::vector<double> values;
  for (const auto& [name, value] : metrics) values.push_back(value);
  groups_.dp.allreduce_sum(values.data(), static_cast<int64_t>(values.size()));
  size_t k = 0;
  for (auto& [name, value] : metrics) value = values[k++];
  return metrics;
}

RolloutTrainResult Trainer::train_rollout(int64_t rollout_id, const std::vector<TrainSample>& samples) {
  RolloutTrainResult result;
  const RolloutData data = prepare(samples, &result.rollout);
  // slime: the actor trains unless there is a critic still in its --num-critic-only-steps warm-up.
  const bool actor_trains = !critic_ || rollout_id >= args_.num_critic_only_steps;
  for (const StepSchedule& step : data.schedule) {
    Metrics metrics;
    if (critic_) {
      metrics = accumulate_critic_gradients(data, step);
      const double lr = critic_scheduler_->lr();
      const OptimizerStepResult opt = critic_optimizer_->step(lr, critic_scheduler_->weight_decay());
      if (!opt.skipped) critic_scheduler_->step(step.num_rollouts);
      metrics["train/critic-grad_norm"] = opt.grad_norm;
      metrics["train/critic-lr"] = lr;
    }
    if (actor_trains) {
      for (const auto& [name, value] : accumulate_step_gradients(data, step)) metrics[name] = value;
      const double lr = scheduler_->lr(), wd = scheduler_->weight_decay();
      obs::TraceSpan span(obs::process_trace(), "train", "optimizer");
      const OptimizerStepResult opt = optimizer_->step(lr, wd);
      if (gpu_) gpu_->device_weights_changed();
      span.end();
      if (!opt.skipped) scheduler_->step(step.num_rollouts);
      metrics["train/grad_norm"] = opt.grad_norm;
      metrics["train/lr"] = lr;
      metrics["train/skipped"] = opt.skipped ? 1.0 : 0.0;
    }
    consumed_samples_ += step.num_rollouts;
    metrics["train/global_batch_size"] = static_cast<double>(step.num_rollouts);
    result.steps.push_back(metrics);
  }
  // --ref-update-interval: every N rollouts the reference model becomes the current actor.
  if (reference_values_.defined() && args_.ref_update_interval && *args_.ref_update_interval > 0 &&
      (rollout_id + 1) % *args_.ref_update_interval == 0) {
    host_weights_current();
    reference_values_ = model_->params().flat_values().clone();
  }
  if (args_.reset_optimizer_states) {
    optimizer_->reset_state();
    if (critic_optimizer_) critic_optimizer_->reset_state();
  }
  SLIME_DEBUG("trained rollout ", rollout_id, ": ", result.steps.size(), " optimizer steps");
  return result;
}

std::vector<float> Trainer::response_logprobs(const std::vector<TrainSample>& samples) {
  std::vector<int64_t> offsets = {0};
  for (const TrainSample& s : samples) offsets.push_back(offsets.back() + s.response_length);
  // Every sample once, split over the DP ranks, then summed so every rank has all of them.
  std::vector<std::vector<int64_t>> mine;
  for (int64_t i = groups_.dp.rank; i < static_cast<int64_t>(samples.size()); i += groups_.dp.size) mine.push_back({i});
  std::vector<float> logprobs(offsets.back(), 0.0f);
  forward_only(samples, mine, offsets, &logprobs, nullptr);
  groups_.dp.allreduce_sum(logprobs.data(), offsets.back());
  return logprobs;
}

Metrics Trainer::compute_gradients(const std::vector<TrainSample>& samples) {
  const RolloutData data = prepare(samples, nullptr);
  SLIME_CHECK(!data.schedule.empty(), "compute_gradients: the rollout fills no optimizer step");
  model_->params().zero_grad();
  Metrics metrics = accumulate_step_gradients(data, data.schedule.front());
  if (gpu_) gpu_->pull_gradients();
  return metrics;
}

model::Decoder& Trainer::model() {
  host_weights_current();
  actor_weights_changed();  // the caller may write them
  return *model_;
}

std::optional<model::DeviceWeights> Trainer::device_weights() {
  if (!gpu_) return std::nullopt;
  return gpu_->device_weights();
}

const model::Decoder& Trainer::weights() {
  host_weights_current();
  return *model_;
}

void Trainer::save_checkpoint(int64_t rollout_id, const json& extra) {
  SLIME_CHECK(args_.save, "save_checkpoint needs --save");
  ckpt::CheckpointState state;
  state.iteration = rollout_id;
  state.rollout_id = rollout_id;
  state.consumed_samples = consumed_samples_;
  state.optimizer_step = optimizer_->step_count();
  state.model_config = model_->config().to_hf_json();
  state.megatron = {{"padded_vocab_size", model_->config().padded_vocab_size},
                    {"make_vocab_size_divisible_by", args_.make_vocab_size_divisible_by},
                    {"tensor_model_parallel_size", groups_.tp.size},
                    {"data_parallel_size", groups_.dp.size}};
  state.args = args_to_json(args_);
  state.trainer = {{"lr_scheduler", scheduler_->state()}, {"extra", extra}};
  state.rng = {{"seed", args_.seed}, {"pool_rank", groups_.pool.rank}};
  ckpt::SaveOptions options;
  options.save_optimizer = !args_.no_save_optim;
  options.keep_last_n = args_.keep_last_n;
  host_weights_current();
  std::vector<ckpt::OptimizerShard> shards;
  if (options.save_optimizer) shards = optimizer_shards(*optimizer_);
  ckpt::save_checkpoint(*args_.save, state, model_->params(), shards, groups_, options);
  optimizer_->host_state_done(false);
  if (critic_) {
    state.optimizer_step = critic_optimizer_->step_count();
    state.model_config = critic_->config().to_hf_json();
    state.trainer = {{"lr_scheduler", critic_scheduler_->state()}, {"role", "critic"}};
    ckpt::save_checkpoint(path_join(*args_.save, "critic"), state, critic_->params(),
                          options.save_optimizer ? optimizer_shards(*critic_optimizer_)
                                                 : std::vector<ckpt::OptimizerShard>{},
                          groups_, options);
  }
}

}  // namespace slime::train
