// A rollout engine over several ranks: tensor parallelism inside an engine (--rollout-num-gpus-per-engine > 1,
// SGLang's tp_size). The engine's ranks each hold a shard of the model (model::Decoder with the engine's TP group:
// Megatron's layout, the KV cache of their own KV heads); one of them, the engine's TP rank 0, runs the Engine
// (scheduler, block manager, requests) and the others follow it step by step:
//
//   TP rank 0: Engine -> TensorParallelRunner::run(chunks)      TP rank r > 0: follow_engine(runner, tp)
//              broadcast the step (kRun + its chunks)   ---->       rebuild the chunks, runner.run(chunks)
//              inner runner.run(chunks)                             (the same collective forward)
//   end of a rollout: release_followers()  -- kRelease -->         follow_engine returns
//
// The inner runners are the ordinary CPU or GPU runners on a sharded model: their forward is collective over the TP
// group (the row-parallel all-reduces), and they gather the vocab-parallel logits before sampling, so every rank
// samples the same tokens from the same Philox draws; rank 0's are the engine's. A step travels as the chunks'
// tokens, positions, block tables and sampling parameters: a few hundred bytes per sequence.
//
// Followers wait for a step with a nonblocking broadcast, polled with short sleeps (as serve_engine does), so a
// follower that shares cores with its leader does not starve it. Between rollouts both sides follow the program
// order of the loop (weight sync writes every rank's shard; each rank refreshes its own runner).
#pragma once

#include <mpi.h>

#include <memory>
#include <vector>

#include "comm/parallel.h"
#include "rollout/model_runner.h"

namespace slime::rollout {

class TensorParallelRunner : public ModelRunner {
 public:
  // On TP rank 0 of `tp` (several ranks), around the runner of this rank's shard.
  TensorParallelRunner(std::unique_ptr<ModelRunner> inner, const comm::Group& tp);
  ~TensorParallelRunner() override;

  std::vector<SampledToken> run(const std::vector<ScheduledChunk>& chunks) override;
  void reload_weights() override { inner_->reload_weights(); }
  // This rank's shard's GPU buffers (weight sync on the GPU writes every rank's own, model::DeviceWeights::layout).
  const model::DeviceWeights* device_weights_for_sync() override { return inner_->device_weights_for_sync(); }
  // The followers' follow_engine returns (the engine is idle: end of a rollout or an evaluation). The next run()
  // needs them following again.
  void release_followers() override;

 private:
  std::unique_ptr<ModelRunner> inner_;
  comm::Group tp_;
};

// On TP rank r > 0 of an engine: runs the steps TP rank 0 broadcasts on `runner` (this rank's shard) until rank 0
// calls release_followers(). Returns the number of steps run.
int64_t follow_engine(ModelRunner& runner, const comm::Group& tp);

// On TP rank 0: the followers' follow_engine returns (what TensorParallelRunner::release_followers does, for a rank
// that has not built its engine). Nothing for an engine of one rank.
void release_engine_followers(const comm::Group& tp);

}  // namespace slime::rollout
