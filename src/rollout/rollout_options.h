// slime-train's options mapped onto the rollout side's configuration structs (the one place that knows both):
//   rollout_config_from_args        --rollout-batch-size, --n-samples-per-prompt, --over-sampling-batch-size,
//                                   --rollout-*/--eval-* sampling, --rollout-seed, --partial-rollout, --group-rm, ...
//   reward_options_from_args        --rm-type, --rm-url, --custom-rm-path, --reward-key / --eval-reward-key,
//                                   --rollout-seed (the `random` reward)
//   dataset_options_from_args       --input-key, --label-key, --metadata-key, --tool-key, --apply-chat-template,
//                                   --apply-chat-template-kwargs, --rollout-max-prompt-len
//   data_source_options_from_args   --n-samples-per-prompt, --rollout-shuffle, --rollout-seed
#pragma once

#include "core/args.h"
#include "data/data_source.h"
#include "data/dataset.h"
#include "reward/reward.h"
#include "rollout/generate_rollout.h"

namespace slime::rollout {

RolloutConfig rollout_config_from_args(const Args& args);

reward::RewardOptions reward_options_from_args(const Args& args, bool evaluation = false);

// The tokenizer (and chat template, with --apply-chat-template) must outlive the load.
data::PromptDatasetOptions dataset_options_from_args(const Args& args, const tokenizer::Tokenizer& tokenizer,
                                                     const tokenizer::ChatTemplate* chat_template);

data::DataSourceOptions data_source_options_from_args(const Args& args);

}  // namespace slime::rollout
