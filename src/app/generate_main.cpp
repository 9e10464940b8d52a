// slime-generate: generation and scoring without training, on the CPU rollout engine. Evaluation of a checkpoint,
// debugging of prompts, rewards and plug-ins.
//
//   slime-generate --hf-checkpoint DIR [--load CKPT_ROOT] --prompt-data prompts.jsonl --output out.jsonl
//                  [--n-samples-per-prompt N] [--rm-type math] [--apply-chat-template] [any slime-train option]
//   slime-generate --hf-checkpoint DIR --prompt "What is 2 + 3?" [--system TEXT] [--label 5] [--show-logprobs]
//
// Weights: the newest iteration of --load (or --ckpt-step), else --ref-load, else --hf-checkpoint (a HF directory
// or an HDF5 checkpoint root for either). --hf-checkpoint also gives the tokenizer (tokenizer.json) and chat
// template. Every slime-train option applies with its meaning there: --rollout-* sampling (--eval for --eval-*),
// --sglang-* engine sizing, --input-key/--label-key/--metadata-key/--tool-key, --rollout-max-prompt-len,
// --rm-type/--rm-url/--custom-rm-path/--reward-key/--group-rm, --custom-generate-function-path.
//
// The output has one JSON line per sample (data::Sample::to_json: slime's Sample.to_dict keys: prompt, response,
// tokens, response_length, rollout_log_probs, loss_mask, reward, status, ...), groups in prompt order. Rewards: as
// the reward options say; with none of --rm-type / --custom-rm-path, samples whose metadata names an rm_type are
// scored and the others get reward 0.
#include <Kokkos_Core.hpp>
#include <mpi.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "comm/parallel.h"
#include "core/args.h"
#include "core/error.h"
#include "core/io.h"
#include "core/timer.h"
#include "data/data_source.h"
#include "data/dataset.h"
#include "model/decoder.h"
#include "reward/reward.h"
#include "rollout/engine.h"
#include "rollout/engine_options.h"
#include "rollout/generate_rollout.h"
#include "rollout/rollout_options.h"
#include "rollout/router.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"
#include "train/trainer.h"

using namespace slime;

namespace {

// slime-generate's own options; everything else is a slime-train option.
struct GenerateOptions {
  std::optional<std::string> output;  // --output FILE.jsonl
  std::optional<std::string> prompt;  // --prompt TEXT: one prompt from the command line
  std::optional<std::string> system;  // --system TEXT (with --prompt)
  std::optional<std::string> label;   // --label TEXT (with --prompt)
  bool raw_prompt = false;            // --raw-prompt: no chat template for --prompt
  bool show_logprobs = false;         // --show-logprobs
  bool evaluation = false;            // --eval: the --eval-* sampling options and --eval-reward-key
  bool help = false;
};

constexpr const char* kUsage = R"(slime-generate: generate (and score) completions on the CPU rollout engine, without training.

  slime-generate --hf-checkpoint DIR [--load CKPT] --prompt-data prompts.jsonl --output out.jsonl [options]
  slime-generate --hf-checkpoint DIR --prompt TEXT [--system TEXT] [--label TEXT] [--show-logprobs]

Own options:
  --output FILE.jsonl   one JSON line per sample (slime's Sample keys); default with --prompt-data: stdout
  --prompt TEXT         a single prompt (chat template applied unless --raw-prompt)
  --system TEXT         system message for --prompt
  --label TEXT          reference answer for --prompt (for --rm-type)
  --raw-prompt          encode --prompt as is
  --show-logprobs       print every generated token with its log-prob (--prompt)
  --eval                sample with the --eval-* options, score with --eval-reward-key

Every slime-train option applies (see slime-train --help), notably:
  --hf-checkpoint, --load, --ckpt-step, --ref-load          model, tokenizer and weights
  --n-samples-per-prompt, --rollout-temperature, --rollout-top-p, --rollout-top-k, --rollout-max-response-len,
  --rollout-stop, --rollout-stop-token-ids, --rollout-seed  sampling
  --sglang-max-total-tokens, --sglang-mem-fraction-static, --sglang-max-running-requests, --sglang-page-size
  --input-key, --label-key, --metadata-key, --apply-chat-template, --rollout-max-prompt-len   prompts
  --rm-type, --rm-url, --custom-rm-path, --reward-key, --group-rm                             rewards
  --custom-generate-function-path lib.so:symbol                                              multi-turn / tools
)";

std::vector<std::string> take_own_options(int argc, char** argv, GenerateOptions& own) {
  std::vector<std::string> rest;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&](std::optional<std::string>& into) {
      SLIME_CHECK(i + 1 < argc, a, " needs a value");
      into = argv[++i];
    };
    if (a == "--output") value(own.output);
    else if (a == "--prompt") value(own.prompt);
    else if (a == "--system") value(own.system);
    else if (a == "--label") value(own.label);
    else if (a == "--raw-prompt") own.raw_prompt = true;
    else if (a == "--show-logprobs") own.show_logprobs = true;
    else if (a == "--eval") own.evaluation = true;
    else if (a == "--help" || a == "-h") own.help = true;
    else rest.push_back(a);
  }
  return rest;
}

// Scores samples whose metadata names an rm_type; the others get 0 (no reward option was given).
class MetadataOnlyReward : public reward::RewardModel {
 public:
  explicit MetadataOnlyReward(const reward::RewardOptions& options) : inner_(reward::make_reward_model(options)) {}
  reward::RewardValue score(const reward::RewardInput& input) override {
    if (input.metadata.is_object() && input.metadata.contains("rm_type")) return inner_->score(input);
    return {0.0, nullptr};
  }

 private:
  std::unique_ptr<reward::RewardModel> inner_;
};

void print_single(const data::Sample& s, const tokenizer::Tokenizer& tok, bool show_logprobs) {
  std::printf("--- sample %lld (%s, %lld tokens, reward %g) ---\n%s\n", static_cast<long long>(s.index),
              data::status_name(s.status), static_cast<long long>(s.response_length), s.reward, s.response.c_str());
  if (!show_logprobs) return;
  const int64_t prompt_len = s.prompt_length();
  for (int64_t t = 0; t < s.response_length; ++t) {
    const int32_t id = s.tokens[static_cast<size_t>(prompt_len + t)];
    std::printf("  %4lld  id %6d  logprob %9.4f  mask %d  %s\n", static_cast<long long>(t), id,
                s.rollout_logprobs[static_cast<size_t>(t)], s.loss_mask[static_cast<size_t>(t)],
                json(tok.decode({id})).dump().c_str());
  }
}

int run(int argc, char** argv) {
  GenerateOptions own;
  const std::vector<std::string> rest = take_own_options(argc, argv, own);
  if (own.help) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  ParsedArgs parsed = parse_args(rest);
  Args& args = parsed.args;
  SLIME_CHECK(own.prompt.has_value() != args.prompt_data.has_value(),
              "give exactly one of --prompt TEXT and --prompt-data FILE.jsonl (see --help)");
  SLIME_CHECK(args.hf_checkpoint, "--hf-checkpoint DIR is required (the tokenizer and model config)");

  Stopwatch load_watch;
  model::ModelConfig config = train::resolve_model_config(args, 1);
  model::Decoder decoder(config);
  std::optional<int64_t> step;
  const std::string source = train::weights_source(args, step);
  train::load_model_weights(source, step, decoder, comm::ParallelGroups::single());
  const tokenizer::Tokenizer tok = tokenizer::Tokenizer::from_file(path_join(*args.hf_checkpoint, "tokenizer.json"));
  std::optional<tokenizer::ChatTemplate> chat;
  const std::string tokenizer_config = path_join(*args.hf_checkpoint, "tokenizer_config.json");
  if (path_exists(tokenizer_config)) chat = tokenizer::ChatTemplate::from_tokenizer_config(tokenizer_config);
  std::fprintf(stderr, "slime-generate: %s (%s, %.1fM parameters), weights from %s, loaded in %.2f s\n",
               args.hf_checkpoint->c_str(), config.architecture.c_str(), config.num_parameters() / 1e6,
               source.c_str(), load_watch.seconds());

  // Prompt groups.
  std::shared_ptr<data::PromptDataset> dataset;
  if (own.prompt) {
    data::Sample s;
    if (own.raw_prompt) {
      s.prompt = *own.prompt;
    } else {
      SLIME_CHECK(chat, tokenizer_config, ": no chat template for --prompt (use --raw-prompt)");
      nlohmann::ordered_json messages = nlohmann::ordered_json::array();
      if (own.system) messages.push_back({{"role", "system"}, {"content", *own.system}});
      messages.push_back({{"role", "user"}, {"content", *own.prompt}});
      s.prompt = chat->apply(messages, /*add_generation_prompt=*/true);
    }
    s.tokens = tok.encode(s.prompt.get<std::string>(), /*add_special_tokens=*/false);
    if (own.label) s.label = *own.label;
    dataset = std::make_shared<data::PromptDataset>(data::PromptDataset::from_samples({s}, "--prompt"));
  } else {
    dataset = std::make_shared<data::PromptDataset>(data::PromptDataset::load(
        *args.prompt_data, rollout::dataset_options_from_args(args, tok, chat ? &*chat : nullptr)));
  }
  data::DataSourceOptions source_options = rollout::data_source_options_from_args(args);
  source_options.rollout_shuffle = false;  // prompt order
  data::DataSource prompts(dataset, source_options);
  std::vector<data::SampleGroup> groups = prompts.get_samples(dataset->size());

  // Engine, rewards, generation.
  rollout::Engine engine(decoder, rollout::engine_config_from_args(
                                      args, config, 1, rollout::eos_token_ids_of_model(config, args.hf_checkpoint)),
                         &tok);
  rollout::Router router({&engine});
  const reward::RewardOptions reward_options = rollout::reward_options_from_args(args, own.evaluation);
  std::unique_ptr<reward::RewardModel> rm = reward_options.rm_type || reward_options.custom_rm_path
                                                ? reward::make_reward_model(reward_options)
                                                : std::make_unique<MetadataOnlyReward>(reward_options);
  if (!args.rollout_batch_size) args.rollout_batch_size = 1;  // not used by generate_groups
  rollout::RolloutGenerator generator(router, tok, *rm, rollout::rollout_config_from_args(args));
  if (args.custom_generate_function_path)
    generator.set_generate_plugin(rollout::GeneratePlugin::load(*args.custom_generate_function_path));

  Stopwatch watch;
  groups = generator.generate_groups(std::move(groups), 0, own.evaluation);
  const double seconds = watch.seconds();

  int64_t samples = 0, tokens = 0, truncated = 0;
  double reward_sum = 0;
  std::ofstream file;
  if (own.output) {
    file.open(*own.output);
    SLIME_CHECK(file.good(), "--output: cannot write '", *own.output, "'");
  }
  for (const data::SampleGroup& group : groups)
    for (const data::Sample& s : group) {
      ++samples;
      tokens += s.response_length;
      truncated += s.status == data::SampleStatus::Truncated;
      reward_sum += s.reward;
      if (own.output)
        file << s.to_json().dump() << '\n';
      else if (own.prompt)
        print_single(s, tok, own.show_logprobs);
      else
        std::printf("%s\n", s.to_json().dump().c_str());
    }
  if (own.output) {
    file.close();
    SLIME_CHECK(!file.fail(), "--output: writing '", *own.output, "' failed");
  }
  const rollout::EngineStats& stats = engine.stats();
  std::fprintf(stderr,
               "slime-generate: %lld samples (%lld prompts x %lld), %lld response tokens in %.2f s (%.1f tokens/s), "
               "mean reward %.4f, truncated %.1f%%, prefix-cache hits %lld tokens%s%s\n",
               static_cast<long long>(samples), static_cast<long long>(groups.size()),
               static_cast<long long>(args.n_samples_per_prompt), static_cast<long long>(tokens), seconds,
               tokens / std::max(seconds, 1e-9), reward_sum / std::max<int64_t>(samples, 1),
               100.0 * truncated / std::max<int64_t>(samples, 1), static_cast<long long>(stats.cached_tokens),
               own.output ? ", written to " : "", own.output ? own.output->c_str() : "");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);  // HDF5 checkpoints are read through parallel HDF5 (a single rank here)
  int code = 0;
  try {
    Kokkos::ScopeGuard kokkos;  // no argv: Kokkos would answer --help itself
    code = run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "slime-generate: error: %s\n", e.what());
    code = 2;
  }
  MPI_Finalize();
  return code;
}
