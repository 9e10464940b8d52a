// slime's SFT rollout (slime/rollout/sft_rollout.py, --rollout-function-path slime.rollout.sft_rollout.
// generate_rollout): no generation. Each prompt of the dataset is a whole conversation; the loss mask generator
// turns it into tokens and a loss mask, and the sample is ready for training.
//
// Per sample (as slime): tokens = the conversation's token ids; response_length = tokens from the first 1 of the
// mask to the end (so every earlier turn is prompt); loss_mask = the last response_length mask entries (0 on the
// user/tool turns in between); reward 0; status Completed. Tools come from metadata["tools"] (slime), else from the
// sample's tools field.
#pragma once

#include <cstdint>
#include <vector>

#include "data/data_source.h"
#include "rollout/loss_mask.h"

namespace slime::rollout {

// Fills one sample from its prompt (a message list). `where` names the sample in errors.
void fill_sft_sample(data::Sample& sample, const SftMaskGenerator& generator, const std::string& where);

// Takes rollout_batch_size groups from `source` and fills every sample of each. A prompt that is not a message list
// is an error naming the sample's index.
std::vector<data::SampleGroup> sft_rollout(data::DataSource& source, int64_t rollout_batch_size,
                                           const SftMaskGenerator& generator);

}  // namespace slime::rollout
