// Tests of slime-train's options: a realistic slime command line, slime's defaults, derived values, the YAML
// config, every error class (with the option named), help and Markdown coverage, JSON round trip, summary.
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <functional>
#include <sstream>

#include "core/args.h"
#include "core/args_registry.h"
#include "core/error.h"
#include "core/io.h"

using namespace slime;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;

namespace {

std::string make_temp_dir() {
  char pattern[] = "/tmp/slime_args_test_XXXXXX";
  char* dir = mkdtemp(pattern);
  REQUIRE(dir != nullptr);
  return dir;
}

// The message of the slime::Error thrown by `fn`, or "" if it does not throw.
std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

Args parse(const std::vector<std::string>& argv) { return parse_args(argv).args; }

Args parse_and_validate(const std::vector<std::string>& argv) {
  Args args = parse(argv);
  validate_args(args);
  return args;
}

// The smallest command line that validates: colocated on one GPU.
std::vector<std::string> minimal(std::vector<std::string> extra = {}) {
  std::vector<std::string> argv = {"--rollout-batch-size", "4", "--num-rollout", "2", "--colocate",
                                   "--actor-num-gpus-per-node", "1"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return argv;
}

std::string validation_error(const std::vector<std::string>& argv) {
  return error_of([&] { parse_and_validate(argv); });
}

}  // namespace

TEST_CASE("slime's run-qwen3-4B.sh command line parses and validates") {
  std::string tmp = make_temp_dir();
  std::string ref = tmp + "/Qwen3-4B_torch_dist";
  REQUIRE(mkdir(ref.c_str(), 0755) == 0);
  std::string run_dir = tmp + "/Qwen3-4B_slime/";
  std::vector<std::string> argv = {
      "--actor-num-nodes", "1", "--actor-num-gpus-per-node", "8", "--colocate",
      // scripts/models/qwen3-4B.sh
      "--swiglu", "--num-layers", "36", "--hidden-size", "2560", "--ffn-hidden-size", "9728", "--num-attention-heads",
      "32", "--group-query-attention", "--num-query-groups", "8", "--use-rotary-position-embeddings",
      "--disable-bias-linear", "--normalization", "RMSNorm", "--norm-epsilon", "1e-6", "--rotary-base", "1000000",
      "--vocab-size", "151936", "--kv-channels", "128", "--qk-layernorm",
      // CKPT_ARGS
      "--hf-checkpoint", "/root/Qwen3-4B", "--ref-load", ref, "--load", run_dir, "--save", run_dir, "--save-interval",
      "20",
      // ROLLOUT_ARGS
      "--prompt-data", "/root/dapo-math-17k/dapo-math-17k.jsonl", "--input-key", "prompt", "--label-key", "label",
      "--apply-chat-template", "--rollout-shuffle", "--rm-type", "deepscaler", "--num-rollout", "3000",
      "--rollout-batch-size", "32", "--n-samples-per-prompt", "8", "--rollout-max-response-len", "8192",
      "--rollout-temperature", "1", "--global-batch-size", "256", "--balance-data",
      // EVAL_ARGS
      "--eval-interval", "20", "--eval-prompt-data", "aime", "/root/aime-2024/aime-2024.jsonl",
      "--n-samples-per-eval-prompt", "16", "--eval-max-response-len", "16384", "--eval-top-p", "1",
      // PERF_ARGS
      "--tensor-model-parallel-size", "2", "--sequence-parallel", "--pipeline-model-parallel-size", "1",
      "--context-parallel-size", "1", "--recompute-granularity", "full", "--recompute-method", "uniform",
      "--recompute-num-layers", "1", "--use-dynamic-batch-size", "--max-tokens-per-gpu", "9216",
      // GRPO_ARGS
      "--advantage-estimator", "grpo", "--use-kl-loss", "--kl-loss-coef", "0.00", "--kl-loss-type", "low_var_kl",
      "--entropy-coef", "0.00", "--eps-clip", "0.2", "--eps-clip-high", "0.28",
      // OPTIMIZER_ARGS
      "--optimizer", "adam", "--lr", "1e-6", "--lr-decay-style", "constant", "--weight-decay", "0.1", "--adam-beta1",
      "0.9", "--adam-beta2", "0.98",
      // SGLANG_ARGS
      "--rollout-num-gpus-per-engine", "2", "--sglang-mem-fraction-static", "0.7"};
  ParsedArgs parsed = parse_args(argv);
  CHECK_FALSE(parsed.help_requested);
  Args& a = parsed.args;

  CHECK(a.actor_num_gpus_per_node == 8);
  CHECK(a.colocate);
  CHECK(a.swiglu == std::optional<bool>(true));
  CHECK(a.num_layers == 36);
  CHECK(a.hidden_size == 2560);
  CHECK(a.ffn_hidden_size == 9728);
  CHECK(a.num_query_groups == 8);
  CHECK(a.add_bias_linear == std::optional<bool>(false));
  CHECK(a.norm_epsilon == Approx(1e-6));
  CHECK(a.rotary_base == Approx(1000000.0));
  CHECK(a.vocab_size == 151936);
  CHECK(a.qk_layernorm == std::optional<bool>(true));
  CHECK_FALSE(a.add_qkv_bias.has_value());  // not given: from config.json
  CHECK(a.hf_checkpoint == "/root/Qwen3-4B");
  CHECK(a.save_interval == 20);
  CHECK(a.input_key == "prompt");
  CHECK(a.label_key == "label");
  CHECK(a.apply_chat_template);
  CHECK(a.rollout_shuffle);
  CHECK(a.rm_type == "deepscaler");
  CHECK(a.num_rollout == 3000);
  CHECK(a.rollout_batch_size == 32);
  CHECK(a.n_samples_per_prompt == 8);
  CHECK(a.rollout_max_response_len == 8192);
  CHECK(a.rollout_temperature == 1.0);
  CHECK(a.global_batch_size == 256);
  CHECK(a.balance_data);
  CHECK(a.eval_interval == 20);
  CHECK(a.eval_prompt_data == std::vector<std::string>{"aime", "/root/aime-2024/aime-2024.jsonl"});
  CHECK(a.n_samples_per_eval_prompt == 16);
  CHECK(a.eval_max_response_len == 16384);
  CHECK(a.eval_top_p == 1.0);
  CHECK(a.tensor_model_parallel_size == 2);
  CHECK(a.sequence_parallel);
  CHECK(a.recompute_granularity == "full");
  CHECK(a.recompute_method == "uniform");
  CHECK(a.recompute_num_layers == 1);
  CHECK(a.use_dynamic_batch_size);
  CHECK(a.max_tokens_per_gpu == 9216);
  CHECK(a.use_kl_loss);
  CHECK(a.kl_loss_coef == 0.0);
  CHECK(a.kl_loss_type == "low_var_kl");
  CHECK(a.eps_clip == Approx(0.2));
  CHECK(a.eps_clip_high == Approx(0.28));
  CHECK(a.lr == Approx(1e-6));
  CHECK(a.lr_decay_style == "constant");
  CHECK(a.weight_decay == Approx(0.1));
  CHECK(a.adam_beta2 == Approx(0.98));
  CHECK(a.rollout_num_gpus_per_engine == 2);
  CHECK(a.sglang_mem_fraction_static == Approx(0.7));
  // Not given: still None before validation.
  CHECK_FALSE(a.offload_train.has_value());
  CHECK_FALSE(a.rollout_num_gpus.has_value());
  CHECK_FALSE(a.over_sampling_batch_size.has_value());

  validate_args(a);
  CHECK(a.offload_train == std::optional<bool>(true));    // colocate
  CHECK(a.offload_rollout == std::optional<bool>(true));  // colocate
  CHECK(a.rollout_num_gpus == 8);                          // colocate: actor GPUs
  CHECK(a.eps_clip_high == Approx(0.28));                  // given, kept
  CHECK(a.over_sampling_batch_size == 32);
  CHECK(a.log_probs_max_tokens_per_gpu == 9216);
  CHECK(a.global_batch_size == 256);
  CHECK(a.grpo_std_normalization);
  CHECK(a.eval_function_path == "slime.rollout.sglang_rollout.generate_rollout");
  CHECK(a.use_distributed_optimizer);
  CHECK(a.bf16);
  CHECK(a.sequence_parallel);                 // TP 2 keeps it
  CHECK(a.padded_vocab_size == 152064);       // 151936 padded to a multiple of 128 x TP 2
  // --load holds no checkpoint yet: start from --ref-load, weights only, at step 0 (slime).
  CHECK(a.load == ref);
  CHECK(a.finetune);
  CHECK(a.no_load_optim);
  CHECK(a.no_load_rng);
  CHECK(a.start_rollout_id == 0);
  CHECK_FALSE(use_critic(a));
}

TEST_CASE("defaults are slime's and Megatron's") {
  Args a;
  CHECK(a.actor_num_nodes == 1);
  CHECK(a.actor_num_gpus_per_node == 8);
  CHECK(a.rollout_num_gpus_per_engine == 1);
  CHECK(a.num_gpus_per_node == 8);
  CHECK(a.distributed_timeout_minutes == 10);
  CHECK(a.update_weight_transport == "nccl");
  CHECK(a.update_weight_buffer_size == 512ll * 1024 * 1024);
  CHECK(a.log_probs_chunk_size == -1);
  CHECK(a.rollout_function_path == "slime.rollout.sglang_rollout.generate_rollout");
  CHECK(a.rollout_temperature == 1.0);
  CHECK(a.rollout_top_p == 1.0);
  CHECK(a.rollout_top_k == -1);
  CHECK(a.rollout_seed == 42);
  CHECK(a.update_weights_interval == 1);
  CHECK(a.rollout_global_dataset);
  CHECK(a.apply_chat_template_kwargs == "{}");
  CHECK(a.input_key == "input");
  CHECK(a.metadata_key == "metadata");
  CHECK(a.tool_key == "tools");
  CHECK(a.n_samples_per_prompt == 1);
  CHECK(a.micro_batch_size == 1);
  CHECK(a.n_samples_per_eval_prompt == 1);
  CHECK(a.seed == 1234);
  CHECK(a.eps_clip == 0.2);
  CHECK_FALSE(a.eps_clip_high.has_value());
  CHECK(a.value_clip == 0.2);
  CHECK(a.kl_coef == 0.0);
  CHECK(a.loss_type == "policy_loss");
  CHECK(a.kl_loss_type == "k1");
  CHECK(a.advantage_estimator == "grpo");
  CHECK(a.compute_advantages_and_returns);
  CHECK(a.gamma == 1.0);
  CHECK(a.lambd == 1.0);
  CHECK(a.grpo_std_normalization);
  CHECK(a.rewards_normalization);
  CHECK(a.tis_clip == 2.0);
  CHECK(a.tis_clip_low == 0.0);
  CHECK(a.opsm_delta == 1e-4);
  CHECK(a.loss_mask_type == "qwen");
  CHECK(a.data_pad_size_multiplier == 128);
  CHECK(a.ci_train_rollout_logprob_abs_diff_threshold == 0.1);
  CHECK(a.make_vocab_size_divisible_by == 128);
  CHECK(a.seq_length == 4096);
  CHECK(a.tensor_model_parallel_size == 1);
  CHECK(a.optimizer == "adam");
  CHECK(a.lr == 1e-6);
  CHECK(a.min_lr == 0.0);
  CHECK(a.lr_decay_style == "linear");
  CHECK(a.adam_beta1 == 0.9);
  CHECK(a.adam_beta2 == 0.999);
  CHECK(a.adam_eps == 1e-8);
  CHECK(a.weight_decay == 0.01);
  CHECK(a.clip_grad == 1.0);
  CHECK(a.sglang_mem_fraction_static == 0.9);
  CHECK(a.sglang_server_concurrency == 512);
  CHECK(a.router_balance_abs_threshold == 10);
  CHECK(a.router_balance_rel_threshold == 1.2);
  // An empty command line gives exactly the defaults.
  CHECK(args_to_json(parse({})) == args_to_json(Args{}));
}

TEST_CASE("command-line syntax: =, lists, flags, --no- twins, disable flags, negative numbers") {
  Args a = parse({"--lr=3e-6", "--rollout-stop", "</answer>", "###", "-x", "--seed", "5", "--rollout-stop-token-ids",
                  "-1", "2", "--tis-clip-low", "-1", "--rollout-top-k", "-1", "--log-probs-chunk-size", "-5",
                  "--tis-clip=-0.5", "--disable-grpo-std-normalization", "--disable-rollout-global-dataset",
                  "--offload-train", "--no-offload-rollout", "--rollout-sample-hook-path", "a.so:f",
                  "--rollout-sample-hook-path", "b.so:g", "--freeze-params-name-list", "--swiglu"});
  CHECK(a.lr == Approx(3e-6));
  CHECK(a.rollout_stop == std::vector<std::string>{"</answer>", "###", "-x"});
  CHECK(a.seed == 5);
  CHECK(a.rollout_stop_token_ids == std::vector<int64_t>{-1, 2});
  CHECK(a.tis_clip_low == -1.0);
  CHECK(a.rollout_top_k == -1);
  CHECK(a.log_probs_chunk_size == -5);
  CHECK(a.tis_clip == -0.5);
  CHECK_FALSE(a.grpo_std_normalization);
  CHECK_FALSE(a.rollout_global_dataset);
  CHECK(a.offload_train == std::optional<bool>(true));
  CHECK(a.offload_rollout == std::optional<bool>(false));
  CHECK(a.rollout_sample_hook_path == std::vector<std::string>{"a.so:f", "b.so:g"});
  CHECK(a.freeze_params_name_list.empty());  // nargs='*' with no value
  CHECK(a.swiglu == std::optional<bool>(true));

  // The same option twice: the last wins; --x then --no-x likewise.
  Args b = parse({"--lr", "1e-5", "--lr", "2e-5", "--offload-train", "--no-offload-train", "--rollout-stop=only"});
  CHECK(b.lr == Approx(2e-5));
  CHECK(b.offload_train == std::optional<bool>(false));
  CHECK(b.rollout_stop == std::vector<std::string>{"only"});

  CHECK(parse({"--apply-chat-template-kwargs", "{\"enable_thinking\": false}"}).apply_chat_template_kwargs ==
        "{\"enable_thinking\": false}");
}

TEST_CASE("--help anywhere wins over everything else") {
  ParsedArgs p = parse_args({"--no-such-option", "-h"});
  CHECK(p.help_requested);
  CHECK(parse_args({"--lr", "1", "--help"}).help_requested);
  CHECK_FALSE(parse_args({"--lr", "1"}).help_requested);
}

TEST_CASE("command-line errors name the option") {
  CHECK(error_of([] { parse({"--rollout-batch-sise", "4"}); }) ==
        "unknown option --rollout-batch-sise (did you mean --rollout-batch-size?)");
  CHECK(error_of([] { parse({"--rollout_batch_size", "4"}); }) ==
        "unknown option --rollout_batch_size (did you mean --rollout-batch-size?)");
  CHECK(error_of([] { parse({"--eps-clip-hihg", "0.3"}); }) ==
        "unknown option --eps-clip-hihg (did you mean --eps-clip-high?)");
  CHECK(error_of([] { parse({"--completely-unrelated-thing"}); }) == "unknown option --completely-unrelated-thing");
  // Abbreviations (which argparse accepts) are refused, with the full name suggested.
  CHECK_THAT(error_of([] { parse({"--update-weight-buf", "1"}); }),
             Contains("did you mean --update-weight-buffer-size?"));

  std::string sglang = error_of([] { parse({"--sglang-attention-backend", "fa3"}); });
  CHECK_THAT(sglang, StartsWith("unknown option --sglang-attention-backend: the rollout engine has no such option"));
  CHECK_THAT(sglang, Contains("--sglang-mem-fraction-static"));
  CHECK_THAT(error_of([] { parse({"--sglang-mem-fraction", "0.5"}); }),
             Contains("(did you mean --sglang-mem-fraction-static?)"));
  CHECK_THAT(error_of([] { parse({"--sglang-tp-size", "2"}); }),
             Contains("unknown option --sglang-tp-size: the engine's tensor-parallel size is "
                      "--rollout-num-gpus-per-engine"));
  CHECK_THAT(error_of([] { parse({"--use-wandb"}); }), StartsWith("unknown option --use-wandb: W&B"));
  CHECK_THAT(error_of([] { parse({"--wandb-project", "x"}); }), StartsWith("unknown option --wandb-project: W&B"));
  CHECK_THAT(error_of([] { parse({"--attention-dropout", "0.0"}); }),
             StartsWith("unknown option --attention-dropout: slime-hpc has no dropout"));

  CHECK(error_of([] { parse({"--lr"}); }) == "--lr: missing value (expected a number)");
  CHECK(error_of([] { parse({"--lr", "--seed", "1"}); }) == "--lr: missing value (expected a number)");
  CHECK(error_of([] { parse({"--rollout-stop", "--seed", "1"}); }) ==
        "--rollout-stop: missing value (expected a list of strings)");
  CHECK(error_of([] { parse({"--lr", "abc"}); }) == "--lr: expected a number, got 'abc'");
  CHECK(error_of([] { parse({"--lr", "1e-6x"}); }) == "--lr: expected a number, got '1e-6x'");
  CHECK(error_of([] { parse({"--rollout-batch-size", "3.5"}); }) ==
        "--rollout-batch-size: expected an integer, got '3.5'");
  CHECK(error_of([] { parse({"--rollout-batch-size", "99999999999999999999"}); }) ==
        "--rollout-batch-size: integer out of range: '99999999999999999999'");
  CHECK(error_of([] { parse({"--rollout-stop-token-ids", "1", "x"}); }) ==
        "--rollout-stop-token-ids: expected an integer, got 'x'");
  CHECK(error_of([] { parse({"--kl-loss-type", "k4"}); }) ==
        "--kl-loss-type: expected one of k1|k2|k3|low_var_kl, got 'k4'");
  CHECK(error_of([] { parse({"--advantage-estimator=dapo"}); }) ==
        "--advantage-estimator: expected one of grpo|gspo|cispo|reinforce_plus_plus|reinforce_plus_plus_baseline|ppo, "
        "got 'dapo'");
  CHECK(error_of([] { parse({"-lr", "1e-6"}); }) == "unknown option -lr (options start with --; did you mean --lr?)");
  CHECK(error_of([] { parse({"--colocate=true"}); }) == "--colocate is a flag and takes no value, got 'true'");
  CHECK(error_of([] { parse({"--lr", "1e-5", "2e-5"}); }) ==
        "unexpected argument '2e-5': values must follow an option (options start with --)");
  CHECK_THAT(error_of([] { parse({"--apply-chat-template-kwargs", "{bad"}); }),
             StartsWith("--apply-chat-template-kwargs: expected a JSON object, got '{bad'"));
  CHECK(error_of([] { parse({"--apply-chat-template-kwargs", "[1]"}); }) ==
        "--apply-chat-template-kwargs: expected a JSON object, got '[1]'");
  CHECK(error_of([] { parse({"--config", "a.yaml", "--config=b.yaml"}); }) ==
        "--config given twice ('a.yaml' and 'b.yaml'): one config file is allowed");
  CHECK(error_of([] { parse({"--config"}); }) == "--config: missing value (a YAML file)");
}

TEST_CASE("YAML config: dashes and underscores, lists, bools, None; the command line overrides it") {
  std::string tmp = make_temp_dir();
  std::string path = tmp + "/run.yaml";
  write_file_atomic(path,
                    "# a slime-train config\n"
                    "rollout-batch-size: 16\n"
                    "n_samples_per_prompt: 4\n"
                    "rollout_stop: ['</answer>', '###']\n"
                    "rollout-stop-token-ids: [1, -2]\n"
                    "colocate: true\n"
                    "no-offload-rollout: true\n"
                    "disable_grpo_std_normalization: yes\n"
                    "rewards_normalization: false\n"  // a field name sets the field directly
                    "lr: 1e-5\n"
                    "eps-clip-high: 0.28\n"
                    "eval-prompt-data: [aime, /data/aime.jsonl]\n"
                    "rollout_sample_hook_path: [a.so:f]\n"
                    "rollout-sample-hook-path-unused: ~\n"
                    "hf_checkpoint: /models/qwen\n"
                    "kl-loss-type: k3\n"
                    "apply_chat_template_kwargs: '{\"enable_thinking\": true}'\n"
                    "tis-clip-low: -1\n");
  // One key too many: check the error first, then drop it.
  CHECK_THAT(error_of([&] { parse({"--config", path}); }),
             StartsWith(path + ": unknown option 'rollout-sample-hook-path-unused'"));
  std::string text = read_text_file(path);
  text.erase(text.find("rollout-sample-hook-path-unused: ~\n"), std::string("rollout-sample-hook-path-unused: ~\n").size());
  write_file_atomic(path, text);

  ParsedArgs p = parse_args({"--config", path, "--lr", "2e-5", "--rollout-sample-hook-path", "b.so:g",
                             "--rollout-sample-hook-path", "c.so:h"});
  REQUIRE(p.config_path == path);
  const Args& a = p.args;
  CHECK(a.rollout_batch_size == 16);
  CHECK(a.n_samples_per_prompt == 4);
  CHECK(a.rollout_stop == std::vector<std::string>{"</answer>", "###"});
  CHECK(a.rollout_stop_token_ids == std::vector<int64_t>{1, -2});
  CHECK(a.colocate);
  CHECK(a.offload_rollout == std::optional<bool>(false));
  CHECK_FALSE(a.grpo_std_normalization);
  CHECK_FALSE(a.rewards_normalization);
  CHECK(a.lr == Approx(2e-5));  // command line wins
  CHECK(a.eps_clip_high == Approx(0.28));
  CHECK(a.eval_prompt_data == std::vector<std::string>{"aime", "/data/aime.jsonl"});
  // A repeatable option given on the command line replaces the file's list.
  CHECK(a.rollout_sample_hook_path == std::vector<std::string>{"b.so:g", "c.so:h"});
  CHECK(a.hf_checkpoint == "/models/qwen");
  CHECK(a.kl_loss_type == "k3");
  CHECK(a.apply_chat_template_kwargs == "{\"enable_thinking\": true}");
  CHECK(a.tis_clip_low == -1.0);

  // --config after other options is read first all the same.
  CHECK(parse({"--lr", "3e-5", "--config=" + path}).lr == Approx(3e-5));

  // A file with only comments sets nothing.
  std::string empty = tmp + "/empty.yaml";
  write_file_atomic(empty, "# nothing\n");
  CHECK(args_to_json(parse({"--config", empty})) == args_to_json(Args{}));
}

TEST_CASE("YAML errors name the file and the key") {
  std::string tmp = make_temp_dir();
  auto yaml_error = [&](const std::string& body) {
    std::string path = tmp + "/bad.yaml";
    write_file_atomic(path, body);
    std::string message = error_of([&] { parse({"--config", path}); });
    CHECK_THAT(message, StartsWith(path + ": "));
    return message.substr(path.size() + 2);
  };
  CHECK(yaml_error("rollout_batch_sise: 4\n") == "unknown option 'rollout_batch_sise' (did you mean --rollout-batch-size?)");
  CHECK_THAT(yaml_error("use_wandb: true\n"), StartsWith("unknown option 'use_wandb': W&B"));
  CHECK(yaml_error("lr: abc\n") == "option 'lr': expected a number, got 'abc'");
  CHECK(yaml_error("lr: [1, 2]\n") == "option 'lr': expected a number, got a list");
  CHECK(yaml_error("rollout-batch-size: 2.5\n") == "option 'rollout-batch-size': expected an integer, got '2.5'");
  CHECK(yaml_error("n-samples-per-prompt: ~\n") == "option 'n-samples-per-prompt': expected an integer, got null");
  CHECK(yaml_error("colocate: maybe\n") == "option 'colocate': expected true or false, got 'maybe'");
  CHECK(yaml_error("rollout_stop: {a: 1}\n") == "option 'rollout_stop': expected a list of strings, got a mapping");
  CHECK(yaml_error("rollout-stop-token-ids: [1, x]\n") ==
        "option 'rollout-stop-token-ids': expected an integer, got 'x'");
  CHECK(yaml_error("kl_loss_type: k4\n") == "option 'kl_loss_type': expected one of k1|k2|k3|low_var_kl, got 'k4'");
  CHECK_THAT(yaml_error("lr: [1, 2\n"), StartsWith("malformed YAML: "));
  CHECK_THAT(yaml_error("- lr\n- 1\n"), StartsWith("expected a mapping of option: value at the top level"));

  std::string missing = tmp + "/does_not_exist.yaml";
  CHECK_THAT(error_of([&] { parse({"--config", missing}); }), StartsWith(missing + ": cannot open"));
}

TEST_CASE("validate_args derives slime's defaults") {
  Args a = parse_and_validate(minimal());
  CHECK(a.eps_clip_high == Approx(0.2));
  CHECK(a.over_sampling_batch_size == 4);
  CHECK(a.global_batch_size == 4);  // one optimizer step per rollout
  CHECK_FALSE(a.grpo_std_normalization);  // n_samples_per_prompt == 1
  CHECK(a.rollout_num_gpus == 1);
  CHECK(a.offload_train == std::optional<bool>(true));
  CHECK(a.eval_reward_key == std::nullopt);
  CHECK_FALSE(a.sequence_parallel);
  CHECK_FALSE(a.use_tensorboard);

  Args steps = parse_and_validate(minimal({"--n-samples-per-prompt", "8", "--num-steps-per-rollout", "2"}));
  CHECK(steps.global_batch_size == 16);
  CHECK(steps.grpo_std_normalization);

  Args keep = parse_and_validate(minimal({"--no-offload-train", "--reward-key", "acc"}));
  CHECK(keep.offload_train == std::optional<bool>(false));  // an explicit choice survives --colocate
  CHECK(keep.offload_rollout == std::optional<bool>(true));
  CHECK(keep.eval_reward_key == "acc");

  Args disaggregated = parse_and_validate({"--rollout-batch-size", "4", "--num-rollout", "1", "--rollout-num-gpus",
                                           "4", "--rollout-num-gpus-per-engine", "2", "--offload"});
  CHECK(disaggregated.offload_train == std::optional<bool>(true));
  CHECK(disaggregated.offload_rollout == std::optional<bool>(true));
  Args plain = parse_and_validate({"--rollout-batch-size", "4", "--num-rollout", "1", "--rollout-num-gpus", "2"});
  CHECK(plain.offload_train == std::optional<bool>(false));
  CHECK(plain.offload_rollout == std::optional<bool>(false));

  Args ppo = parse_and_validate({"--rollout-batch-size", "4", "--num-rollout", "1", "--rollout-num-gpus", "2",
                                 "--advantage-estimator", "ppo"});
  CHECK(use_critic(ppo));
  CHECK(ppo.offload_train == std::optional<bool>(true));

  Args lengths = parse_and_validate(minimal({"--rollout-max-context-len", "4096", "--max-tokens-per-gpu", "8192"}));
  CHECK(lengths.rollout_max_prompt_len == 4095);
  CHECK(lengths.eval_max_context_len == 4096);
  CHECK(lengths.log_probs_max_tokens_per_gpu == 8192);

  Args eval = parse_and_validate(minimal({"--eval-interval", "5", "--eval-prompt-data", "/data/aime.jsonl"}));
  CHECK(eval.eval_prompt_data == std::vector<std::string>{"aime", "/data/aime.jsonl"});

  Args debug = parse_and_validate(minimal({"--load-debug-rollout-data", "/tmp/r_{rollout_id}.pt"}));
  CHECK(debug.debug_train_only);
  Args rollout_only = parse_and_validate(minimal({"--debug-rollout-only"}));
  CHECK_FALSE(rollout_only.colocate);
  CHECK(rollout_only.offload_train == std::optional<bool>(false));
  CHECK(rollout_only.rollout_num_gpus == 1);

  Args cpu = parse_and_validate(minimal({"--backend", "cpu"}));
  CHECK(cpu.update_weight_transport == "mpi");
  Args fp16 = parse_and_validate(minimal({"--fp16"}));
  CHECK_FALSE(fp16.bf16);

  Args tb = parse_and_validate(minimal({"--tensorboard-dir", "/tb"}));
  CHECK(tb.use_tensorboard);
  CHECK(tb.tb_dir == "/tb");
  Args tb_project = parse_and_validate(minimal({"--use-tensorboard", "--tb-project-name", "/tb2"}));
  CHECK(tb_project.tb_dir == "/tb2");
}

TEST_CASE("validate_args resolves --load the way slime does") {
  std::string tmp = make_temp_dir();
  std::string ckpt = tmp + "/ckpt";
  REQUIRE(mkdir(ckpt.c_str(), 0755) == 0);
  write_file_atomic(ckpt + "/latest_checkpointed_iteration.txt", "7\n");
  Args resume = parse_and_validate(minimal({"--load", ckpt, "--ref-load", "/ref"}));
  CHECK(resume.load == ckpt);
  CHECK_FALSE(resume.finetune);
  CHECK_FALSE(resume.no_load_optim);
  CHECK_FALSE(resume.start_rollout_id.has_value());  // from the checkpoint

  std::string hf = tmp + "/hf";
  REQUIRE(mkdir(hf.c_str(), 0755) == 0);
  write_file_atomic(hf + "/config.json", "{}");
  Args from_hf = parse_and_validate(minimal({"--load", hf, "--ref-load", "/ref"}));
  CHECK(from_hf.load == hf);
  CHECK(from_hf.finetune);
  CHECK(from_hf.start_rollout_id == 0);

  Args fresh = parse_and_validate(minimal({"--load", tmp + "/empty", "--ref-load", "/ref", "--ref-ckpt-step", "3"}));
  CHECK(fresh.load == "/ref");
  CHECK(fresh.ckpt_step == 3);
  CHECK(fresh.no_load_rng);
}

TEST_CASE("validation errors name the options involved") {
  std::string tmp = make_temp_dir();
  CHECK(validation_error({"--num-rollout", "1", "--colocate"}) ==
        "--rollout-batch-size is required (prompts per rollout step)");
  CHECK_THAT(validation_error(minimal({"--rollout-temperature", "0"})), StartsWith("--rollout-temperature must be > 0"));
  CHECK(validation_error(minimal({"--over-sampling-batch-size", "2"})) ==
        "--over-sampling-batch-size (2) must be >= --rollout-batch-size (4)");
  CHECK(validation_error(minimal({"--kl-coef", "0.1", "--kl-loss-coef", "0.2", "--ref-load", tmp})) ==
        "--kl-coef (0.1) and --kl-loss-coef (0.2) cannot both be non-zero");
  CHECK(validation_error(minimal({"--use-kl-loss"})) ==
        "--use-kl-loss needs --ref-load (the reference model checkpoint)");
  CHECK(validation_error(minimal({"--kl-coef", "0.01", "--ref-load", tmp + "/nope"})) ==
        "--ref-load '" + tmp + "/nope' does not exist (needed by --kl-coef)");
  CHECK(validation_error(minimal({"--advantage-estimator", "reinforce_plus_plus"})) ==
        "--advantage-estimator reinforce_plus_plus needs --normalize-advantages");
  CHECK(validation_error(minimal({"--use-rollout-logprobs", "--use-tis"})) ==
        "--use-rollout-logprobs and --use-tis are exclusive");
  CHECK(validation_error(minimal({"--use-dynamic-batch-size"})) ==
        "--use-dynamic-batch-size needs --max-tokens-per-gpu");
  CHECK(validation_error({"--rollout-batch-size", "4", "--colocate"}) ==
        "one of --num-rollout and --num-epoch is required");
  CHECK_THAT(validation_error({"--rollout-batch-size", "4", "--colocate", "--num-epoch", "1",
                               "--disable-rollout-global-dataset"}),
             StartsWith("--num-epoch needs the built-in dataset"));
  CHECK(validation_error(minimal({"--save-interval", "5"})) == "--save-interval needs --save");
  CHECK(validation_error(minimal({"--rollout-max-context-len", "100", "--rollout-max-prompt-len", "100"})) ==
        "--rollout-max-prompt-len (100) must be <= --rollout-max-context-len - 1 (99) so that at least one token is "
        "generated");
  CHECK(validation_error(minimal({"--num-steps-per-rollout", "3"})) ==
        "--num-steps-per-rollout (3) must divide rollout-batch-size x n-samples-per-prompt (4)");
  CHECK_THAT(validation_error(minimal({"--num-steps-per-rollout", "2", "--global-batch-size", "4"})),
             StartsWith("--global-batch-size (4) disagrees with --num-steps-per-rollout (2)"));
  CHECK(validation_error(minimal({"--global-batch-size", "3"})) ==
        "--global-batch-size (3) must divide rollout-batch-size x n-samples-per-prompt (4)");
  CHECK(validation_error(minimal({"--eval-interval", "5"})) ==
        "--eval-interval needs evaluation data: --eval-prompt-data or --eval-config");
  CHECK(validation_error(minimal({"--eval-prompt-data", "a", "b", "c"})) ==
        "--eval-prompt-data: expected name/path pairs, got 3 values");
  CHECK(validation_error(minimal({"--pipeline-model-parallel-size", "2"})) ==
        "--pipeline-model-parallel-size 2 is not supported yet (only 1)");
  CHECK(validation_error(minimal({"--context-parallel-size", "2"})) ==
        "--context-parallel-size 2 is not supported yet (only 1)");
  CHECK(validation_error(minimal({"--tensor-model-parallel-size", "0"})) ==
        "--tensor-model-parallel-size must be >= 1, got 0");
  CHECK_THAT(validation_error(minimal({"--tensor-model-parallel-size", "2"})),
             StartsWith("--tensor-model-parallel-size (2) must divide the actor's GPUs"));
  CHECK(validation_error(minimal({"--bf16", "--fp16"})) == "--bf16 and --fp16 are exclusive");
  CHECK(validation_error(minimal({"--get-mismatch-metrics"})) ==
        "--get-mismatch-metrics needs --custom-tis-function-path");
  CHECK_THAT(validation_error(minimal({"--only-train-params-name-list", "a", "--freeze-params-name-list", "b"})),
             StartsWith("--only-train-params-name-list and --freeze-params-name-list are exclusive"));
  CHECK(validation_error(minimal({"--debug-rollout-only", "--debug-train-only"})) ==
        "--debug-rollout-only and --debug-train-only cannot both be set");
  CHECK(validation_error(minimal({"--recompute-granularity", "full"})) ==
        "--recompute-granularity full needs --recompute-method and --recompute-num-layers");
  CHECK(validation_error(minimal({"--recompute-method", "block"})) ==
        "--recompute-method needs --recompute-granularity full");
  CHECK(validation_error(minimal({"--lr-warmup-fraction", "0.1", "--lr-warmup-iters", "10"})) ==
        "--lr-warmup-fraction and --lr-warmup-iters are exclusive");
  CHECK(validation_error(minimal({"--eps-clip-c", "0.5"})) ==
        "--eps-clip-c (dual-clip constant) must be > 1, got 0.5");
  CHECK(validation_error(minimal({"--loss-type", "custom_loss"})) ==
        "--loss-type custom_loss needs --custom-loss-function-path");
  CHECK(validation_error(minimal({"--rollout-num-gpus", "3", "--rollout-num-gpus-per-engine", "2"})) ==
        "--rollout-num-gpus (3) must be a multiple of --rollout-num-gpus-per-engine (2)");
  CHECK_THAT(validation_error({"--rollout-batch-size", "4", "--num-rollout", "1"}),
             StartsWith("--rollout-num-gpus is required unless --colocate or --debug-train-only is set"));
  CHECK(validation_error(minimal({"--save-debug-train-data", "x.pt", "--save-debug-rollout-data", "x.pt"})) ==
        "--save-debug-train-data and --save-debug-rollout-data must be different paths");
  CHECK(validation_error(minimal({"--tb-dir", "/a", "--tensorboard-dir", "/b"})) ==
        "--tb-dir ('/a') and --tensorboard-dir ('/b') disagree; give one");
  CHECK(validation_error(minimal({"--keep-last-n", "0", "--save", "/s"})) == "--keep-last-n must be >= 1, got 0");
  CHECK(validation_error(minimal({"--exit-interval", "0", "--save", "/s"})) == "--exit-interval must be >= 1, got 0");
  CHECK(validation_error(minimal({"--exit-duration-in-mins", "-1", "--save", "/s"})) ==
        "--exit-duration-in-mins must be > 0, got -1");
  CHECK(validation_error(minimal({"--exit-signal-handler"})) ==
        "--exit-signal-handler, --exit-duration-in-mins and --exit-interval save a checkpoint before stopping: they "
        "need --save");
  CHECK(validation_error(minimal({"--sglang-mem-fraction-static", "1.5"})) ==
        "--sglang-mem-fraction-static must be in (0, 1], got 1.5");
  // --num-rollout 0 (evaluation only) is valid.
  CHECK(validation_error({"--rollout-batch-size", "4", "--num-rollout", "0", "--colocate",
                          "--actor-num-gpus-per-node", "1"}) == "");
}

TEST_CASE("help lists every option with its default; Markdown likewise") {
  const auto& table = args_detail::option_table();
  REQUIRE(table.size() >= 200);
  std::string help = format_help();
  std::string markdown = format_help_markdown();
  size_t defaults_in_help = 0;
  for (size_t at = help.find("[default:"); at != std::string::npos; at = help.find("[default:", at + 1))
    ++defaults_in_help;
  CHECK(defaults_in_help == table.size());
  size_t rows = 0;
  for (size_t at = markdown.find("\n| `--"); at != std::string::npos; at = markdown.find("\n| `--", at + 1)) ++rows;
  CHECK(rows == table.size());
  for (const auto& spec : table) {
    INFO(spec.flag);
    CHECK_THAT(help, Contains("  " + spec.flag));
    CHECK_THAT(markdown, Contains("| `" + spec.flag + "`"));
  }
  for (const auto& group : args_detail::option_groups()) {
    CHECK_THAT(help, Contains("\n" + group + ":\n"));
    CHECK_THAT(markdown, Contains("\n## " + group + "\n"));
  }
  CHECK(args_detail::option_groups().size() == 18);
  CHECK_THAT(help, Contains("  --rollout-batch-size INT\n"));
  CHECK_THAT(help, Contains("[default: required]"));
  CHECK_THAT(help, Contains("  --offload-train, --no-offload-train\n"));
  CHECK_THAT(help, Contains("  --kl-loss-type {k1,k2,k3,low_var_kl}\n"));
  CHECK_THAT(help, Contains("  --rollout-stop-token-ids INT [INT ...]\n"));
  CHECK_THAT(markdown, Contains("| `--lr` | FLOAT | `1e-06` |"));
  CHECK_THAT(markdown, Contains("| `--update-weight-buffer-size` | INT | `536870912` |"));
  CHECK_THAT(markdown, Contains("| `--disable-grpo-std-normalization` | flag | `off (grpo_std_normalization = True)` |"));
  CHECK_THAT(markdown, Contains("| `--num-layers` | INT | `None (from config.json)` |"));
  CHECK_THAT(markdown, Contains("{k1,k2,k3,low_var_kl}"));
  CHECK_THAT(markdown, Contains("&lt;save or run dir&gt;"));  // no raw HTML-looking text in cells
}

TEST_CASE("args_to_json / args_from_json round trip; unknown keys and wrong types are errors") {
  std::string tmp = make_temp_dir();
  Args a = parse_and_validate(minimal({"--rollout-stop", "a", "b", "--rollout-stop-token-ids", "-1", "7",
                                       "--eps-clip-high", "0.28", "--lr", "3.3e-7", "--no-offload-rollout",
                                       "--disable-rewards-normalization", "--prompt-data", "/d.jsonl",
                                       "--rollout-sample-hook-path", "x.so:y", "--swiglu", "--rotary-base", "1e6"}));
  json j = args_to_json(a);
  CHECK(j.size() == args_detail::option_table().size());
  CHECK(j["lr"] == 3.3e-7);
  CHECK(j["label_key"].is_null());
  CHECK(j["rollout_stop_token_ids"] == json::array({-1, 7}));
  Args back = args_from_json(j);
  CHECK(args_to_json(back) == j);
  CHECK(back.lr == a.lr);
  CHECK(back.offload_rollout == std::optional<bool>(false));
  CHECK_FALSE(back.rewards_normalization);
  CHECK(back.rollout_stop == a.rollout_stop);
  CHECK(back.swiglu == std::optional<bool>(true));
  CHECK_FALSE(back.qk_layernorm.has_value());
  // Through text, as a checkpoint stores it, and as a YAML config (JSON is YAML).
  CHECK(args_to_json(args_from_json(json::parse(j.dump()))) == j);
  std::string as_yaml = tmp + "/args.yaml";
  write_file_atomic(as_yaml, j.dump(2));
  CHECK(args_to_json(parse({"--config", as_yaml})) == j);

  CHECK(error_of([] { args_from_json(json{{"rollout_batch_sise", 4}}); }) ==
        "args JSON: unknown option 'rollout_batch_sise' (did you mean --rollout-batch-size?)");
  CHECK(error_of([] { args_from_json(json{{"lr", "fast"}}); }) ==
        "args JSON: option 'lr': expected a number, got string \"fast\"");
  CHECK(error_of([] { args_from_json(json{{"seed", 1.5}}); }) ==
        "args JSON: option 'seed': expected an integer, got number 1.5");
  CHECK(error_of([] { args_from_json(json{{"seed", nullptr}}); }) ==
        "args JSON: option 'seed': expected an integer, got null");
  CHECK(error_of([] { args_from_json(json{{"kl_loss_type", "k9"}}); }) ==
        "args JSON: option 'kl_loss_type': expected one of k1|k2|k3|low_var_kl, got 'k9'");
  CHECK(error_of([] { args_from_json(json::array()); }) == "args JSON: expected an object of option: value, got array");
}

TEST_CASE("format_args_summary lists every option, sorted, Megatron style") {
  Args a = parse({"--rollout-stop", "a", "b", "--lr", "2e-6"});
  std::string summary = format_args_summary(a);
  CHECK_THAT(summary, StartsWith("------------------------ arguments ------------------------\n"));
  CHECK_THAT(summary, Contains("-------------------- end of arguments ---------------------\n"));
  CHECK_THAT(summary, Contains("\n  lr " + std::string(46, '.') + " 2e-06\n"));
  CHECK_THAT(summary, Contains("\n  rollout_stop " + std::string(36, '.') + " ['a', 'b']\n"));
  CHECK_THAT(summary, Contains("\n  colocate " + std::string(40, '.') + " False\n"));
  CHECK_THAT(summary, Contains("\n  label_key " + std::string(39, '.') + " None\n"));
  CHECK_THAT(summary, Contains("\n  rollout_temperature " + std::string(29, '.') + " 1.0\n"));
  CHECK(summary.find("  actor_num_gpus_per_node ") < summary.find("  weight_decay "));
  size_t lines = 0;
  std::istringstream in(summary);
  for (std::string line; std::getline(in, line);) ++lines;
  CHECK(lines == args_detail::option_table().size() + 2);
}
