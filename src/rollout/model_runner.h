// Runs one scheduled step through the model: packs the chunks into a paged batch, runs the decoder over the KV cache,
// and returns the logits of the chunks that sample a token (CPU backend; the CUDA runner replaces this class).
#pragma once

#include <vector>

#include "model/decoder.h"
#include "rollout/scheduler.h"

namespace slime::rollout {

class ModelRunner {
 public:
  ModelRunner(model::Decoder& model, model::KvCache& cache) : model_(model), cache_(cache) {}
  // Logits [sampling chunks, padded vocab], one row per chunk with `samples`, in chunk order.
  Tensor run(const std::vector<ScheduledChunk>& chunks);
  model::Decoder& model() { return model_; }

 private:
  model::Decoder& model_;
  model::KvCache& cache_;
};

}  // namespace slime::rollout
