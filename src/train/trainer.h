// The trainer: slime's train_actor. One object per trainer rank, all ranks of the trainer pool calling the same
// methods with the same rollout (collective over the pool). The actor's forward, backward and optimizer run on the
// CPU backend, or with --backend cuda on the GPU (train/gpu_actor.h); the critic runs on the CPU.
//
// A rollout's training (train_rollout) follows slime (slime_features.md §1.8):
//   1. reference log-probs (weights swapped to the reference copy) when a KL term needs them,
//   2. old log-probs with the current weights (unless --use-rollout-logprobs),
//   3. reward post-processing (group normalisation) and advantages/returns on the whole rollout,
//   4. the data-parallel schedule (steps of --global-batch-size rollouts, micro-batches per DP rank), and for each
//      step: forward + loss + backward per micro-batch, then one optimizer step (grad clip, AdamW, LR schedule).
// Every rank receives the whole rollout; DP rank r computes the log-probs of and trains on the samples the schedule
// gives it, and per-token values computed by one rank reach the others by an all-reduce.
//
// PPO (--advantage-estimator ppo) adds slime's critic: the same transformer with a value head (hidden -> 1), its own
// distributed optimizer and LR schedule. Its values enter GAE; it trains on the value loss (--value-clip) before the
// actor in every step, and alone for the first --num-critic-only-steps rollouts. It is saved under <save>/critic.
//
// Initial weights follow slime's resume rules (§5.5): a --load directory with a checkpoint resumes from it (model,
// optimizer unless --no-load-optim, LR schedule; --finetune loads weights only and restarts at 0); otherwise the
// weights come from --ref-load (an HDF5 checkpoint root or a HF directory) or --hf-checkpoint.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ckpt/checkpoint.h"
#include "comm/parallel.h"
#include "core/args.h"
#include "core/io.h"
#include "model/decoder.h"
#include "train/advantages.h"
#include "train/distributed_optimizer.h"
#include "train/dp_schedule.h"
#include "train/gpu_actor.h"
#include "train/loss.h"
#include "train/lr_scheduler.h"
#include "train/optimizer.h"

namespace slime::train {

// One training sample as the rollout side delivers it (slime's train data keys).
struct TrainSample {
  std::vector<int64_t> tokens;           // prompt + response
  int64_t response_length = 0;           // the last response_length tokens are the response
  std::vector<float> loss_mask;          // [response_length]; empty = all ones
  float reward = 0;                      // raw reward
  std::vector<float> rollout_logprobs;   // [response_length] the engine's log-probs, or empty
  int64_t rollout_id = -1;               // fan-out siblings share one; -1 = a rollout of its own
};

using Metrics = std::map<std::string, double>;

struct RolloutTrainResult {
  Metrics rollout;             // rollout/... means over the rollout (log_probs, ref_log_probs, advantages, ...)
  std::vector<Metrics> steps;  // per optimizer step: train/loss, train/pg_loss, train/grad_norm, train/lr, ...
};

class Trainer {
 public:
  // Builds the model (tensor parallel over groups.tp), the distributed optimizer and the LR schedule from the
  // options, and loads the initial weights. Collective over groups.pool.
  Trainer(const Args& args, const comm::ParallelGroups& groups);

  // Collective. Trains on one rollout; returns the metrics (identical on every rank).
  RolloutTrainResult train_rollout(int64_t rollout_id, const std::vector<TrainSample>& samples);

  // Collective. The log-probability under the current weights of every response token of the rollout, samples back
  // to back (the trainer's "old log-probs"; also the trainer side of train/rollout mismatch checks).
  std::vector<float> response_logprobs(const std::vector<TrainSample>& samples);

  // Collective. The gradients of the first optimizer step of this rollout, without stepping: they stay in
  // model().params() (this rank's part, before the data-parallel reduction). Returns that step's metrics
  // (train/loss etc., reduced over DP). Tests use it for finite-difference checks of the whole loss.
  Metrics compute_gradients(const std::vector<TrainSample>& samples);

  // Collective. Writes iteration `rollout_id` under --save (with --keep-last-n, --no-save-optim). `extra` goes into
  // the checkpoint's trainer state (e.g. the dataset position).
  void save_checkpoint(int64_t rollout_id, const json& extra = json::object());

  // The rollout to start from: the loaded checkpoint's iteration + 1, --start-rollout-id, or 0.
  int64_t start_rollout_id() const { return start_rollout_id_; }
  // What save_checkpoint's `extra` held in the loaded checkpoint (empty when starting afresh).
  const json& loaded_extra() const { return loaded_extra_; }
  int64_t consumed_samples() const { return consumed_samples_; }

  // The actor's weights in host memory, current: with --backend cuda the GPU's are copied down first when an
  // optimizer step changed them. model() lets the caller write them (the GPU copy is refreshed before its next
  // use); weights() is for reading only (weight sync, checks) and costs no upload afterwards.
  model::Decoder& model();
  const model::Decoder& weights();
  // With --backend cuda: the actor's weights as GPU buffers (weight sync on the GPU reads them); nullopt on the CPU.
  std::optional<model::DeviceWeights> device_weights();
  model::Decoder* critic() { return critic_.get(); }
  const model::ModelConfig& config() const { return model_->config(); }
  const LrScheduler& lr_scheduler() const { return *scheduler_; }
  const Optimizer& optimizer() const { return *optimizer_; }

 private:
  struct Packed;       // a micro-batch packed for the model, with where each sample's response sits
  struct RolloutData;  // a rollout prepared for training: schedule, masks, old/ref log-probs, advantages
  Packed pack(const std::vector<TrainSample>& samples, const std::vector<int64_t>& indices) const;
  // Steps 1-3 of train_rollout (see the top of this file).
  RolloutData prepare(const std::vector<TrainSample>& samples, Metrics* rollout_metrics);
  // Forward + loss + backward over this rank's micro-batches of one step; metrics reduced over DP.
  Metrics accumulate_step_gradients(const RolloutData& data, const StepSchedule& step);
  // Per-token log-probs (and entropy) of the response tokens of `indices` with the current weights, written into
  // the rollout-wide vectors at the samples' offsets.
  void forward_only(const std::vector<TrainSample>& samples, const std::vector<std::vector<int64_t>>& micro_batches,
                    const std::vector<int64_t>& offsets, std::vector<float>* logprobs, std::vector<float>* entropy);
  // The actor's forward and backward: on the GPU with --backend cuda (GpuActor), else the CPU decoder.
  void actor_forward(const model::PackedBatch& batch, const std::vector<int64_t>& targets, float temperature,
                     Tensor* logprobs, Tensor* entropy);
  void actor_backward(const Tensor& dlogprobs, const Tensor& dentropy);
  // The two copies of the actor's weights with --backend cuda (see gpu_actor.h): after writing the host copy, and
  // before reading it.
  void actor_weights_changed() {
    if (gpu_) gpu_->host_weights_changed();
  }
  void host_weights_current() {
    if (gpu_) gpu_->pull_weights();
  }
  void load_initial_weights();
  void load_reference_weights();
  void load_weights(const std::string& source, std::optional<int64_t> step, model::Decoder& model,
                    const std::vector<std::string>& skip = {});
  std::optional<ckpt::CheckpointState> resume(const std::string& root, model::Decoder& model,
                                              Optimizer& optimizer, LrScheduler& scheduler);
  void build_critic(const LrScheduleOptions& lr);
  Metrics accumulate_critic_gradients(const RolloutData& data, const StepSchedule& step);

  Args args_;
  comm::ParallelGroups groups_;
  std::unique_ptr<model::Decoder> model_;
  std::unique_ptr<GpuActor> gpu_;  // --backend cuda
  std::unique_ptr<Optimizer> optimizer_;  // on the GPU with --backend cuda
  std::unique_ptr<LrScheduler> scheduler_;
  LossConfig loss_config_;
  AdvantageConfig advantage_config_;
  RewardPostProcessConfig reward_config_;
  ScheduleOptions schedule_options_;
  Tensor reference_values_;  // flat copy of the reference model's weights (KL), or undefined
  std::unique_ptr<model::Decoder> critic_;  // PPO only
  std::unique_ptr<Optimizer> critic_optimizer_;
  std::unique_ptr<LrScheduler> critic_scheduler_;
  int64_t start_rollout_id_ = 0;
  int64_t consumed_samples_ = 0;
  json loaded_extra_ = json::object();
};

// slime's should_run_periodic_action (slime/utils/misc.py): true after rollout `rollout_id` when
// (rollout_id + 1) % interval == 0, at the end of an epoch (rollouts_per_epoch given), and, for saving
// (`last_rollout_too`), after the run's last rollout. A missing interval never fires.
bool periodic_action_due(std::optional<int64_t> interval, int64_t rollout_id, int64_t num_rollout,
                         std::optional<int64_t> rollouts_per_epoch, bool last_rollout_too);

// The model config a run uses: --hf-checkpoint's config.json, else the one stored in the --load / --ref-load
// checkpoint; the vocabulary padded as Megatron does (or --padded-vocab-size / the checkpoint's padding).
model::ModelConfig resolve_model_config(const Args& args, int tensor_parallel_size);

// Where the weights of a job that does not train come from, in slime-train's order of precedence: the newest (or
// --ckpt-step) checkpoint of --load, else --ref-load (step --ref-ckpt-step), else --hf-checkpoint. Sets `step`.
std::string weights_source(const Args& args, std::optional<int64_t>& step);

// Weights only (no optimizer), from a HF model directory or a checkpoint root (its tracker's iteration, or `step`);
// collective over groups.pool for a checkpoint. Parameters named in `skip` are left as they are.
void load_model_weights(const std::string& source, std::optional<int64_t> step, model::Decoder& model,
                        const comm::ParallelGroups& groups, const std::vector<std::string>& skip = {});

}  // namespace slime::train
