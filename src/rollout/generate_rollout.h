// The rollout function (slime's default, slime/rollout/sglang_rollout.py::generate_rollout_async): turns prompt
// groups from the data source into generated, scored groups for training.
//
//   refill   while fewer than --rollout-batch-size groups are counted, take --over-sampling-batch-size groups
//            from the DataSource (its buffer first) and start every sample of them;
//   generate each sample through the router (one request continuing sample.tokens), or through the custom generate
//            plug-in (--custom-generate-function-path) on a worker thread, whose engine calls are routed the same way;
//   reward   each finished sample is scored on a worker thread (--rm-type / --custom-rm-path), or the whole group
//            once all its samples are done (--group-rm);
//   filter   a finished group goes through the dynamic sampling filter (DAPO: drop zero-std groups); a dropped group
//            stops counting toward the batch, which triggers the next refill;
//   abort    once --rollout-batch-size groups are kept, every outstanding request is aborted; with --partial-rollout
//            the groups still in flight (half generated, or done but surplus) go back to the DataSource's buffer and
//            continue in the next rollout (aborted samples resume from their tokens with max_new_tokens reduced by
//            what they have; --mask-offpolicy-in-partial-rollout zeroes the loss mask of the older tokens);
//            without it they are discarded, as in slime.
//
// Threads: the calling thread owns the router and the engines and steps them; worker threads run plug-in samples
// and reward calls and hand their results back through a queue, so only the calling thread touches the samples
// of the rollout state. Group reward normalisation (GRPO) happens on the training side
// (train/advantages.h: post_process_rewards), as in slime's RolloutManager.
//
// Determinism: sample i of a rollout samples with the Philox stream seeded by (--rollout-seed, sample.index,
// response length so far), so a rollout's tokens do not depend on batching, threads or the engine count.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "data/data_source.h"
#include "reward/reward.h"
#include "rollout/dynamic_filter.h"
#include "rollout/generate_plugin_host.h"
#include "rollout/router.h"
#include "rollout/sampling_params.h"
#include "tokenizer/tokenizer.h"

namespace slime::rollout {

struct RolloutConfig {
  int64_t rollout_batch_size = 1;        // --rollout-batch-size: groups kept per rollout
  int64_t n_samples_per_prompt = 1;      // --n-samples-per-prompt
  int64_t over_sampling_batch_size = 0;  // --over-sampling-batch-size: groups per refill; 0 = rollout_batch_size
  SamplingParams sampling;               // --rollout-*; the seed is set per sample
  SamplingParams eval_sampling;          // --eval-* falling back to --rollout-*
  uint64_t rollout_seed = 42;            // --rollout-seed
  bool partial_rollout = false;          // --partial-rollout
  bool mask_offpolicy_in_partial_rollout = false;
  bool group_rm = false;                 // --group-rm
  std::optional<std::string> reward_key; // --reward-key: the scalar of a dict reward
  int64_t worker_threads = 8;            // plug-in samples and reward calls running at once
  bool skip_special_tokens = false;      // --rollout-skip-special-tokens: response text without special tokens
};

struct RolloutOutput {
  std::vector<data::SampleGroup> groups;      // rollout_batch_size kept groups, sorted by sample index
  std::vector<data::SampleGroup> all_groups;  // every group that finished, kept or dropped, sorted
  std::map<std::string, double> metrics;      // rollout/dynamic_filter/drop_<reason>, rollout/*, perf/*
  int64_t groups_to_buffer = 0;               // groups handed back to the data source (partial rollout)
};

class RolloutGenerator {
 public:
  RolloutGenerator(Router& router, const tokenizer::Tokenizer& tokenizer, reward::RewardModel& reward,
                   RolloutConfig config);
  ~RolloutGenerator();
  RolloutGenerator(const RolloutGenerator&) = delete;
  RolloutGenerator& operator=(const RolloutGenerator&) = delete;

  void set_generate_plugin(std::optional<GeneratePlugin> plugin);  // --custom-generate-function-path
  void set_dynamic_filter(DynamicFilter filter);                   // --dynamic-sampling-filter-path

  // One training rollout: exactly rollout_batch_size groups of n_samples_per_prompt samples. Errors (a sample the
  // engine refuses, a failing plug-in or reward) abort everything in flight first, then name the sample.
  RolloutOutput generate_rollout(int64_t rollout_id, data::DataSource& source);

  // Generates and scores the given groups to the end, without filter or abort (evaluation, slime-generate).
  std::vector<data::SampleGroup> generate_groups(std::vector<data::SampleGroup> groups, int64_t rollout_id,
                                                 bool evaluation);

  const RolloutConfig& config() const { return config_; }

 private:
  struct State;
  Router& router_;
  const tokenizer::Tokenizer& tokenizer_;
  reward::RewardModel& reward_;
  RolloutConfig config_;
  std::optional<GeneratePlugin> plugin_;
  DynamicFilter filter_;
};

}  // namespace slime::rollout
