// The command line of slime-train: every option as a field of `Args`, with slime's names and defaults.
// Options are registered once, in args_options.cpp (flag, field, group, help, choices); parsing, the YAML
// config file, --help, the Markdown reference, JSON export and the argument summary are all driven by that
// table, so adding an option is one line there plus one field here.
//   slime options       keep slime's flags and defaults (`--rollout-batch-size`, `--eps-clip-high`, ...)
//   Megatron options    keep Megatron's flags and defaults (`--tensor-model-parallel-size`, `--lr`, ...)
//   rollout engine      SGLang's names with the `--sglang-` prefix; the router's with `--router-`
// std::optional<T> fields are options whose slime/Megatron default is None; validate_args() fills the ones
// slime derives (eps_clip_high, over_sampling_batch_size, global_batch_size, offload_*, ...).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/io.h"

namespace slime {

struct Args {
  // ---- cluster --------------------------------------------------------------------------------------------
  int64_t actor_num_nodes = 1;
  int64_t actor_num_gpus_per_node = 8;
  std::optional<int64_t> rollout_num_gpus;         // None: actor GPUs under --colocate; 0 = no local engines
  int64_t rollout_num_gpus_per_engine = 1;          // engine tensor-parallel size (= sglang tp_size)
  int64_t num_gpus_per_node = 8;
  bool colocate = false;
  bool offload = false;                             // = --offload-train + --offload-rollout
  std::optional<bool> offload_train;                // None -> decided by validate_args (always set after it)
  std::optional<bool> offload_rollout;
  int64_t distributed_timeout_minutes = 10;

  // ---- train (weight sync, memory) ----------------------------------------------------------------------
  std::string update_weight_transport = "nccl";     // nccl | mpi
  int64_t update_weight_buffer_size = 512ll * 1024 * 1024;  // bytes per weight-sync bucket
  bool recompute_loss_function = false;
  int64_t log_probs_chunk_size = -1;
  std::vector<std::string> only_train_params_name_list;   // regexes; empty = None
  std::vector<std::string> freeze_params_name_list;

  // ---- rollout ------------------------------------------------------------------------------------------
  std::optional<std::string> hf_checkpoint;
  std::optional<std::string> model_name;
  std::string rollout_function_path = "slime.rollout.sglang_rollout.generate_rollout";
  double rollout_temperature = 1.0;
  double rollout_top_p = 1.0;
  int64_t rollout_top_k = -1;
  std::optional<int64_t> rollout_max_context_len;
  std::optional<int64_t> rollout_max_prompt_len;     // after validate_args: rollout_max_context_len - 1 if unset
  std::optional<int64_t> rollout_max_response_len;
  bool rollout_skip_special_tokens = false;
  std::vector<std::string> rollout_stop;
  std::vector<int64_t> rollout_stop_token_ids;
  bool rollout_shuffle = false;
  int64_t rollout_seed = 42;
  std::optional<int64_t> over_sampling_batch_size;   // after validate_args: rollout_batch_size if unset
  std::optional<std::string> dynamic_sampling_filter_path;
  bool partial_rollout = false;
  bool mask_offpolicy_in_partial_rollout = false;
  std::optional<std::string> custom_generate_function_path;
  std::vector<std::string> rollout_sample_hook_path;  // repeatable option
  std::optional<std::string> buffer_filter_path;
  int64_t update_weights_interval = 1;
  bool train_async = false;  // slime-hpc: slime's train_async.py loop instead of train.py
  bool keep_old_actor = false;
  std::optional<std::string> rollout_data_postprocess_path;
  std::optional<std::string> custom_rollout_log_function_path;

  // ---- data ---------------------------------------------------------------------------------------------
  std::optional<int64_t> num_rollout;
  std::optional<int64_t> num_epoch;
  bool rollout_global_dataset = true;               // --disable-rollout-global-dataset sets false
  std::optional<std::string> prompt_data;
  bool apply_chat_template = false;
  std::string apply_chat_template_kwargs = "{}";    // a JSON object, checked when parsed
  std::string input_key = "input";
  std::optional<std::string> label_key;
  std::string metadata_key = "metadata";
  std::string tool_key = "tools";
  std::optional<int64_t> start_rollout_id;
  std::optional<int64_t> rollout_batch_size;         // required by validate_args (always set after it)
  int64_t n_samples_per_prompt = 1;
  std::optional<int64_t> global_batch_size;          // after validate_args: always set
  std::optional<int64_t> num_steps_per_rollout;
  int64_t micro_batch_size = 1;
  bool balance_data = false;
  bool use_dynamic_batch_size = false;
  std::optional<int64_t> max_tokens_per_gpu;
  std::optional<int64_t> log_probs_max_tokens_per_gpu;

  // ---- eval ---------------------------------------------------------------------------------------------
  std::optional<std::string> eval_function_path;     // after validate_args: rollout_function_path if unset
  std::optional<int64_t> eval_interval;
  std::vector<std::string> eval_prompt_data;         // name path [name path ...]
  std::optional<std::string> eval_config;
  bool skip_eval_before_train = false;
  std::optional<std::string> eval_input_key;
  std::optional<std::string> eval_label_key;
  std::optional<std::string> eval_tool_key;
  int64_t n_samples_per_eval_prompt = 1;
  std::optional<double> eval_temperature;
  std::optional<double> eval_top_p;
  std::optional<int64_t> eval_top_k;
  std::optional<int64_t> eval_max_response_len;
  std::optional<int64_t> eval_max_prompt_len;
  std::optional<int64_t> eval_min_new_tokens;
  std::optional<int64_t> eval_max_context_len;

  // ---- algorithm ----------------------------------------------------------------------------------------
  int64_t seed = 1234;
  bool calculate_per_token_loss = false;
  int64_t num_critic_only_steps = 0;
  double eps_clip = 0.2;
  std::optional<double> eps_clip_high;               // after validate_args: eps_clip if unset
  std::optional<double> eps_clip_c;
  double value_clip = 0.2;
  double kl_coef = 0.0;
  std::string loss_type = "policy_loss";             // policy_loss | sft_loss | custom_loss
  std::optional<std::string> custom_loss_function_path;
  std::string kl_loss_type = "k1";                   // k1 | k2 | k3 | low_var_kl
  std::string advantage_estimator = "grpo";          // grpo | gspo | cispo | reinforce_plus_plus | ..._baseline | ppo
  bool compute_advantages_and_returns = true;        // --disable-compute-advantages-and-returns sets false
  std::optional<std::string> custom_advantage_function_path;
  bool use_kl_loss = false;
  double kl_loss_coef = 0.0;
  bool use_unbiased_kl = false;
  std::optional<int64_t> ref_update_interval;
  double entropy_coef = 0.0;
  double gamma = 1.0;
  double lambd = 1.0;
  bool normalize_advantages = false;
  bool grpo_std_normalization = true;                // --disable-grpo-std-normalization sets false
  bool rewards_normalization = true;                 // --disable-rewards-normalization sets false
  bool use_rollout_entropy = false;
  bool get_mismatch_metrics = false;
  bool reset_optimizer_states = false;
  bool use_rollout_logprobs = false;
  bool use_tis = false;
  double tis_clip = 2.0;
  double tis_clip_low = 0.0;
  std::optional<std::string> custom_tis_function_path;
  std::optional<std::string> custom_pg_loss_reducer_function_path;
  bool use_opsm = false;
  double opsm_delta = 1e-4;

  // ---- checkpoint ---------------------------------------------------------------------------------------
  std::optional<std::string> ref_load;
  std::optional<int64_t> ref_ckpt_step;
  std::optional<std::string> load;
  std::optional<std::string> save;
  std::optional<int64_t> save_interval;
  bool async_save = false;
  bool no_save_optim = false;
  std::optional<std::string> save_hf;
  bool no_load_optim = false;
  bool no_load_rng = false;
  bool finetune = false;
  std::optional<int64_t> ckpt_step;
  std::optional<int64_t> keep_last_n;                // keep only the newest N iter_* directories
  // Megatron's early-exit options (Slurm preemption and time limits): stop after the step in flight, save, exit 75.
  bool exit_signal_handler = false;                  // SIGTERM / SIGUSR1 / SIGUSR2 -> save and stop
  std::optional<double> exit_duration_in_mins;       // save and stop once the job has run this long
  std::optional<int64_t> exit_interval;              // save and stop after a rollout step that is a multiple of N

  // ---- logging ------------------------------------------------------------------------------------------
  bool use_tensorboard = false;
  std::optional<std::string> tb_project_name;
  std::optional<std::string> tb_experiment_name;
  std::optional<std::string> tb_dir;
  std::optional<std::string> tensorboard_dir;
  std::optional<std::string> trace_dir;
  std::optional<std::string> metrics_file;
  std::string log_level = "info";                    // debug | info | warn | error
  bool log_passrate = false;
  bool log_correct_samples = false;
  int64_t log_interval = 1;

  // ---- debug --------------------------------------------------------------------------------------------
  bool debug_rollout_only = false;
  bool debug_train_only = false;
  std::optional<std::string> load_debug_rollout_data;
  std::optional<std::string> save_debug_rollout_data;
  std::optional<double> load_debug_rollout_data_subsample;
  std::optional<std::string> save_debug_train_data;
  bool check_weight_update_equal = false;

  // ---- reward model -------------------------------------------------------------------------------------
  std::optional<std::string> rm_type;
  std::optional<std::string> reward_key;
  std::optional<std::string> eval_reward_key;        // after validate_args: reward_key if unset
  bool group_rm = false;
  std::optional<std::string> rm_url;
  std::optional<std::string> custom_rm_path;
  std::optional<std::string> custom_reward_post_process_path;
  std::optional<std::string> custom_convert_samples_to_train_data_path;

  // ---- misc-data ----------------------------------------------------------------------------------------
  std::string loss_mask_type = "qwen";               // qwen | qwen3 | qwen3_5 | distill_qwen
  int64_t data_pad_size_multiplier = 128;
  std::optional<std::string> rollout_sample_filter_path;
  std::optional<std::string> rollout_all_samples_process_path;

  // ---- ci -----------------------------------------------------------------------------------------------
  bool ci_test = false;
  bool ci_disable_kl_checker = false;
  double ci_train_rollout_logprob_abs_diff_threshold = 0.1;

  // ---- model (Megatron; None = take it from --hf-checkpoint's config.json) -------------------------------
  std::optional<int64_t> num_layers;
  std::optional<int64_t> hidden_size;
  std::optional<int64_t> ffn_hidden_size;
  std::optional<int64_t> num_attention_heads;
  std::optional<bool> group_query_attention;
  std::optional<int64_t> num_query_groups;
  std::optional<int64_t> kv_channels;
  std::optional<bool> qk_layernorm;
  std::optional<bool> add_qkv_bias;
  std::optional<bool> untie_embeddings_and_output_weights;
  std::optional<double> rotary_base;
  std::optional<double> norm_epsilon;
  std::optional<int64_t> vocab_size;
  int64_t make_vocab_size_divisible_by = 128;
  std::optional<int64_t> padded_vocab_size;
  std::optional<int64_t> max_position_embeddings;
  int64_t seq_length = 4096;
  std::optional<bool> swiglu;
  std::string normalization = "RMSNorm";             // RMSNorm | LayerNorm
  std::optional<bool> add_bias_linear;               // --disable-bias-linear sets false
  std::string position_embedding_type = "rope";
  bool use_rotary_position_embeddings = false;       // Megatron's deprecated spelling of rope
  std::optional<bool> use_rope_scaling;
  std::optional<double> rope_scaling_factor;

  // ---- parallel (Megatron) ------------------------------------------------------------------------------
  int64_t tensor_model_parallel_size = 1;
  int64_t pipeline_model_parallel_size = 1;
  int64_t context_parallel_size = 1;
  bool sequence_parallel = false;
  bool use_distributed_optimizer = false;            // validate_args forces it on, as slime does
  std::optional<std::string> recompute_granularity;  // full | selective
  std::optional<std::string> recompute_method;       // uniform | block
  std::optional<int64_t> recompute_num_layers;

  // ---- optimizer & learning rate (Megatron) -------------------------------------------------------------
  std::string optimizer = "adam";                    // adam | sgd
  double lr = 1e-6;
  double min_lr = 0.0;
  std::string lr_decay_style = "linear";             // constant | linear | cosine | inverse-square-root | WSD
  std::optional<int64_t> lr_decay_iters;
  int64_t lr_warmup_iters = 0;
  std::optional<double> lr_warmup_fraction;
  double lr_warmup_init = 0.0;
  double adam_beta1 = 0.9;
  double adam_beta2 = 0.999;
  double adam_eps = 1e-8;
  std::optional<int64_t> lr_wsd_decay_iters;         // WSD: steps of the final anneal
  std::string lr_wsd_decay_style = "exponential";    // linear | cosine | exponential | minus_sqrt
  double weight_decay = 0.01;
  std::optional<double> start_weight_decay;          // non-constant --weight-decay-incr-style only
  std::optional<double> end_weight_decay;
  std::string weight_decay_incr_style = "constant";  // constant | linear | cosine
  bool override_opt_param_scheduler = false;         // on load: the options win over the checkpoint's schedule
  bool use_checkpoint_opt_param_scheduler = false;   // on load: the checkpoint's schedule wins
  double clip_grad = 1.0;
  std::optional<int64_t> train_iters;

  // ---- mixed precision and backend ----------------------------------------------------------------------
  bool bf16 = false;                                 // validate_args: bf16 = !fp16, as slime does
  bool fp16 = false;
  std::string backend = "auto";                      // cpu | cuda | auto

  // ---- sglang (the rollout engine) ----------------------------------------------------------------------
  double sglang_mem_fraction_static = 0.9;
  std::optional<int64_t> sglang_max_running_requests;
  std::optional<int64_t> sglang_max_total_tokens;
  std::optional<int64_t> sglang_chunked_prefill_size;
  int64_t sglang_page_size = 16;                      // tokens per KV block (slime-hpc engine default)
  std::optional<int64_t> sglang_context_length;
  std::string sglang_schedule_policy = "fcfs";       // fcfs | lpm
  bool sglang_disable_cuda_graph = false;
  std::optional<int64_t> sglang_cuda_graph_max_bs;
  bool sglang_enable_deterministic_inference = false;
  int64_t sglang_server_concurrency = 512;
  bool sglang_disable_radix_cache = false;

  // ---- router -------------------------------------------------------------------------------------------
  std::string router_policy = "cache_aware";         // cache_aware | round_robin | consistent_hashing
  int64_t router_balance_abs_threshold = 10;
  double router_balance_rel_threshold = 1.2;
};

struct ParsedArgs {
  Args args;
  bool help_requested = false;
  std::optional<std::string> config_path;  // the --config file, if one was given
};

// argv excludes the program name. `--config FILE.yaml` is read first (keys are option names with dashes or
// underscores, or field names), then the command line overrides it. `--help` / `-h` anywhere returns at once
// with help_requested set and the defaults. Throws slime::Error naming the option (or the file and key).
ParsedArgs parse_args(const std::vector<std::string>& argv);

// Applies a YAML config file onto `args` (the same as --config FILE, without the command line).
void apply_yaml_config(Args& args, const std::string& path);

// slime_validate_args: cross-argument rules and derived defaults. Checks the file system for --ref-load and
// --load the way slime does (a --load without latest_checkpointed_iteration.txt starts from --ref-load).
// Throws slime::Error naming the option(s) involved.
void validate_args(Args& args);

// The PPO estimator trains a critic next to the actor.
bool use_critic(const Args& args);

std::string format_help();           // every option, grouped, with its default and help
std::string format_help_markdown();  // the same as a Markdown page (one table per group) for docs/options.md
json args_to_json(const Args& args);  // every option under its field name (null for None)
Args args_from_json(const json& j);   // inverse; unknown keys and wrong types are errors; missing keys = default
std::string format_args_summary(const Args& args);  // Megatron-style "------ arguments ------" listing

}  // namespace slime
