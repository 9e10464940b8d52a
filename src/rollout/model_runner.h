// Runs one scheduled step through the model and samples the next token of every chunk that reaches the end of its
// sequence. The engine (engine.h) schedules; a runner owns the KV cache and the model's execution on one backend:
//
//   CpuModelRunner   host fp32: model::Decoder::forward_paged over a host KvCache, then model::sample_token.
//   CudaModelRunner  the GPU (cuda_model_runner.h): bf16 weights, paged KV cache and sampling on the device, CUDA
//                    graphs for decode steps.
//
// Both sample with SGLang's semantics (model::sample_token is the reference): the draw of the i-th response token of
// a request is element i of its Philox stream (seed, 0), so batching does not change what a request samples.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "model/decoder.h"
#include "model/device_weights.h"
#include "model/generate_reference.h"
#include "rollout/scheduler.h"

namespace slime::rollout {

struct EngineConfig;

struct SampledToken {
  int64_t token = 0;
  float logprob = 0;  // log softmax(logits / temperature)[token], before top-k/top-p
};

class ModelRunner {
 public:
  virtual ~ModelRunner() = default;
  // Runs `chunks` (their tokens' K/V go into the cache) and returns one sampled token per chunk with `samples`, in
  // chunk order.
  virtual std::vector<SampledToken> run(const std::vector<ScheduledChunk>& chunks) = 0;
  // The host model's weights changed (weight sync): device copies are refreshed. Cached K/V are stale afterwards;
  // the engine drops its prefix cache at the same time.
  virtual void reload_weights() {}
  // The GPU buffers the kernels read, for weight sync straight into them (sync/device_weight_sync.h), once no step
  // is using them; null on a host runner. Weights written there bypass the host model.
  virtual const model::DeviceWeights* device_weights_for_sync() { return nullptr; }
  // The engine goes idle (end of a rollout or an evaluation): a tensor-parallel engine's other ranks stop following
  // it (tensor_parallel_runner.h). Nothing for a runner of one rank.
  virtual void release_followers() {}
};

// The sampling parameters of a sequence's next token and its random draw (element num_generated() of the request's
// Philox stream).
model::SamplingParams next_token_sampling(const Sequence& seq, float* uniform);

class CpuModelRunner : public ModelRunner {
 public:
  CpuModelRunner(model::Decoder& model, const EngineConfig& config);
  // Collective over the model's TP group: the forward's all-reduces, then the logits' vocab slices all-gathered, so
  // every rank samples from the whole vocabulary.
  std::vector<SampledToken> run(const std::vector<ScheduledChunk>& chunks) override;

 private:
  model::Decoder& model_;
  model::KvCache cache_;
  std::vector<float> gathered_;  // TP: the ranks' logit slices [TP, rows, V / TP]
};

// The runner of `config.backend` for this rank's shard of `model` (CUDA: an error naming the cause when this build or
// machine has no GPU). Resolves config.max_context_len (0: the model's max_position_embeddings); the CUDA runner
// sets config.num_blocks when it is 0 (KV cache sized from the device's free memory). With a tensor-parallel model this is the runner of one rank; the Engine wraps it on TP rank 0
// (TensorParallelRunner) and the other ranks run it under follow_engine.
std::unique_ptr<ModelRunner> make_model_runner(model::Decoder& model, EngineConfig& config);

}  // namespace slime::rollout
