// validate_args: slime's slime_validate_args (cross-argument rules and derived defaults) plus the Megatron
// rules slime relies on (bf16 = not fp16, distributed optimizer on, recompute settings) and slime-hpc's own
// limits (no pipeline/context parallelism yet). Every error names the option(s) involved.
// Decisions where slime is silent or where slime-hpc differs are marked "slime-hpc:".
#include <cstdlib>

#include "core/args.h"
#include "core/error.h"
#include "core/io.h"
#include "core/log.h"

namespace slime {
namespace {

void check_positive(int64_t value, const char* flag) { SLIME_CHECK(value >= 1, flag, " must be >= 1, got ", value); }

void check_positive(const std::optional<int64_t>& value, const char* flag) {
  if (value) check_positive(*value, flag);
}

// --eval-prompt-data is `name path [name path ...]`; a single path is slime's legacy form for "aime".
void resolve_eval_datasets(Args& args) {
  auto& data = args.eval_prompt_data;
  if (data.size() == 1) data.insert(data.begin(), "aime");
  SLIME_CHECK(data.size() % 2 == 0, "--eval-prompt-data: expected name/path pairs, got ", data.size(), " values");
}

// slime: a --load that holds no checkpoint (no latest_checkpointed_iteration.txt) means "start fresh": load
// weights only, from --load when it is an HF directory, else from --ref-load, at rollout step 0.
void resolve_checkpoint_to_load(Args& args) {
  bool load_is_checkpoint = args.load && path_exists(path_join(*args.load, "latest_checkpointed_iteration.txt"));
  if (load_is_checkpoint) return;
  bool load_is_hf = args.load && is_directory(*args.load) && path_exists(path_join(*args.load, "config.json"));
  args.no_load_optim = true;
  args.no_load_rng = true;
  args.finetune = true;
  if (!load_is_hf) args.load = args.ref_load;
  if (args.ref_ckpt_step) args.ckpt_step = args.ref_ckpt_step;
  if (!args.start_rollout_id) args.start_rollout_id = 0;
}

void validate_cluster(Args& args) {
  // slime: replaying saved rollouts needs no engines (it forces debug_train_only before the pools are sized).
  if (args.load_debug_rollout_data) args.debug_train_only = true;
  if (!args.debug_rollout_only) {
    check_positive(args.actor_num_nodes, "--actor-num-nodes");
    check_positive(args.actor_num_gpus_per_node, "--actor-num-gpus-per-node");
  }
  check_positive(args.rollout_num_gpus_per_engine, "--rollout-num-gpus-per-engine");
  check_positive(args.num_gpus_per_node, "--num-gpus-per-node");
  check_positive(args.distributed_timeout_minutes, "--distributed-timeout-minutes");
  SLIME_CHECK(!(args.debug_rollout_only && args.debug_train_only),
              "--debug-rollout-only and --debug-train-only cannot both be set");
  int64_t actor_gpus = args.actor_num_nodes * args.actor_num_gpus_per_node;

  if (args.offload) args.offload_train = args.offload_rollout = true;
  if (args.debug_rollout_only) {
    // slime gives every GPU to rollout; the job keeps its size, so rollout defaults to the actor's GPU count.
    if (!args.rollout_num_gpus) args.rollout_num_gpus = actor_gpus;
    args.colocate = false;
    args.offload_train = args.offload_rollout = false;
  }
  if (args.colocate) {
    if (!args.offload_train) args.offload_train = true;
    if (!args.offload_rollout) args.offload_rollout = true;
    if (!args.rollout_num_gpus) args.rollout_num_gpus = actor_gpus;
  }
  if (!args.offload_train) args.offload_train = false;
  if (!args.offload_rollout) args.offload_rollout = false;
  if (use_critic(args)) args.offload_train = true;  // slime: actor and critic time-share the GPUs

  SLIME_CHECK(!(args.train_async && args.colocate),
              "--train-async cannot be used with --colocate (slime's train_async.py asserts the same): the "
              "asynchronous loop overlaps rollout and training, which need separate ranks");
  // slime-hpc: slime would crash placing engines without a count; say so instead.
  SLIME_CHECK(args.rollout_num_gpus || args.debug_train_only,
              "--rollout-num-gpus is required unless --colocate or --debug-train-only is set (0 = no local "
              "engines)");
  if (args.rollout_num_gpus) {
    SLIME_CHECK(*args.rollout_num_gpus >= 0, "--rollout-num-gpus must be >= 0, got ", *args.rollout_num_gpus);
    SLIME_CHECK(*args.rollout_num_gpus % args.rollout_num_gpus_per_engine == 0, "--rollout-num-gpus (",
                *args.rollout_num_gpus, ") must be a multiple of --rollout-num-gpus-per-engine (",
                args.rollout_num_gpus_per_engine, ")");
  }
}

void validate_rollout_and_data(Args& args) {
  SLIME_CHECK(args.rollout_batch_size, "--rollout-batch-size is required (prompts per rollout step)");
  check_positive(*args.rollout_batch_size, "--rollout-batch-size");
  check_positive(args.n_samples_per_prompt, "--n-samples-per-prompt");
  check_positive(args.micro_batch_size, "--micro-batch-size");
  check_positive(args.update_weights_interval, "--update-weights-interval");
  check_positive(args.n_samples_per_eval_prompt, "--n-samples-per-eval-prompt");
  check_positive(args.data_pad_size_multiplier, "--data-pad-size-multiplier");
  SLIME_CHECK(args.rollout_temperature > 0, "--rollout-temperature must be > 0, got ", args.rollout_temperature,
              " (temperature 0 is greedy decoding, not a policy to train)");
  SLIME_CHECK(args.rollout_top_p > 0 && args.rollout_top_p <= 1, "--rollout-top-p must be in (0, 1], got ",
              args.rollout_top_p);

  // Epochs or steps: slime requires one. --num-rollout 0 runs only the evaluation before training.
  if (args.num_epoch) {
    check_positive(args.num_epoch, "--num-epoch");
    SLIME_CHECK(args.num_rollout || args.rollout_global_dataset,
                "--num-epoch needs the built-in dataset; remove --disable-rollout-global-dataset or give "
                "--num-rollout");
  } else {
    SLIME_CHECK(args.num_rollout, "one of --num-rollout and --num-epoch is required");
  }
  if (args.num_rollout)
    SLIME_CHECK(*args.num_rollout >= 0, "--num-rollout must be >= 0, got ", *args.num_rollout);

  // Batch sizes: global_batch_size counts samples per optimizer step.
  int64_t samples_per_rollout = *args.rollout_batch_size * args.n_samples_per_prompt;
  if (args.num_steps_per_rollout) {
    check_positive(args.num_steps_per_rollout, "--num-steps-per-rollout");
    int64_t steps = *args.num_steps_per_rollout;
    SLIME_CHECK(samples_per_rollout % steps == 0, "--num-steps-per-rollout (", steps,
                ") must divide rollout-batch-size x n-samples-per-prompt (", samples_per_rollout, ")");
    int64_t derived = samples_per_rollout / steps;
    SLIME_CHECK(!args.global_batch_size || *args.global_batch_size == derived, "--global-batch-size (",
                args.global_batch_size.value_or(0), ") disagrees with --num-steps-per-rollout (", steps,
                "): rollout-batch-size x n-samples-per-prompt / num-steps-per-rollout = ", derived);
    args.global_batch_size = derived;
  }
  if (!args.global_batch_size) args.global_batch_size = samples_per_rollout;  // slime-hpc: one step per rollout
  check_positive(args.global_batch_size, "--global-batch-size");
  SLIME_CHECK(samples_per_rollout % *args.global_batch_size == 0, "--global-batch-size (", *args.global_batch_size,
              ") must divide rollout-batch-size x n-samples-per-prompt (", samples_per_rollout, ")");

  if (!args.over_sampling_batch_size) args.over_sampling_batch_size = args.rollout_batch_size;
  SLIME_CHECK(*args.over_sampling_batch_size >= *args.rollout_batch_size, "--over-sampling-batch-size (",
              *args.over_sampling_batch_size, ") must be >= --rollout-batch-size (", *args.rollout_batch_size, ")");

  if (args.use_dynamic_batch_size)
    SLIME_CHECK(args.max_tokens_per_gpu, "--use-dynamic-batch-size needs --max-tokens-per-gpu");
  check_positive(args.max_tokens_per_gpu, "--max-tokens-per-gpu");
  if (!args.log_probs_max_tokens_per_gpu) args.log_probs_max_tokens_per_gpu = args.max_tokens_per_gpu;
  check_positive(args.log_probs_max_tokens_per_gpu, "--log-probs-max-tokens-per-gpu");

  // Lengths: at least one generated token must fit.
  if (!args.eval_max_context_len) args.eval_max_context_len = args.rollout_max_context_len;
  if (args.rollout_max_context_len) {
    check_positive(args.rollout_max_context_len, "--rollout-max-context-len");
    if (!args.rollout_max_prompt_len) args.rollout_max_prompt_len = *args.rollout_max_context_len - 1;
    SLIME_CHECK(*args.rollout_max_prompt_len <= *args.rollout_max_context_len - 1, "--rollout-max-prompt-len (",
                *args.rollout_max_prompt_len, ") must be <= --rollout-max-context-len - 1 (",
                *args.rollout_max_context_len - 1, ") so that at least one token is generated");
  }
  check_positive(args.rollout_max_response_len, "--rollout-max-response-len");

  if (args.eval_interval) {
    check_positive(args.eval_interval, "--eval-interval");
    SLIME_CHECK(!args.eval_prompt_data.empty() || args.eval_config,
                "--eval-interval needs evaluation data: --eval-prompt-data or --eval-config");
  }
  if (!args.eval_function_path) args.eval_function_path = args.rollout_function_path;
  if (!args.eval_reward_key) args.eval_reward_key = args.reward_key;

  SLIME_CHECK(args.only_train_params_name_list.empty() || args.freeze_params_name_list.empty(),
              "--only-train-params-name-list and --freeze-params-name-list are exclusive: give one of them");
}

void validate_algorithm(Args& args) {
  if (args.kl_coef != 0 || args.use_kl_loss) {
    const char* reason = args.use_kl_loss ? "--use-kl-loss" : "--kl-coef";
    SLIME_CHECK(args.ref_load, reason, " needs --ref-load (the reference model checkpoint)");
    SLIME_CHECK(path_exists(*args.ref_load), "--ref-load '", *args.ref_load, "' does not exist (needed by ", reason,
                ")");
  }
  SLIME_CHECK(!(args.kl_coef != 0 && args.kl_loss_coef != 0), "--kl-coef (", args.kl_coef, ") and --kl-loss-coef (",
              args.kl_loss_coef, ") cannot both be non-zero");
  if (args.advantage_estimator == "reinforce_plus_plus" || args.advantage_estimator == "reinforce_plus_plus_baseline")
    SLIME_CHECK(args.normalize_advantages, "--advantage-estimator ", args.advantage_estimator,
                " needs --normalize-advantages");
  SLIME_CHECK(!(args.use_rollout_logprobs && args.use_tis), "--use-rollout-logprobs and --use-tis are exclusive");
  if (args.get_mismatch_metrics)
    SLIME_CHECK(args.custom_tis_function_path, "--get-mismatch-metrics needs --custom-tis-function-path");
  if (args.loss_type == "custom_loss")
    SLIME_CHECK(args.custom_loss_function_path, "--loss-type custom_loss needs --custom-loss-function-path");

  if (!args.eps_clip_high) args.eps_clip_high = args.eps_clip;
  if (args.eps_clip_c)
    SLIME_CHECK(*args.eps_clip_c > 1.0, "--eps-clip-c (dual-clip constant) must be > 1, got ", *args.eps_clip_c);
  if (args.advantage_estimator == "cispo" && args.eps_clip < 1.0 && log::rank() == 0)
    SLIME_WARN("--advantage-estimator cispo with --eps-clip ", args.eps_clip,
               " keeps the lower clip bound active; the canonical setting is --eps-clip 1.0");
  SLIME_CHECK(args.tis_clip_low <= args.tis_clip, "--tis-clip-low (", args.tis_clip_low, ") must be <= --tis-clip (",
              args.tis_clip, ")");
  check_positive(args.ref_update_interval, "--ref-update-interval");
  SLIME_CHECK(args.num_critic_only_steps >= 0, "--num-critic-only-steps must be >= 0, got ",
              args.num_critic_only_steps);

  // Dr.GRPO std normalisation is meaningless for groups of one.
  if (args.n_samples_per_prompt == 1) args.grpo_std_normalization = false;
}

void validate_checkpoint_and_debug(Args& args) {
  resolve_checkpoint_to_load(args);
  if (args.save_interval) {
    check_positive(args.save_interval, "--save-interval");
    SLIME_CHECK(args.save, "--save-interval needs --save");
  }
  check_positive(args.keep_last_n, "--keep-last-n");
  check_positive(args.exit_interval, "--exit-interval");
  if (args.exit_duration_in_mins)
    SLIME_CHECK(*args.exit_duration_in_mins > 0, "--exit-duration-in-mins must be > 0, got ", *args.exit_duration_in_mins);
  if (args.exit_signal_handler || args.exit_duration_in_mins || args.exit_interval)
    SLIME_CHECK(args.save, "--exit-signal-handler, --exit-duration-in-mins and --exit-interval save a checkpoint "
                           "before stopping: they need --save");
  if (args.keep_last_n) SLIME_CHECK(args.save, "--keep-last-n needs --save");

  SLIME_CHECK(!(args.save_debug_train_data && args.save_debug_train_data == args.save_debug_rollout_data),
              "--save-debug-train-data and --save-debug-rollout-data must be different paths");
  if (args.load_debug_rollout_data_subsample) {
    double fraction = *args.load_debug_rollout_data_subsample;
    SLIME_CHECK(fraction > 0 && fraction <= 1, "--load-debug-rollout-data-subsample must be in (0, 1], got ",
                fraction);
  }

  // Logging: --tb-dir and Megatron's --tensorboard-dir are one setting; slime's --tb-project-name is the fallback.
  SLIME_CHECK(!(args.tb_dir && args.tensorboard_dir && *args.tb_dir != *args.tensorboard_dir), "--tb-dir ('",
              args.tb_dir.value_or(""), "') and --tensorboard-dir ('", args.tensorboard_dir.value_or(""),
              "') disagree; give one");
  if (!args.tb_dir) args.tb_dir = args.tensorboard_dir;
  if (args.tb_dir) args.use_tensorboard = true;
  if (args.use_tensorboard && !args.tb_dir) args.tb_dir = args.tb_project_name;
  if (args.use_tensorboard && !args.tb_dir) {  // then slime's $TENSORBOARD_DIR, then <save>/tensorboard
    if (const char* env = std::getenv("TENSORBOARD_DIR"); env != nullptr && *env != '\0') args.tb_dir = env;
    else if (args.save) args.tb_dir = path_join(*args.save, "tensorboard");
    SLIME_CHECK(args.tb_dir, "--use-tensorboard: give --tb-dir (or --save, or TENSORBOARD_DIR)");
  }
  check_positive(args.log_interval, "--log-interval");
}

void validate_megatron(Args& args) {
  check_positive(args.tensor_model_parallel_size, "--tensor-model-parallel-size");
  check_positive(args.pipeline_model_parallel_size, "--pipeline-model-parallel-size");
  check_positive(args.context_parallel_size, "--context-parallel-size");
  SLIME_CHECK(args.pipeline_model_parallel_size == 1, "--pipeline-model-parallel-size ",
              args.pipeline_model_parallel_size, " is not supported yet (only 1)");
  SLIME_CHECK(args.context_parallel_size == 1, "--context-parallel-size ", args.context_parallel_size,
              " is not supported yet (only 1)");
  if (!args.debug_rollout_only) {
    int64_t actor_gpus = args.actor_num_nodes * args.actor_num_gpus_per_node;
    SLIME_CHECK(actor_gpus % args.tensor_model_parallel_size == 0, "--tensor-model-parallel-size (",
                args.tensor_model_parallel_size, ") must divide the actor's GPUs (--actor-num-nodes x "
                "--actor-num-gpus-per-node = ", actor_gpus, ")");
  }
  if (args.tensor_model_parallel_size == 1) args.sequence_parallel = false;  // Megatron does the same
  args.use_distributed_optimizer = true;                                     // slime always does

  SLIME_CHECK(!(args.bf16 && args.fp16), "--bf16 and --fp16 are exclusive");
  args.bf16 = !args.fp16;  // slime

  if (args.recompute_method)
    SLIME_CHECK(args.recompute_granularity == "full", "--recompute-method needs --recompute-granularity full");
  if (args.recompute_granularity == "full") {
    SLIME_CHECK(args.recompute_method && args.recompute_num_layers,
                "--recompute-granularity full needs --recompute-method and --recompute-num-layers");
    check_positive(args.recompute_num_layers, "--recompute-num-layers");
  }

  SLIME_CHECK(!(args.lr_warmup_fraction && args.lr_warmup_iters != 0),
              "--lr-warmup-fraction and --lr-warmup-iters are exclusive");
  if (args.lr_warmup_fraction)
    SLIME_CHECK(*args.lr_warmup_fraction >= 0 && *args.lr_warmup_fraction < 1,
                "--lr-warmup-fraction must be in [0, 1) (warm-up ends before the decay does), got ",
                *args.lr_warmup_fraction);
  SLIME_CHECK(args.lr_warmup_iters >= 0, "--lr-warmup-iters must be >= 0, got ", args.lr_warmup_iters);
  SLIME_CHECK(args.min_lr <= args.lr, "--min-lr (", args.min_lr, ") must be <= --lr (", args.lr, ")");
  SLIME_CHECK(!(args.override_opt_param_scheduler && args.use_checkpoint_opt_param_scheduler),
              "--override-opt_param-scheduler and --use-checkpoint-opt_param-scheduler are exclusive");
  SLIME_CHECK(args.lr_decay_style != "WSD" || args.lr_wsd_decay_iters,
              "--lr-decay-style WSD needs --lr-wsd-decay-iters");
  SLIME_CHECK(args.weight_decay_incr_style == "constant" || (args.start_weight_decay && args.end_weight_decay),
              "--weight-decay-incr-style ", args.weight_decay_incr_style,
              " needs --start-weight-decay and --end-weight-decay");
  SLIME_CHECK(args.clip_grad >= 0, "--clip-grad must be >= 0, got ", args.clip_grad);
  check_positive(args.train_iters, "--train-iters");

  check_positive(args.make_vocab_size_divisible_by, "--make-vocab-size-divisible-by");
  check_positive(args.seq_length, "--seq-length");
  if (args.vocab_size && !args.padded_vocab_size) {  // Megatron: pad to a multiple of divisor x TP
    int64_t multiple = args.make_vocab_size_divisible_by * args.tensor_model_parallel_size;
    args.padded_vocab_size = (*args.vocab_size + multiple - 1) / multiple * multiple;
  }
  if (args.vocab_size && args.padded_vocab_size)
    SLIME_CHECK(*args.padded_vocab_size >= *args.vocab_size, "--padded-vocab-size (", *args.padded_vocab_size,
                ") must be >= --vocab-size (", *args.vocab_size, ")");
  if (args.num_query_groups && args.num_attention_heads)
    SLIME_CHECK(*args.num_attention_heads % *args.num_query_groups == 0, "--num-query-groups (",
                *args.num_query_groups, ") must divide --num-attention-heads (", *args.num_attention_heads, ")");
}

void validate_engine(Args& args) {
  SLIME_CHECK(args.sglang_mem_fraction_static > 0 && args.sglang_mem_fraction_static <= 1,
              "--sglang-mem-fraction-static must be in (0, 1], got ", args.sglang_mem_fraction_static);
  check_positive(args.sglang_page_size, "--sglang-page-size");
  check_positive(args.sglang_server_concurrency, "--sglang-server-concurrency");
  check_positive(args.sglang_max_running_requests, "--sglang-max-running-requests");
  check_positive(args.sglang_max_total_tokens, "--sglang-max-total-tokens");
  check_positive(args.sglang_context_length, "--sglang-context-length");
  check_positive(args.sglang_cuda_graph_max_bs, "--sglang-cuda-graph-max-bs");
  SLIME_CHECK(args.router_balance_abs_threshold >= 0, "--router-balance-abs-threshold must be >= 0, got ",
              args.router_balance_abs_threshold);
  SLIME_CHECK(args.router_balance_rel_threshold >= 1.0, "--router-balance-rel-threshold must be >= 1, got ",
              args.router_balance_rel_threshold);
  check_positive(args.update_weight_buffer_size, "--update-weight-buffer-size");
  // The CPU backend has no NCCL: its weight sync is MPI (documented in the option's help).
  if (args.backend == "cpu") args.update_weight_transport = "mpi";
}

}  // namespace

void validate_args(Args& args) {
  resolve_eval_datasets(args);
  validate_cluster(args);
  validate_rollout_and_data(args);
  validate_algorithm(args);
  validate_checkpoint_and_debug(args);
  validate_megatron(args);
  validate_engine(args);
}

}  // namespace slime
