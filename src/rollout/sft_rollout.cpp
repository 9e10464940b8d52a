// slime's SFT rollout: conversations from the data source become training samples through the loss mask generator
// (see sft_rollout.h).
#include "rollout/sft_rollout.h"

#include <atomic>

#include "core/error.h"
#include "core/io.h"
#include "core/log.h"

namespace slime::rollout {

void fill_sft_sample(data::Sample& sample, const SftMaskGenerator& generator, const std::string& where) {
  SLIME_CHECK(sample.prompt.is_array(), where, ": the SFT rollout needs the prompt as a list of messages, got ",
              json_type_name(sample.prompt),
              " (load the dataset without --apply-chat-template; --input-key names the messages field)");
  nlohmann::ordered_json tools = nullptr;
  if (sample.metadata.is_object() && sample.metadata.contains("tools")) {
    tools = sample.metadata["tools"];
  } else {
    tools = sample.tools;
  }
  TokensWithLossMask tm;
  try {
    tm = generator.get_loss_mask(sample.prompt, tools);
  } catch (const Error& e) {
    throw Error(cat(where, ": ", e.what()));
  }
  const int64_t response_length = response_length_from_loss_mask(tm.loss_mask);
  sample.tokens = std::move(tm.token_ids);
  sample.response_length = response_length;
  // loss_mask[-response_length:]; with no trained token slime's slice would keep the whole mask, here the response
  // is empty and so is its mask.
  sample.loss_mask.assign(tm.loss_mask.end() - response_length, tm.loss_mask.end());
  sample.rollout_logprobs.clear();
  sample.reward = 0.0;
  sample.status = data::SampleStatus::Completed;
}

std::vector<data::SampleGroup> sft_rollout(data::DataSource& source, int64_t rollout_batch_size,
                                           const SftMaskGenerator& generator) {
  SLIME_CHECK(rollout_batch_size > 0, "--rollout-batch-size ", rollout_batch_size, ": expected a positive number");
  static std::atomic<bool> example_printed{false};
  std::vector<data::SampleGroup> groups = source.get_samples(rollout_batch_size);
  for (data::SampleGroup& group : groups) {
    for (data::Sample& sample : group) {
      fill_sft_sample(sample, generator, cat("SFT rollout: sample index ", sample.index, " (group ",
                                             sample.group_index, ")"));
      if (!example_printed.exchange(true)) {
        SLIME_INFO0("sft_rollout example: ", sample.tokens.size(), " tokens, response_length ",
                    sample.response_length, ", loss tokens ", sample.effective_response_length(), ", messages ",
                    sample.prompt.dump());
      }
    }
  }
  return groups;
}

}  // namespace slime::rollout
