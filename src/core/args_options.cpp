// The option table of slime-train: one line per option (flag, bound field, help), group by group, in the
// order of slime's add_*_arguments functions, then Megatron's groups, then the rollout engine and router.
// Defaults live in the field initialisers of struct Args (args.h); help shows them from there.
// Hook options ("...-path") take the name of a built-in (slime's Python path of the function slime-hpc
// re-implements) or a plugin `path/to/plugin.so:symbol`.
#include <set>

#include "core/args_registry.h"
#include "core/error.h"

namespace slime::args_detail {
namespace {

constexpr const char* kHook = " Value: a built-in name or `path/to/plugin.so:symbol`.";

// Chainable view of the entry just added; used only within the statement that added it.
struct Entry {
  OptionSpec& spec;
  Entry& style(Style s) {
    spec.style = s;
    return *this;
  }
  Entry& choices(std::vector<std::string> c) {
    spec.choices = std::move(c);
    return *this;
  }
  Entry& note(const char* text) {
    spec.default_note = text;
    return *this;
  }
};

struct TableBuilder {
  std::vector<OptionSpec>& table;
  std::string group;
  Entry add(const char* flag, const char* field, FieldRef ref, std::string help) {
    OptionSpec spec;
    spec.group = group;
    spec.flag = flag;
    spec.field = field;
    spec.ref = ref;
    spec.help = std::move(help);
    bool is_bool = std::holds_alternative<bool Args::*>(ref) || std::holds_alternative<std::optional<bool> Args::*>(ref);
    spec.style = is_bool ? Style::StoreTrue : Style::Value;
    table.push_back(std::move(spec));
    return Entry{table.back()};
  }
};

#define OPT(flag, field, help) b.add(flag, #field, &Args::field, help)

// Structural checks on the table: catches a typo in a flag or a style on the wrong field type at startup.
void check_table(const std::vector<OptionSpec>& table) {
  std::set<std::string> flags, fields;
  for (const auto& s : table) {
    SLIME_ASSERT(flags.insert(s.flag).second, "duplicate flag ", s.flag);
    SLIME_ASSERT(fields.insert(s.field).second, "duplicate field ", s.field);
    SLIME_ASSERT(s.flag.rfind("--", 0) == 0, s.flag);
    std::string derived = s.flag.substr(2);
    for (char& c : derived) c = c == '-' ? '_' : c;
    bool is_bool = std::holds_alternative<bool Args::*>(s.ref);
    bool is_opt_bool = std::holds_alternative<std::optional<bool> Args::*>(s.ref);
    bool is_list = std::holds_alternative<std::vector<std::string> Args::*>(s.ref) ||
                   std::holds_alternative<std::vector<int64_t> Args::*>(s.ref);
    bool is_string = std::holds_alternative<std::string Args::*>(s.ref) ||
                     std::holds_alternative<std::optional<std::string> Args::*>(s.ref);
    if (s.style == Style::StoreFalse) {
      SLIME_ASSERT(s.flag.rfind("--disable-", 0) == 0, s.flag, ": store-false flags are --disable-*");
    } else {
      SLIME_ASSERT(derived == s.field, s.flag, " is bound to field ", s.field);
    }
    switch (s.style) {
      case Style::StoreTrue:
      case Style::StoreFalse: SLIME_ASSERT(is_bool || is_opt_bool, s.flag); break;
      case Style::BoolPair: SLIME_ASSERT(is_opt_bool, s.flag); break;
      case Style::ZeroOrMore:
      case Style::Append: SLIME_ASSERT(is_list, s.flag); break;
      case Style::JsonObject: SLIME_ASSERT(std::holds_alternative<std::string Args::*>(s.ref), s.flag); break;
      case Style::Value: SLIME_ASSERT(!is_bool && !is_opt_bool, s.flag); break;
    }
    SLIME_ASSERT(s.choices.empty() || is_string, s.flag, ": choices need a string field");
  }
}

std::vector<OptionSpec> build_table() {
  std::vector<OptionSpec> table;
  TableBuilder b{table, "cluster"};
  OPT("--actor-num-nodes", actor_num_nodes, "Nodes for the training actor.");
  OPT("--actor-num-gpus-per-node", actor_num_gpus_per_node,
      "GPUs (ranks) per node for the training actor; trainer pool = nodes x this.");
  OPT("--rollout-num-gpus", rollout_num_gpus,
      "Total GPUs (ranks) of the rollout engines. With --colocate it defaults to the actor's GPUs. "
      "0 = no local engines (router only).");
  OPT("--rollout-num-gpus-per-engine", rollout_num_gpus_per_engine,
      "GPUs per rollout engine: the engine's tensor-parallel size (slime derives sglang tp_size from it).");
  OPT("--num-gpus-per-node", num_gpus_per_node,
      "GPUs per node, used to place rollout engines; set it when nodes have fewer than 8 GPUs under --colocate.");
  OPT("--colocate", colocate,
      "Run training and rollout on the same GPUs, alternating in time; implies --offload-train and "
      "--offload-rollout unless they are given.");
  OPT("--offload", offload, "Same as --offload-train --offload-rollout.");
  OPT("--offload-train", offload_train,
      "Release the trainer's GPU memory while rolling out (--no-offload-train to keep it). None: on with "
      "--colocate or a critic, else off.")
      .style(Style::BoolPair);
  OPT("--offload-rollout", offload_rollout,
      "Release the rollout engines' GPU memory while training (--no-offload-rollout to keep it). None: on "
      "with --colocate, else off.")
      .style(Style::BoolPair);
  OPT("--distributed-timeout-minutes", distributed_timeout_minutes,
      "Timeout of collective operations (NCCL/MPI) in minutes.");

  b.group = "train";
  OPT("--update-weight-transport", update_weight_transport,
      "How weights go from trainer to rollout engines: nccl (with --backend cuda: bf16 buckets from the trainer's "
      "GPU straight into the engines' GPU buffers, over NCCL, or host-staged MPI for ranks sharing a GPU; the host "
      "path when an engine cannot take them) or mpi (fp32 buckets through host memory and MPI broadcasts). The CPU "
      "backend always uses mpi.")
      .choices({"nccl", "mpi"});
  OPT("--update-weight-buffer-size", update_weight_buffer_size,
      "Bytes per weight-sync bucket (512 MiB by default).");
  OPT("--recompute-loss-function", recompute_loss_function,
      "Recompute the loss function in backward instead of keeping its activations (saves the [tokens, vocab] "
      "logits memory).");
  OPT("--log-probs-chunk-size", log_probs_chunk_size,
      "Rows per chunk when computing log-probs/entropy over the vocabulary; -1 = no chunking.");
  OPT("--only-train-params-name-list", only_train_params_name_list,
      "Regexes (searched anywhere in the Megatron parameter name, like Python's re.search) of the parameters to "
      "TRAIN; all others are frozen. Exclusive with --freeze-params-name-list.")
      .style(Style::ZeroOrMore);
  OPT("--freeze-params-name-list", freeze_params_name_list,
      "Regexes of the parameter names to FREEZE; the others stay trainable.")
      .style(Style::ZeroOrMore);

  b.group = "rollout";
  OPT("--hf-checkpoint", hf_checkpoint,
      "HuggingFace checkpoint directory (config.json, tokenizer, safetensors): the model architecture, the "
      "tokenizer and the engines' first weights (overwritten by the trainer's before the first rollout).");
  OPT("--model-name", model_name,
      "Model family for trainer->HF weight conversion; None = from config.json's model_type.");
  OPT("--rollout-function-path", rollout_function_path,
      std::string("The whole rollout function (generate, reward, filter a batch of prompt groups).") + kHook);
  OPT("--rollout-temperature", rollout_temperature,
      "Sampling temperature (> 0). Training divides logits by it too, so log-probs match the sampler.");
  OPT("--rollout-top-p", rollout_top_p, "Top-p (nucleus) sampling.");
  OPT("--rollout-top-k", rollout_top_k, "Top-k sampling; -1 = off.");
  OPT("--rollout-max-context-len", rollout_max_context_len,
      "Maximum context (prompt + response) of the rollout engine; None = the model's.");
  OPT("--rollout-max-prompt-len", rollout_max_prompt_len,
      "Prompts longer than this are dropped when the dataset is loaded.")
      .note("None (-> rollout-max-context-len - 1)");
  OPT("--rollout-max-response-len", rollout_max_response_len, "Maximum new tokens per response.");
  OPT("--rollout-skip-special-tokens", rollout_skip_special_tokens,
      "Drop special tokens when detokenising responses.");
  OPT("--rollout-stop", rollout_stop, "Stop strings.");
  OPT("--rollout-stop-token-ids", rollout_stop_token_ids, "Stop token ids.");
  OPT("--rollout-shuffle", rollout_shuffle, "Shuffle the prompts every epoch.");
  OPT("--rollout-seed", rollout_seed,
      "Seed of the prompt shuffle (seed + epoch) and base of per-sample sampling seeds.");
  OPT("--over-sampling-batch-size", over_sampling_batch_size,
      "Prompt groups requested per refill when dynamic sampling needs more; must be >= rollout-batch-size.")
      .note("None (-> rollout-batch-size)");
  OPT("--dynamic-sampling-filter-path", dynamic_sampling_filter_path,
      std::string("Keep/drop filter applied to each finished group (DAPO dynamic sampling), e.g. "
                  "slime.rollout.filter_hub.dynamic_sampling_filters.check_reward_nonzero_std.") +
          kHook);
  OPT("--partial-rollout", partial_rollout,
      "Return unfinished groups to the data buffer when a rollout step has enough, and continue them next step.");
  OPT("--mask-offpolicy-in-partial-rollout", mask_offpolicy_in_partial_rollout,
      "With --partial-rollout, exclude from the loss the tokens generated by an earlier policy.");
  OPT("--custom-generate-function-path", custom_generate_function_path,
      std::string("Replaces the per-sample generate step of the default rollout (multi-turn, tools).") + kHook);
  OPT("--rollout-sample-hook-path", rollout_sample_hook_path,
      std::string("Hook applied to each generated sample before its reward; repeat the option for several.") +
          kHook)
      .style(Style::Append);
  OPT("--buffer-filter-path", buffer_filter_path,
      std::string("Chooses which groups to take from the data buffer; None = first in, first out.") + kHook);
  OPT("--train-async", train_async,
      "Run slime's asynchronous loop (train_async.py): the rollout of step k+1 is generated while step k trains, "
      "one weight version behind. Without it, slime's synchronous loop (train.py). Not with --colocate.");
  OPT("--update-weights-interval", update_weights_interval,
      "Asynchronous loop: push weights to the engines every N rollout steps.");
  OPT("--keep-old-actor", keep_old_actor,
      "Keep a copy of the policy that generated the rollout, for the old log-probs (asynchronous loop).");
  OPT("--rollout-data-postprocess-path", rollout_data_postprocess_path,
      std::string("Hook called after log-probs and advantages are computed, right before training (e.g. to edit "
                  "loss masks).") +
          kHook);
  OPT("--custom-rollout-log-function-path", custom_rollout_log_function_path,
      std::string("Custom logging of a rollout step; returns whether to skip the default logging.") + kHook);

  b.group = "data";
  OPT("--num-rollout", num_rollout,
      "Rollout steps to run. 0 runs only the evaluation before training. One of --num-rollout and "
      "--num-epoch is required.");
  OPT("--num-epoch", num_epoch,
      "Epochs over --prompt-data: num_rollout = num_epoch x dataset size / rollout-batch-size (ignored if "
      "--num-rollout is given).");
  OPT("--disable-rollout-global-dataset", rollout_global_dataset,
      "Do not load --prompt-data into the built-in dataset; a custom rollout function supplies prompts.")
      .style(Style::StoreFalse);
  OPT("--prompt-data", prompt_data, "Prompt dataset (JSONL), one prompt per line.");
  OPT("--apply-chat-template", apply_chat_template,
      "Apply the tokenizer's chat template to prompts given as OpenAI-style message lists.");
  OPT("--apply-chat-template-kwargs", apply_chat_template_kwargs,
      "JSON object of extra chat-template variables, e.g. '{\"enable_thinking\": false}'.")
      .style(Style::JsonObject);
  OPT("--input-key", input_key, "Dataset field holding the prompt.");
  OPT("--label-key", label_key, "Dataset field holding the label (reference answer).");
  OPT("--metadata-key", metadata_key, "Dataset field holding per-sample metadata (a JSON object).");
  OPT("--tool-key", tool_key, "Dataset field holding tool definitions passed to the chat template.");
  OPT("--start-rollout-id", start_rollout_id,
      "First rollout step; None = the loaded checkpoint's step + 1, or 0.");
  OPT("--rollout-batch-size", rollout_batch_size,
      "Prompts per rollout step; a step yields rollout-batch-size x n-samples-per-prompt samples.")
      .note("required");
  OPT("--n-samples-per-prompt", n_samples_per_prompt, "Responses per prompt (the group size).");
  OPT("--global-batch-size", global_batch_size,
      "Samples per optimizer step; must divide rollout-batch-size x n-samples-per-prompt.")
      .note("None (-> rollout-batch-size x n-samples-per-prompt / num-steps-per-rollout, or one step per rollout)");
  OPT("--num-steps-per-rollout", num_steps_per_rollout,
      "Optimizer steps per rollout step; sets global-batch-size = rollout-batch-size x n-samples-per-prompt / this.");
  OPT("--micro-batch-size", micro_batch_size,
      "Samples per micro-batch (ignored with --use-dynamic-batch-size).");
  OPT("--balance-data", balance_data,
      "Balance the estimated FLOPs of each data-parallel rank's share (Karmarkar-Karp partition).");
  OPT("--use-dynamic-batch-size", use_dynamic_batch_size,
      "Pack micro-batches by token budget (--max-tokens-per-gpu) instead of a fixed sample count.");
  OPT("--max-tokens-per-gpu", max_tokens_per_gpu, "Token budget of a micro-batch on one GPU.");
  OPT("--log-probs-max-tokens-per-gpu", log_probs_max_tokens_per_gpu,
      "Token budget for the forward-only log-prob passes.")
      .note("None (-> max-tokens-per-gpu)");

  b.group = "eval";
  OPT("--eval-function-path", eval_function_path,
      std::string("Evaluation rollout function.") + kHook)
      .note("None (-> rollout-function-path)");
  OPT("--eval-interval", eval_interval, "Evaluate every N rollout steps (needs eval data).");
  OPT("--eval-prompt-data", eval_prompt_data,
      "Evaluation datasets as name/path pairs: `aime /data/aime.jsonl gsm8k /data/gsm8k.jsonl` (a single path "
      "is named aime).");
  OPT("--eval-config", eval_config,
      "YAML/JSON file with eval.defaults and eval.datasets; replaces --eval-prompt-data.");
  OPT("--skip-eval-before-train", skip_eval_before_train, "Skip the evaluation at rollout step 0.");
  OPT("--eval-input-key", eval_input_key, "Evaluation override of --input-key.");
  OPT("--eval-label-key", eval_label_key, "Evaluation override of --label-key.");
  OPT("--eval-tool-key", eval_tool_key, "Evaluation override of --tool-key.");
  OPT("--n-samples-per-eval-prompt", n_samples_per_eval_prompt, "Responses per evaluation prompt.");
  OPT("--eval-temperature", eval_temperature, "Evaluation temperature; None = --rollout-temperature.");
  OPT("--eval-top-p", eval_top_p, "Evaluation top-p; None = --rollout-top-p.");
  OPT("--eval-top-k", eval_top_k, "Evaluation top-k; None = --rollout-top-k.");
  OPT("--eval-max-response-len", eval_max_response_len,
      "Evaluation max new tokens; None = --rollout-max-response-len.");
  OPT("--eval-max-prompt-len", eval_max_prompt_len, "Evaluation prompt length filter.");
  OPT("--eval-min-new-tokens", eval_min_new_tokens, "Evaluation minimum new tokens.");
  OPT("--eval-max-context-len", eval_max_context_len, "Evaluation maximum context.")
      .note("None (-> rollout-max-context-len)");

  b.group = "algorithm";
  OPT("--seed", seed, "Random seed of the trainer (engines use seed + rank x gpus per node).");
  OPT("--calculate-per-token-loss", calculate_per_token_loss,
      "Average the loss over all tokens of the step instead of per sample (per-sample token mean, then mean).");
  OPT("--num-critic-only-steps", num_critic_only_steps,
      "PPO: train only the critic during the first N rollout steps.");
  OPT("--eps-clip", eps_clip, "PPO clip range: ratio >= 1 - eps-clip.");
  OPT("--eps-clip-high", eps_clip_high, "PPO upper clip range: ratio <= 1 + eps-clip-high (DAPO clip-higher).")
      .note("None (-> eps-clip)");
  OPT("--eps-clip-c", eps_clip_c, "Dual-clip PPO constant c (> 1) bounding the loss of negative advantages.");
  OPT("--value-clip", value_clip, "Clip range of the critic's value loss.");
  OPT("--kl-coef", kl_coef, "KL penalty folded into the reward before advantages (reward shaping).");
  OPT("--loss-type", loss_type,
      "policy_loss (PPO/GRPO family), sft_loss (negative log-likelihood) or custom_loss "
      "(--custom-loss-function-path).")
      .choices({"policy_loss", "sft_loss", "custom_loss"});
  OPT("--custom-loss-function-path", custom_loss_function_path,
      std::string("Loss function used with --loss-type custom_loss.") + kHook);
  OPT("--kl-loss-type", kl_loss_type,
      "KL estimator: k1 = logp - ref, k2 = (logp - ref)^2 / 2, k3 = exp(ref - logp) - 1 - (ref - logp), "
      "low_var_kl = k3 clamped to [-10, 10].")
      .choices({"k1", "k2", "k3", "low_var_kl"});
  OPT("--advantage-estimator", advantage_estimator, "Advantage estimator; ppo trains a critic.")
      .choices({"grpo", "gspo", "cispo", "reinforce_plus_plus", "reinforce_plus_plus_baseline", "ppo"});
  OPT("--disable-compute-advantages-and-returns", compute_advantages_and_returns,
      "Skip the reference/old log-probs and advantages (SFT or custom losses).")
      .style(Style::StoreFalse);
  OPT("--custom-advantage-function-path", custom_advantage_function_path,
      std::string("Replaces the built-in advantage/return computation.") + kHook);
  OPT("--use-kl-loss", use_kl_loss, "Add kl-loss-coef x KL(policy || reference) to the loss (GRPO style).");
  OPT("--kl-loss-coef", kl_loss_coef, "Coefficient of the KL loss (exclusive with a non-zero --kl-coef).");
  OPT("--use-unbiased-kl", use_unbiased_kl,
      "Multiply the KL by the importance ratio policy/old policy (unbiased estimate).");
  OPT("--ref-update-interval", ref_update_interval,
      "Copy the actor into the reference model every N rollout steps; None = never.");
  OPT("--entropy-coef", entropy_coef, "Entropy bonus coefficient: loss -= entropy-coef x entropy.");
  OPT("--gamma", gamma, "Discount factor (PPO, REINFORCE++).");
  OPT("--lambd", lambd, "GAE lambda (PPO).");
  OPT("--normalize-advantages", normalize_advantages,
      "Whiten advantages over all data-parallel ranks (masked mean/std); required by the REINFORCE++ estimators.");
  OPT("--disable-grpo-std-normalization", grpo_std_normalization,
      "Dr.GRPO: subtract the group mean but do not divide by the group std.")
      .style(Style::StoreFalse);
  OPT("--disable-rewards-normalization", rewards_normalization,
      "Do not subtract the group mean from rewards.")
      .style(Style::StoreFalse);
  OPT("--use-rollout-entropy", use_rollout_entropy,
      "Compute the entropy during the forward-only log-prob passes too.");
  OPT("--get-mismatch-metrics", get_mismatch_metrics,
      "Log train/rollout log-prob mismatch metrics (needs --custom-tis-function-path).");
  OPT("--reset-optimizer-states", reset_optimizer_states,
      "Zero the optimizer's moments and step after every rollout step.");
  OPT("--use-rollout-logprobs", use_rollout_logprobs,
      "Use the engine's log-probs as the old policy's instead of recomputing them (exclusive with --use-tis).");
  OPT("--use-tis", use_tis,
      "Truncated importance sampling: weight each token's loss by clamp(exp(old - rollout), tis-clip-low, "
      "tis-clip).");
  OPT("--tis-clip", tis_clip, "Upper bound of the TIS weight.");
  OPT("--tis-clip-low", tis_clip_low, "Lower bound of the TIS weight.");
  OPT("--custom-tis-function-path", custom_tis_function_path,
      std::string("Custom importance-sampling/rejection function.") + kHook);
  OPT("--custom-pg-loss-reducer-function-path", custom_pg_loss_reducer_function_path,
      std::string("Custom reduction of the policy-gradient loss only (e.g. Dr.GRPO's constant denominator).") +
          kHook);
  OPT("--use-opsm", use_opsm,
      "Off-policy sequence masking: drop sequences with negative advantage whose mean log-ratio exceeds "
      "--opsm-delta.");
  OPT("--opsm-delta", opsm_delta, "OPSM threshold.");

  b.group = "checkpoint";
  OPT("--ref-load", ref_load,
      "Reference model checkpoint; also the starting point when --load holds no checkpoint. Needed by any KL.");
  OPT("--ref-ckpt-step", ref_ckpt_step, "Step of the reference checkpoint to load; None = latest.");
  OPT("--load", load, "Checkpoint directory to resume from (or an HF directory to start from).");
  OPT("--save", save, "Checkpoint directory to write iter_NNNNNNN/ into.");
  OPT("--save-interval", save_interval,
      "Save every N rollout steps (also at the end of each epoch and of the run); needs --save.");
  OPT("--async-save", async_save, "Write checkpoints in the background while training continues.");
  OPT("--no-save-optim", no_save_optim, "Do not save optimizer state (smaller; no exact resume).");
  OPT("--save-hf", save_hf,
      "Also export HF safetensors to this path; `{rollout_id}` in it is replaced by the step.");
  OPT("--no-load-optim", no_load_optim, "Do not load optimizer state.");
  OPT("--no-load-rng", no_load_rng, "Do not load RNG state.");
  OPT("--finetune", finetune,
      "Load weights only, starting at step 0 (set automatically when --load holds no checkpoint).");
  OPT("--ckpt-step", ckpt_step, "Step of the --load checkpoint to load; None = latest.");
  OPT("--keep-last-n", keep_last_n,
      "Keep only the newest N iter_* directories under --save; None = keep all.");
  OPT("--exit-signal-handler", exit_signal_handler,
      "On SIGTERM, SIGUSR1 or SIGUSR2 (Slurm's preemption / time-limit warnings) finish the step in flight, save a "
      "checkpoint to --save and exit with status 75, so that a requeued job resumes with --load (docs/slurm.md).");
  OPT("--exit-duration-in-mins", exit_duration_in_mins,
      "Save and exit (status 75) after the first step that ends this many minutes after the start.");
  OPT("--exit-interval", exit_interval,
      "Save and exit (status 0) after rollout step k when (k + 1) is a multiple of N.");

  b.group = "logging";
  OPT("--use-tensorboard", use_tensorboard, "Write TensorBoard event files.");
  OPT("--tb-project-name", tb_project_name,
      "slime's TensorBoard directory option; used when --tb-dir and --tensorboard-dir are not given.");
  OPT("--tb-experiment-name", tb_experiment_name, "TensorBoard run name (a subdirectory).");
  OPT("--tb-dir", tb_dir,
      "TensorBoard event directory (turns TensorBoard on). None: --tensorboard-dir, then --tb-project-name, then "
      "$TENSORBOARD_DIR, then <save or run dir>/tensorboard.");
  OPT("--tensorboard-dir", tensorboard_dir, "Megatron's spelling of --tb-dir.");
  OPT("--trace-dir", trace_dir, "Write Chrome trace files (chrome://tracing, Perfetto) of each rank here.");
  OPT("--metrics-file", metrics_file,
      "JSON-lines file of per-step metrics; None = <save or run dir>/metrics.jsonl.");
  OPT("--log-level", log_level, "Log verbosity.").choices({"debug", "info", "warn", "error"});
  OPT("--log-passrate", log_passrate, "Log pass@k (k = powers of 2 up to n) of rollout and eval groups.");
  OPT("--log-correct-samples", log_correct_samples,
      "Also log response statistics restricted to samples with reward 1.");
  OPT("--log-interval", log_interval,
      "Log training metrics every N optimizer steps (Megatron's default is 100; slime-hpc logs every step).");

  b.group = "debug";
  OPT("--debug-rollout-only", debug_rollout_only,
      "Run only the rollout side (no training); all GPUs go to rollout. Use with --save-debug-rollout-data.");
  OPT("--debug-train-only", debug_train_only,
      "Run only training, on rollouts replayed from --load-debug-rollout-data.");
  OPT("--load-debug-rollout-data", load_debug_rollout_data,
      "Replay rollouts saved by --save-debug-rollout-data (`{rollout_id}` in the path); implies "
      "--debug-train-only.");
  OPT("--save-debug-rollout-data", save_debug_rollout_data,
      "Save each rollout step's samples to this path (`{rollout_id}` replaced).");
  OPT("--load-debug-rollout-data-subsample", load_debug_rollout_data_subsample,
      "Fraction (0, 1] of the replayed rollout data to keep.");
  OPT("--save-debug-train-data", save_debug_train_data,
      "Save each step's training batch (all data-parallel shards) to this path (`{rollout_id}`, `{rank}`).");
  OPT("--check-weight-update-equal", check_weight_update_equal,
      "After each weight sync, check that the engines' weights equal the trainer's.");

  b.group = "reward model";
  OPT("--rm-type", rm_type,
      "Reward: math, deepscaler, dapo, f1, gpqa, exact_match, countdown, arithmetic, random, remote_rm, boxed_<type> "
      "(score the last \\boxed{} answer).");
  OPT("--reward-key", reward_key, "Key of the reward when the reward function returns a dict.");
  OPT("--eval-reward-key", eval_reward_key, "Evaluation variant of --reward-key.").note("None (-> reward-key)");
  OPT("--group-rm", group_rm, "Compute rewards per whole group (one batched call per prompt).");
  OPT("--rm-url", rm_url, "URL of the reward service for --rm-type remote_rm.");
  OPT("--custom-rm-path", custom_rm_path, std::string("Custom reward function.") + kHook);
  OPT("--custom-reward-post-process-path", custom_reward_post_process_path,
      std::string("Replaces the group normalisation of rewards.") + kHook);
  OPT("--custom-convert-samples-to-train-data-path", custom_convert_samples_to_train_data_path,
      std::string("Replaces the conversion of samples into training data.") + kHook);

  b.group = "misc-data";
  OPT("--loss-mask-type", loss_mask_type, "Chat format used to build multi-turn SFT loss masks.")
      .choices({"qwen", "qwen3", "qwen3_5", "distill_qwen"});
  OPT("--data-pad-size-multiplier", data_pad_size_multiplier,
      "Packed micro-batches are padded to a multiple of tensor-parallel size x this.");
  OPT("--rollout-sample-filter-path", rollout_sample_filter_path,
      std::string("Marks samples to leave out of the loss (they still count in reward normalisation).") + kHook);
  OPT("--rollout-all-samples-process-path", rollout_all_samples_process_path,
      std::string("Sees every group of a step, filtered ones included.") + kHook);

  b.group = "ci";
  OPT("--ci-test", ci_test, "Turn on in-process correctness assertions (KL = 0 on the first step, ...).");
  OPT("--ci-disable-kl-checker", ci_disable_kl_checker, "With --ci-test, skip the KL = 0 assertions.");
  OPT("--ci-train-rollout-logprob-abs-diff-threshold", ci_train_rollout_logprob_abs_diff_threshold,
      "With --ci-test, bound on the mean |train log-prob - rollout log-prob|.");

  b.group = "model";
  OPT("--num-layers", num_layers, "Transformer layers.");
  OPT("--hidden-size", hidden_size, "Hidden size.");
  OPT("--ffn-hidden-size", ffn_hidden_size, "MLP intermediate size.");
  OPT("--num-attention-heads", num_attention_heads, "Attention (query) heads.");
  OPT("--group-query-attention", group_query_attention, "Grouped-query attention.");
  OPT("--num-query-groups", num_query_groups, "Key/value heads under grouped-query attention.");
  OPT("--kv-channels", kv_channels, "Head dimension.");
  OPT("--qk-layernorm", qk_layernorm, "RMS-normalise queries and keys per head (Qwen3).");
  OPT("--add-qkv-bias", add_qkv_bias, "Bias on the QKV projection (Qwen2).");
  OPT("--untie-embeddings-and-output-weights", untie_embeddings_and_output_weights,
      "Separate output layer instead of the transposed embedding.");
  OPT("--rotary-base", rotary_base, "RoPE base (rope_theta).");
  OPT("--norm-epsilon", norm_epsilon, "Epsilon of the normalisation layers.");
  OPT("--vocab-size", vocab_size, "Vocabulary size.");
  OPT("--make-vocab-size-divisible-by", make_vocab_size_divisible_by,
      "The vocabulary is padded to a multiple of this x tensor-parallel size.");
  OPT("--padded-vocab-size", padded_vocab_size, "Padded vocabulary size; None = computed from --vocab-size.");
  OPT("--max-position-embeddings", max_position_embeddings, "Maximum positions.");
  OPT("--seq-length", seq_length,
      "Megatron's sequence length; a placeholder under sequence packing (slime's default).");
  OPT("--swiglu", swiglu, "SwiGLU MLP.");
  OPT("--normalization", normalization, "Normalisation layer.").choices({"RMSNorm", "LayerNorm"});
  OPT("--disable-bias-linear", add_bias_linear, "No biases in linear layers.").style(Style::StoreFalse);
  OPT("--position-embedding-type", position_embedding_type, "Position embedding.").choices({"rope"});
  OPT("--use-rotary-position-embeddings", use_rotary_position_embeddings,
      "Megatron's deprecated spelling of --position-embedding-type rope (accepted so slime's model scripts work).");
  OPT("--use-rope-scaling", use_rope_scaling, "Llama-3.x RoPE frequency scaling.");
  OPT("--rope-scaling-factor", rope_scaling_factor, "Llama-3.x RoPE scaling factor.");

  b.group = "parallel";
  OPT("--tensor-model-parallel-size", tensor_model_parallel_size, "Tensor-parallel size of the trainer.");
  OPT("--pipeline-model-parallel-size", pipeline_model_parallel_size,
      "Pipeline-parallel size; slime-hpc supports only 1.");
  OPT("--context-parallel-size", context_parallel_size, "Context-parallel size; slime-hpc supports only 1 for now.");
  OPT("--sequence-parallel", sequence_parallel,
      "Shard norm/dropout activations along the sequence across tensor-parallel ranks.");
  OPT("--use-distributed-optimizer", use_distributed_optimizer,
      "Shard optimizer state across data-parallel ranks (slime always turns it on).");
  OPT("--recompute-granularity", recompute_granularity,
      "Activation recomputation: full (whole layers) or selective (attention core).")
      .choices({"full", "selective"});
  OPT("--recompute-method", recompute_method,
      "With full recomputation: uniform (every recompute-num-layers layers form a chunk) or block (first "
      "recompute-num-layers layers of each stage).")
      .choices({"uniform", "block"});
  OPT("--recompute-num-layers", recompute_num_layers, "Layers per recomputation chunk / recomputed layers.");

  b.group = "optimizer & learning rate";
  OPT("--optimizer", optimizer, "Optimizer (Megatron's name; slime-hpc implements adam, i.e. AdamW).")
      .choices({"adam"});
  OPT("--lr", lr, "Learning rate (slime's default).");
  OPT("--min-lr", min_lr, "Learning rate floor of the decay.");
  OPT("--lr-decay-style", lr_decay_style, "Learning-rate decay (slime's scripts pass constant).")
      .choices({"constant", "linear", "cosine", "inverse-square-root", "WSD"});
  OPT("--lr-wsd-decay-iters", lr_wsd_decay_iters, "WSD: steps of the final anneal (required by --lr-decay-style WSD).");
  OPT("--lr-wsd-decay-style", lr_wsd_decay_style, "WSD: shape of the final anneal.")
      .choices({"linear", "cosine", "exponential", "minus_sqrt"});
  OPT("--lr-decay-iters", lr_decay_iters, "Steps of the decay; None = --train-iters.");
  OPT("--lr-warmup-iters", lr_warmup_iters, "Linear warm-up steps.");
  OPT("--lr-warmup-fraction", lr_warmup_fraction,
      "Warm-up as a fraction of the decay steps (exclusive with --lr-warmup-iters).");
  OPT("--lr-warmup-init", lr_warmup_init, "Learning rate at the start of warm-up.");
  OPT("--adam-beta1", adam_beta1, "Adam beta1.");
  OPT("--adam-beta2", adam_beta2, "Adam beta2.");
  OPT("--adam-eps", adam_eps, "Adam epsilon.");
  OPT("--weight-decay", weight_decay, "Decoupled weight decay (AdamW).");
  OPT("--start-weight-decay", start_weight_decay, "Weight decay at step 0 (non-constant --weight-decay-incr-style).");
  OPT("--end-weight-decay", end_weight_decay, "Weight decay at the end (non-constant --weight-decay-incr-style).");
  OPT("--weight-decay-incr-style", weight_decay_incr_style, "How weight decay moves from start to end.")
      .choices({"constant", "linear", "cosine"});
  OPT("--override-opt_param-scheduler", override_opt_param_scheduler,
      "On resume, take the LR/weight-decay schedule from the options, not from the checkpoint.");
  OPT("--use-checkpoint-opt_param-scheduler", use_checkpoint_opt_param_scheduler,
      "On resume, take the LR/weight-decay schedule from the checkpoint, not from the options.");
  OPT("--clip-grad", clip_grad, "Clip the global gradient L2 norm to this; 0 = off.");
  OPT("--train-iters", train_iters,
      "Optimizer steps of the LR schedule; None = num-rollout x steps per rollout, as slime does.");

  b.group = "mixed precision";
  OPT("--bf16", bf16, "bfloat16 training (slime: always, unless --fp16).");
  OPT("--fp16", fp16, "float16 training with loss scaling.");
  OPT("--backend", backend,
      "Compute backend: cpu, cuda, or auto. cuda runs the trainer's forward, backward and distributed optimizer on "
      "the GPU (CUDA decoder; data and tensor parallel over NCCL, or host-staged MPI for ranks sharing a GPU) and "
      "the rollout engines on the GPU (bf16 weights, paged KV cache sized by --sglang-mem-fraction-static, GPU "
      "sampling, CUDA graphs for decode; tensor parallel with --rollout-num-gpus-per-engine). auto means cpu until "
      "the GPU trainer is complete.")
      .choices({"cpu", "cuda", "auto"});

  b.group = "sglang";
  OPT("--sglang-mem-fraction-static", sglang_mem_fraction_static,
      "Fraction of the device's memory (host memory on the CPU backend) the engine takes for weights and KV cache.");
  OPT("--sglang-max-running-requests", sglang_max_running_requests,
      "Maximum concurrently running requests per engine (the KV cache may admit fewer); None = 256.");
  OPT("--sglang-max-total-tokens", sglang_max_total_tokens,
      "KV-cache capacity in tokens; None = from --sglang-mem-fraction-static.");
  OPT("--sglang-chunked-prefill-size", sglang_chunked_prefill_size,
      "Tokens computed per prefill step (longer prompts are chunked); None = 512, -1 = whole prompts.");
  OPT("--sglang-page-size", sglang_page_size,
      "Tokens per KV-cache page (block); prefix sharing works on whole pages. slime-hpc's engine defaults to 16.");
  OPT("--sglang-context-length", sglang_context_length,
      "Engine context length; None = --rollout-max-context-len or the model's.");
  OPT("--sglang-schedule-policy", sglang_schedule_policy,
      "Waiting-queue order: fcfs (arrival) or lpm (longest cached prefix first).")
      .choices({"fcfs", "lpm"});
  OPT("--sglang-disable-cuda-graph", sglang_disable_cuda_graph,
      "Do not capture CUDA graphs for decode (CUDA backend): every step launches its kernels.");
  OPT("--sglang-cuda-graph-max-bs", sglang_cuda_graph_max_bs,
      "Largest decode batch captured as a CUDA graph (CUDA backend); None = 256.");
  OPT("--sglang-enable-deterministic-inference", sglang_enable_deterministic_inference,
      "Batch-invariant kernels and per-request seeds: identical outputs for identical requests.");
  OPT("--sglang-server-concurrency", sglang_server_concurrency,
      "Requests in flight per engine from the rollout side; on the CPU backend, the worker threads running "
      "generate plug-ins and rewards (at most 64).");
  OPT("--sglang-disable-radix-cache", sglang_disable_radix_cache, "Do not reuse cached prompt prefixes.");

  b.group = "router";
  OPT("--router-policy", router_policy,
      "cache_aware: send a request to the engine that served its session/prefix unless loads are imbalanced "
      "(see thresholds), then to the least-loaded engine; round_robin; consistent_hashing: by session only.")
      .choices({"cache_aware", "round_robin", "consistent_hashing"});
  OPT("--router-balance-abs-threshold", router_balance_abs_threshold,
      "Loads are imbalanced when max - min running requests exceeds this ...");
  OPT("--router-balance-rel-threshold", router_balance_rel_threshold, "... and max > this x min.");

  check_table(table);
  return table;
}

#undef OPT

}  // namespace

const std::vector<OptionSpec>& option_table() {
  static const std::vector<OptionSpec> table = build_table();
  return table;
}

const std::vector<std::string>& option_groups() {
  static const std::vector<std::string> groups = [] {
    std::vector<std::string> out;
    for (const auto& spec : option_table())
      if (out.empty() || out.back() != spec.group) out.push_back(spec.group);
    return out;
  }();
  return groups;
}

const std::vector<OmittedOption>& omitted_options() {
  static const std::vector<OmittedOption> omitted = {
      {"--use-wandb", "W&B logging is not part of slime-hpc; use --use-tensorboard or --metrics-file"},
      {"--wandb-", "W&B logging is not part of slime-hpc; use --use-tensorboard or --metrics-file"},
      {"--disable-wandb-random-suffix", "W&B logging is not part of slime-hpc"},
      {"--use-fault-tolerance",
       "rollout-engine fault tolerance is not part of slime-hpc (an MPI job restarts from its checkpoint)"},
      {"--rollout-health-check-", "rollout-engine health checks are not part of slime-hpc"},
      {"--use-routing-replay", "MoE models (and routing replay) are not supported by slime-hpc"},
      {"--use-rollout-routing-replay", "MoE models (and routing replay) are not supported by slime-hpc"},
      {"--moe-", "MoE models are not supported by slime-hpc"},
      {"--num-experts", "MoE models are not supported by slime-hpc"},
      {"--expert-model-parallel-size", "MoE models (expert parallelism) are not supported by slime-hpc"},
      {"--expert-tensor-parallel-size", "MoE models (expert parallelism) are not supported by slime-hpc"},
      {"--use-opd", "on-policy distillation is not part of slime-hpc"},
      {"--opd-", "on-policy distillation is not part of slime-hpc"},
      {"--enable-mtp-training", "MTP layers are not supported by slime-hpc"},
      {"--mtp-", "MTP layers are not supported by slime-hpc"},
      {"--fp8-", "FP8 training is not supported by slime-hpc (bf16 or fp16)"},
      {"--update-weight-mode", "slime-hpc syncs full weights only (--update-weight-transport nccl|mpi)"},
      {"--update-weight-disk-", "disk weight sync is not part of slime-hpc (--update-weight-transport nccl|mpi)"},
      {"--update-weight-delta-", "delta weight sync is not part of slime-hpc"},
      {"--update-weight-local-checkpoint-dir", "delta weight sync is not part of slime-hpc"},
      {"--release-train", "slime-hpc keeps trainer ranks alive (use --offload-train to free their memory)"},
      {"--rollout-data-transport", "rollout data moves by MPI one-sided windows in slime-hpc; there is no Ray"},
      {"--rollout-external-engine-addrs", "external rollout engines are not supported by slime-hpc"},
      {"--prefill-num-servers", "prefill/decode disaggregation is not supported by slime-hpc"},
      {"--sglang-config", "engine topology YAML is not supported; use --rollout-num-gpus(-per-engine)"},
      {"--sglang-router-", "slime-hpc's router runs inside the job; see the router group (--router-*)"},
      {"--sglang-tp-size", "the engine's tensor-parallel size is --rollout-num-gpus-per-engine"},
      {"--custom-megatron-", "the Megatron plug-in hooks are not part of slime-hpc"},
      {"--megatron-deepgemm-", "FP8 DeepGEMM alignment is not part of slime-hpc"},
      {"--multimodal-keys", "multimodal inputs are not supported by slime-hpc"},
      {"--http-proxy", "slime-hpc has no HTTP between its parts"},
      {"--use-distributed-post", "slime-hpc has no HTTP between its parts"},
      {"--train-backend", "slime-hpc has one trainer (Megatron-style); remove the option"},
      {"--attention-dropout", "slime-hpc has no dropout (RL post-training runs with dropout 0); remove the option"},
      {"--hidden-dropout", "slime-hpc has no dropout (RL post-training runs with dropout 0); remove the option"},
      {"--accumulate-allreduce-grads-in-fp32", "slime-hpc always reduces gradients in fp32; remove the option"},
      {"--attention-softmax-in-fp32", "slime-hpc always computes the attention softmax in fp32; remove the option"},
      {"--attention-backend", "slime-hpc picks its own attention kernels; remove the option"},
  };
  return omitted;
}

}  // namespace slime::args_detail
