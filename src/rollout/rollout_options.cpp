#include "rollout/rollout_options.h"

#include <algorithm>

#include "core/error.h"
#include "rollout/engine_options.h"

namespace slime::rollout {

RolloutConfig rollout_config_from_args(const Args& args) {
  RolloutConfig c;
  SLIME_CHECK(args.rollout_batch_size.has_value(), "--rollout-batch-size is required");
  c.rollout_batch_size = *args.rollout_batch_size;
  c.n_samples_per_prompt = args.n_samples_per_prompt;
  c.over_sampling_batch_size = args.over_sampling_batch_size.value_or(c.rollout_batch_size);
  c.sampling = sampling_params_from_args(args, /*evaluation=*/false);
  c.eval_sampling = sampling_params_from_args(args, /*evaluation=*/true);
  c.rollout_seed = static_cast<uint64_t>(args.rollout_seed);
  c.partial_rollout = args.partial_rollout;
  c.mask_offpolicy_in_partial_rollout = args.mask_offpolicy_in_partial_rollout;
  c.group_rm = args.group_rm;
  c.worker_threads = std::clamp<int64_t>(args.sglang_server_concurrency, 1, 64);
  c.skip_special_tokens = args.rollout_skip_special_tokens;
  return c;
}

reward::RewardOptions reward_options_from_args(const Args& args, bool evaluation) {
  reward::RewardOptions o;
  o.rm_type = args.rm_type;
  o.rm_url = args.rm_url;
  o.custom_rm_path = args.custom_rm_path;
  o.reward_key = evaluation && args.eval_reward_key ? args.eval_reward_key : args.reward_key;
  o.random_seed = static_cast<uint64_t>(args.rollout_seed);
  return o;
}

data::PromptDatasetOptions dataset_options_from_args(const Args& args, const tokenizer::Tokenizer& tokenizer,
                                                     const tokenizer::ChatTemplate* chat_template) {
  data::PromptDatasetOptions o;
  o.input_key = args.input_key;
  o.label_key = args.label_key;
  o.metadata_key = args.metadata_key;
  o.tool_key = args.tool_key;
  o.apply_chat_template = args.apply_chat_template;
  o.apply_chat_template_kwargs = nlohmann::ordered_json::parse(args.apply_chat_template_kwargs);
  o.max_prompt_len = args.rollout_max_prompt_len;
  o.tokenizer = &tokenizer;
  o.chat_template = chat_template;
  SLIME_CHECK(!o.apply_chat_template || chat_template != nullptr,
              "--apply-chat-template: the model has no chat template (tokenizer_config.json 'chat_template')");
  return o;
}

data::DataSourceOptions data_source_options_from_args(const Args& args) {
  data::DataSourceOptions o;
  o.n_samples_per_prompt = args.n_samples_per_prompt;
  o.rollout_shuffle = args.rollout_shuffle;
  o.rollout_seed = args.rollout_seed;
  return o;
}

}  // namespace slime::rollout
