#include "app/rl_job.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "app/debug_rollout.h"
#include "app/early_exit.h"
#include "app/pools.h"
#include "buffer/balance.h"
#include "buffer/rma_ring.h"
#include "buffer/sample_codec.h"
#include "comm/mpi_utils.h"
#include "comm/parallel.h"
#include "core/error.h"
#include "core/io.h"
#include "core/log.h"
#include "core/timer.h"
#include "data/data_source.h"
#include "data/dataset.h"
#include "obs/tensorboard.h"
#include "obs/trace.h"
#include "reward/reward.h"
#include "rollout/engine.h"
#include "rollout/engine_options.h"
#include "rollout/generate_plugin_host.h"
#include "rollout/generate_rollout.h"
#include "rollout/remote_engine.h"
#include "rollout/tensor_parallel_runner.h"
#include "rollout/rollout_options.h"
#include "rollout/router.h"
#include "rollout/sft_rollout.h"
#include "sync/weight_sync.h"
#ifdef SLIME_HAVE_CUDA
#include "sync/device_weight_sync.h"
#endif
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"
#include "train/trainer.h"

namespace slime::app {
namespace {

using ordered_json = nlohmann::ordered_json;

constexpr const char* kDefaultRolloutFunction = "slime.rollout.sglang_rollout.generate_rollout";
constexpr const char* kSftRolloutFunction = "slime.rollout.sft_rollout.generate_rollout";
constexpr int32_t kControlRolloutEnd = 1;  // end of a rollout's samples for one trainer rank
constexpr int32_t kControlEval = 2;        // evaluation results, to trainer rank 0

bool is_sft(const Args& args) { return args.rollout_function_path == kSftRolloutFunction; }

// What both pools agree on before the first step.
struct Plan {
  int64_t start = 0;
  int64_t num_rollout = 0;
  std::optional<int64_t> rollouts_per_epoch;
};

bool eval_due(const Args& args, const Plan& plan, int64_t rollout_id) {
  return train::periodic_action_due(args.eval_interval, rollout_id, plan.num_rollout, plan.rollouts_per_epoch,
                                    /*last_rollout_too=*/false);
}
bool eval_before_train(const Args& args, const Plan& plan) {
  return args.eval_interval && plan.start == 0 && !args.skip_eval_before_train;
}
bool weights_due(const Args& args, int64_t rollout_id) {
  return !args.train_async || (rollout_id + 1) % args.update_weights_interval == 0;
}

// Bytes of each trainer rank's ring: room for two rollouts' shares at the longest context the options allow
// (colocated and engine-less runs put a whole rollout before the trainer takes any), within [16 MiB, 1 GiB].
int64_t ring_capacity(const Args& args, const model::ModelConfig& config, int consumers) {
  const int64_t samples = *args.rollout_batch_size * args.n_samples_per_prompt;
  int64_t context = config.max_position_embeddings;
  if (args.rollout_max_context_len) context = *args.rollout_max_context_len;
  else if (args.rollout_max_prompt_len && args.rollout_max_response_len)
    context = *args.rollout_max_prompt_len + *args.rollout_max_response_len;
  const int64_t per_sample = 256 + context * 13;  // int32 token + float mask + float log-prob, and a header
  const int64_t bytes = 2 * (samples + consumers - 1) / consumers * per_sample + (1 << 20);
  return std::clamp<int64_t>(bytes, 16 << 20, int64_t{1} << 30);
}

// The scalar reward slime trains on, and the training fields of a finished sample (slime's
// _convert_samples_to_train_data). A removed sample keeps its place in the group but adds nothing to the loss.
train::TrainSample train_sample_of(const data::Sample& s) {
  train::TrainSample t;
  t.tokens.assign(s.tokens.begin(), s.tokens.end());
  t.response_length = s.response_length;
  if (!s.loss_mask.empty()) t.loss_mask.assign(s.loss_mask.begin(), s.loss_mask.end());
  if (s.remove_sample) t.loss_mask.assign(static_cast<size_t>(s.response_length), 0.0f);
  t.reward = static_cast<float>(s.reward);
  t.rollout_logprobs = s.rollout_logprobs;
  t.rollout_id = s.rollout_id;
  return t;
}

int64_t weight_version_of(const data::Sample& s, int64_t current) {
  if (s.weight_versions.empty()) return current;
  return std::stoll(s.weight_versions.front());  // the oldest policy that wrote part of the response
}

// ------------------------------------------------------------------------------------------------------------
// The rollout side: an engine on every rollout rank; on the leader, the data source, router and rollout function.
class RolloutSide {
 public:
  RolloutSide(const Args& args, const PoolLayout& layout, const PoolComms& comms, int world_rank,
              const model::ModelConfig& config)
      : args_(args), layout_(layout), comms_(comms), config_(config) {
    leader_ = world_rank == layout.rollout_leader();
    SLIME_CHECK(args.hf_checkpoint, "slime-train needs --hf-checkpoint (the tokenizer and chat template)");
    tokenizer_ = std::make_unique<tokenizer::Tokenizer>(
        tokenizer::Tokenizer::from_file(path_join(*args.hf_checkpoint, "tokenizer.json")));
    const std::string tokenizer_config = path_join(*args.hf_checkpoint, "tokenizer_config.json");
    if (path_exists(tokenizer_config))
      chat_ = std::make_unique<tokenizer::ChatTemplate>(tokenizer::ChatTemplate::from_tokenizer_config(tokenizer_config));
    if (layout.is_rollout(world_rank)) {
      engine_tp_ = comm::Group{comms.engine, comm::rank(comms.engine), comm::size(comms.engine)};
      if (engine_tp_.single()) engine_tp_ = comm::Group{};
      engine_model_ = std::make_unique<model::Decoder>(config, engine_tp_);
      engine_config_ = rollout::engine_config_from_args(
          args, config, layout.engine_size, rollout::eos_token_ids_of_model(config, args.hf_checkpoint));
    }
    if (leader_) build_leader();
  }

  bool leader() const { return leader_; }
  model::Decoder* engine_model() { return engine_model_.get(); }

  // --debug-rollout-only: no trainer sends weights, so each engine reads them (train::weights_source's order).
  void load_engine_weights() {
    if (!engine_model_) return;
    std::optional<int64_t> step;
    const std::string source = train::weights_source(args_, step);
    comm::ParallelGroups engine_groups = comm::ParallelGroups::single();
    engine_groups.pool = engine_groups.tp = engine_tp_;  // each engine reads its own shards
    train::load_model_weights(source, step, *engine_model_, engine_groups);
    SLIME_INFO0("--debug-rollout-only: engines use the weights of ", source);
    weights_updated(0, false);
  }
  data::DataSource& source() { return *source_; }

  // The leader: the run's length from the dataset (--num-epoch) or --num-rollout.
  void fill_plan(Plan& plan) const {
    if (source_->size() > 0) plan.rollouts_per_epoch = source_->num_rollout_per_epoch(*args_.rollout_batch_size);
    if (args_.num_rollout) {
      plan.num_rollout = *args_.num_rollout;
    } else {
      SLIME_CHECK(plan.rollouts_per_epoch && *plan.rollouts_per_epoch > 0, "--num-epoch: the prompt data (",
                  source_->size(), " prompts) holds less than one --rollout-batch-size (", *args_.rollout_batch_size,
                  ")");
      plan.num_rollout = *args_.num_epoch * *plan.rollouts_per_epoch;
    }
  }

  // Rollout `rollout_id` into the data buffer (leader), or serving the leader's requests (other rollout ranks).
  // Returns the leader's rollout seconds.
  void produce(int64_t rollout_id, buffer::RmaRing& ring, int consumers) {
    if (!leader_) {
      serve();
      return;
    }
    Stopwatch watch;
    if (args_.load_debug_rollout_data) {  // replay a saved rollout instead of generating one
      const std::string path = debug_rollout_path(*args_.load_debug_rollout_data, rollout_id);
      DebugRollout saved = load_debug_rollout(path, rollout_id, args_.load_debug_rollout_data_subsample);
      SLIME_INFO("rollout ", rollout_id, ": ", saved.samples.size(), " samples replayed from ", path);
      saved.metrics["perf/rollout_time"] = watch.seconds();
      stop_remote_engines();  // the other rollout ranks served nothing this time
      obs::TraceSpan span(obs::process_trace(), "buffer", "put");
      put_rollout(rollout_id, saved.samples, saved.metrics, ring, consumers);
      return;
    }
    std::vector<data::SampleGroup> groups;
    std::map<std::string, double> metrics;
    obs::TraceSpan generate_span(obs::process_trace(), "rollout", "generate");
    if (is_sft(args_)) {
      groups = rollout::sft_rollout(*source_, *args_.rollout_batch_size, *mask_generator_);
      double tokens = 0;
      int64_t n = 0;
      for (const auto& g : groups)
        for (const auto& s : g) tokens += static_cast<double>(s.response_length), ++n;
      metrics["rollout/response_len/mean"] = tokens / std::max<int64_t>(n, 1);
    } else {
      start_engine();
      rollout::RolloutOutput out = generator_->generate_rollout(rollout_id, *source_);
      groups = std::move(out.groups);
      metrics = std::move(out.metrics);
    }
    stop_remote_engines();
    generate_span.end();
    metrics["perf/rollout_time"] = watch.seconds();

    std::vector<buffer::BufferedSample> samples;
    double min_version = 1e300;
    for (const data::SampleGroup& g : groups)
      for (const data::Sample& s : g) {
        buffer::BufferedSample b;
        b.sample = train_sample_of(s);
        b.index = s.index;
        b.group_index = s.group_index;
        b.weight_version = weight_version_of(s, weight_version_);
        b.status = static_cast<int32_t>(s.status);
        min_version = std::min(min_version, static_cast<double>(b.weight_version));
        samples.push_back(std::move(b));
      }
    metrics["rollout/weight_version_min"] = samples.empty() ? 0.0 : min_version;
    if (args_.save_debug_rollout_data) {
      const std::string path = debug_rollout_path(*args_.save_debug_rollout_data, rollout_id);
      obs::TraceSpan span(obs::process_trace(), "rollout", "save_debug_rollout_data");
      save_debug_rollout(path, rollout_id, DebugRollout{samples, metrics});
    }
    obs::TraceSpan put_span(obs::process_trace(), "buffer", "put");
    put_rollout(rollout_id, samples, metrics, ring, consumers);
    release_engine_if_colocated();
  }

  // Evaluation after rollout `rollout_id` (leader: results to trainer rank 0; others: serve).
  void evaluate(int64_t rollout_id, buffer::RmaRing& ring) {
    if (!leader_) {
      serve();
      return;
    }
    Stopwatch watch;
    obs::TraceSpan span(obs::process_trace(), "rollout", "eval");
    ordered_json results = ordered_json::object();
    start_engine();
    for (const auto& [name, dataset] : eval_datasets_) {
      data::DataSourceOptions options;
      options.n_samples_per_prompt = args_.n_samples_per_eval_prompt;
      options.rollout_seed = args_.rollout_seed;
      data::DataSource prompts(dataset, options);
      std::vector<data::SampleGroup> groups =
          generator_->generate_groups(prompts.get_samples(dataset->size()), rollout_id, /*evaluation=*/true);
      double reward = 0, length = 0, truncated = 0;
      int64_t n = 0;
      for (const auto& g : groups)
        for (const auto& s : g) {
          reward += s.reward;
          length += static_cast<double>(s.response_length);
          truncated += s.status == data::SampleStatus::Truncated;
          ++n;
        }
      n = std::max<int64_t>(n, 1);
      results["eval/" + name] = reward / n;
      results["eval/" + name + "/response_len/mean"] = length / n;
      results["eval/" + name + "/truncated_ratio"] = truncated / n;
    }
    stop_remote_engines();
    release_engine_if_colocated();
    results["perf/eval_time"] = watch.seconds();
    const buffer::BufferControl control{kControlEval, rollout_id, 0, results.dump()};
    const std::vector<char> bytes = buffer::encode_control(control);
    ring.put(0, bytes.data(), static_cast<int64_t>(bytes.size()));
  }

  // The engine's GPU buffers for weight sync on the GPU (a tensor-parallel engine's ranks: each its shard's); null on
  // a CPU engine or before the engine is built (the weights then take the host path into engine_model(), which a
  // later engine is built from).
  const model::DeviceWeights* engine_device_weights() {
    if (follower_runner_) return follower_runner_->device_weights_for_sync();
    return engine_ ? engine_->runner().device_weights_for_sync() : nullptr;
  }

  // After new weights reached engine_model() (or, on_device, the engine's GPU buffers directly): the engine's device
  // copy refreshed (CUDA backend), stale cached K/V dropped, outputs tagged with the version.
  void weights_updated(int64_t version, bool on_device) {
    weight_version_ = version;
    if (follower_runner_ && !on_device) follower_runner_->reload_weights();
    if (engine_) {
      if (on_device)
        engine_->weights_changed();
      else
        engine_->reload_weights();
      engine_->set_weight_version(version);
    }
  }

 private:
  void build_leader() {
    const data::PromptDatasetOptions options = rollout::dataset_options_from_args(args_, *tokenizer_, chat_.get());
    std::shared_ptr<data::PromptDataset> dataset;
    if (args_.rollout_global_dataset) {
      SLIME_CHECK(args_.prompt_data, "--prompt-data is required (or --disable-rollout-global-dataset)");
      data::PromptDatasetOptions train_options = options;
      if (is_sft(args_)) {
        // The SFT rollout renders whole conversations itself (--apply-chat-template applies to evaluation only).
        train_options.apply_chat_template = false;
        train_options.max_prompt_len.reset();
      }
      dataset = std::make_shared<data::PromptDataset>(data::PromptDataset::load(*args_.prompt_data, train_options));
    }
    source_ = std::make_unique<data::DataSource>(dataset, rollout::data_source_options_from_args(args_));
    for (size_t i = 0; i + 1 < args_.eval_prompt_data.size(); i += 2) {
      data::PromptDatasetOptions eval_options = options;
      if (args_.eval_input_key) eval_options.input_key = *args_.eval_input_key;
      if (args_.eval_label_key) eval_options.label_key = *args_.eval_label_key;
      if (args_.eval_tool_key) eval_options.tool_key = *args_.eval_tool_key;
      eval_datasets_.emplace_back(args_.eval_prompt_data[i], std::make_shared<data::PromptDataset>(data::PromptDataset::load(
                                                                 args_.eval_prompt_data[i + 1], eval_options)));
    }
    if (is_sft(args_)) {
      SLIME_CHECK(chat_, "--rollout-function-path ", kSftRolloutFunction, " needs a chat template (",
                  path_join(*args_.hf_checkpoint, "tokenizer_config.json"), ")");
      mask_generator_ = std::make_unique<rollout::SftMaskGenerator>(*tokenizer_, *chat_, args_.loss_mask_type);
    } else {
      SLIME_CHECK(args_.rollout_function_path == kDefaultRolloutFunction, "--rollout-function-path '",
                  args_.rollout_function_path, "' is not supported: use the default (", kDefaultRolloutFunction,
                  ", with --custom-generate-function-path for custom generation) or ", kSftRolloutFunction);
      SLIME_CHECK(layout_.rollout_ranks > 0 || args_.load_debug_rollout_data, "the rollout function ",
                  kDefaultRolloutFunction,
                  " needs rollout engines (--rollout-num-gpus, or --colocate; not --debug-train-only)");
    }
    SLIME_CHECK(eval_datasets_.empty() || layout_.rollout_ranks > 0,
                "evaluation (--eval-prompt-data) needs rollout engines (not --debug-train-only)");
    reward_ = reward::make_reward_model(rollout::reward_options_from_args(args_, false));
    for (int e = 1; e < layout_.num_engines(); ++e)
      remote_.push_back(std::make_unique<rollout::RemoteEngine>(comms_.rollout, layout_.engine_head(e)));
  }

  // Builds the engine (and on the leader the router and rollout function over it), if not built.
  void start_engine() {
    if (!engine_model_ || engine_) return;
    engine_ = std::make_unique<rollout::Engine>(*engine_model_, engine_config_, tokenizer_.get());
    engine_->set_weight_version(weight_version_);
    if (!leader_) return;
    std::vector<rollout::EngineClient*> clients{engine_.get()};
    for (auto& r : remote_) clients.push_back(r.get());
    router_ = std::make_unique<rollout::Router>(clients);
    generator_ = std::make_unique<rollout::RolloutGenerator>(*router_, *tokenizer_, *reward_,
                                                             rollout::rollout_config_from_args(args_));
    if (args_.custom_generate_function_path)
      generator_->set_generate_plugin(rollout::GeneratePlugin::load(*args_.custom_generate_function_path));
  }

  // --colocate (--offload-rollout): the KV cache goes while the trainer runs on the same ranks.
  void release_engine_if_colocated() {
    if (!layout_.colocate || !args_.offload_rollout.value_or(false)) return;
    generator_.reset();
    router_.reset();
    engine_.reset();
    follower_runner_.reset();
  }

  // A rollout rank other than the leader for one rollout or evaluation: the first rank of an engine serves the
  // leader's requests, the others follow their engine's steps.
  void serve() {
    obs::TraceSpan span(obs::process_trace(), "rollout", "serve");
    if (engine_tp_.rank > 0) {
      if (!follower_runner_) follower_runner_ = rollout::make_model_runner(*engine_model_, engine_config_);
      rollout::follow_engine(*follower_runner_, engine_tp_);
      release_engine_if_colocated();
      return;
    }
    start_engine();
    rollout::serve_engine(*engine_, comms_.rollout, 0);
    rollout::release_engine_followers(engine_tp_);
    release_engine_if_colocated();
  }

  // The end of a rollout or evaluation on the leader: the other engines stop serving, and the ranks of the leader's
  // own engine stop following it.
  void stop_remote_engines() {
    for (auto& r : remote_) r->stop();
    if (engine_model_) rollout::release_engine_followers(engine_tp_);
  }

  // Samples to the trainer's data-parallel ranks, balanced by tokens, then each rank's end-of-rollout message.
  void put_rollout(int64_t rollout_id, const std::vector<buffer::BufferedSample>& samples,
                   const std::map<std::string, double>& metrics, buffer::RmaRing& ring, int consumers) {
    std::vector<int64_t> lengths;
    for (const auto& s : samples) lengths.push_back(static_cast<int64_t>(s.sample.tokens.size()));
    const auto parts = buffer::balance_by_tokens(lengths, consumers,
                                                 /*equal_size=*/samples.size() % static_cast<size_t>(consumers) == 0);
    ordered_json end = ordered_json::object();
    end["metrics"] = metrics;
    end["samples"] = samples.size();
    end["data_source"] = source_->state().dump();  // saved with the trainer's checkpoint of this rollout
    const std::string end_text = end.dump();
    for (int c = 0; c < consumers; ++c) {
      // (--debug-rollout-only: rank 0 is the leader and the only consumer.)
      const bool sequential = layout_.colocate || layout_.rollout_ranks == 0 || layout_.trainer_ranks == 0;
      int64_t share_bytes = 0;
      std::vector<std::vector<char>> encoded;
      for (int64_t i : parts[static_cast<size_t>(c)]) {
        encoded.push_back(buffer::encode_sample(samples[static_cast<size_t>(i)]));
        share_bytes += static_cast<int64_t>(encoded.back().size()) + 64;
      }
      // Ranks that produce and consume in turn cannot wait for the consumer: the share must fit.
      SLIME_CHECK(!sequential || share_bytes + 4096 <= ring.data_capacity_bytes(), "data buffer: rollout ", rollout_id,
                  " gives trainer rank ", c, " ", share_bytes, " bytes, more than its ring holds (", ring.data_capacity_bytes(),
                  " bytes); lower --rollout-max-context-len or the rollout size");
      for (const auto& e : encoded) ring.put(c, e.data(), static_cast<int64_t>(e.size()));
      const buffer::BufferControl control{kControlRolloutEnd, rollout_id,
                                          static_cast<int64_t>(parts[static_cast<size_t>(c)].size()), end_text};
      const std::vector<char> bytes = buffer::encode_control(control);
      ring.put(c, bytes.data(), static_cast<int64_t>(bytes.size()));
    }
  }

  const Args& args_;
  const PoolLayout& layout_;
  const PoolComms& comms_;
  model::ModelConfig config_;
  bool leader_ = false;
  int64_t weight_version_ = 0;
  std::unique_ptr<tokenizer::Tokenizer> tokenizer_;
  std::unique_ptr<tokenizer::ChatTemplate> chat_;
  comm::Group engine_tp_;                       // this rank's engine (tensor parallel; one rank: single)
  std::unique_ptr<model::Decoder> engine_model_;  // this rank's shard of the engine's model
  rollout::EngineConfig engine_config_;
  std::unique_ptr<rollout::Engine> engine_;       // on an engine's first rank
  std::unique_ptr<rollout::ModelRunner> follower_runner_;  // on its other ranks
  // Leader only.
  std::unique_ptr<data::DataSource> source_;
  std::vector<std::pair<std::string, std::shared_ptr<data::PromptDataset>>> eval_datasets_;
  std::unique_ptr<reward::RewardModel> reward_;
  std::vector<std::unique_ptr<rollout::RemoteEngine>> remote_;
  std::unique_ptr<rollout::Router> router_;
  std::unique_ptr<rollout::RolloutGenerator> generator_;
  std::unique_ptr<rollout::SftMaskGenerator> mask_generator_;
};

// ------------------------------------------------------------------------------------------------------------
// The trainer side's view of the data buffer: messages in ring order, set aside until asked for (an evaluation
// result can arrive after the next rollout's samples in the asynchronous loop).
class BufferReader {
 public:
  explicit BufferReader(buffer::RmaRing* ring) : ring_(ring) {}

  // This rank's share of rollout `rollout_id` (encoded samples) and its end-of-rollout document.
  std::vector<std::vector<char>> take_rollout(int64_t rollout_id, std::string* end_text) {
    std::vector<std::vector<char>> samples;
    for (;;) {
      std::vector<char> m = next(/*want_eval=*/false);
      if (!buffer::is_control_message(m.data(), m.size())) {
        samples.push_back(std::move(m));
        continue;
      }
      const buffer::BufferControl c = buffer::decode_control(m.data(), m.size(), "data buffer");
      SLIME_CHECK(c.kind == kControlRolloutEnd && c.rollout_id == rollout_id, "data buffer: expected the end of rollout ",
                  rollout_id, ", got message kind ", c.kind, " of rollout ", c.rollout_id);
      SLIME_CHECK(c.count == static_cast<int64_t>(samples.size()), "data buffer: rollout ", rollout_id, " announced ",
                  c.count, " samples for this rank, ", samples.size(), " arrived");
      *end_text = c.json;
      return samples;
    }
  }

  std::string take_eval(int64_t rollout_id) {
    const std::vector<char> m = next(/*want_eval=*/true);
    const buffer::BufferControl c = buffer::decode_control(m.data(), m.size(), "data buffer");
    SLIME_CHECK(c.rollout_id == rollout_id, "data buffer: expected the evaluation after rollout ", rollout_id,
                ", got rollout ", c.rollout_id);
    return c.json;
  }

 private:
  bool is_eval(const std::vector<char>& m) const {
    return buffer::is_control_message(m.data(), m.size()) &&
           buffer::decode_control(m.data(), m.size(), "data buffer").kind == kControlEval;
  }
  std::vector<char> next(bool want_eval) {
    std::deque<std::vector<char>>& wanted = want_eval ? evals_ : others_;
    while (wanted.empty()) {
      std::vector<char> m = ring_->pop();
      (is_eval(m) ? evals_ : others_).push_back(std::move(m));
    }
    std::vector<char> m = std::move(wanted.front());
    wanted.pop_front();
    return m;
  }

  buffer::RmaRing* ring_;
  std::deque<std::vector<char>> evals_, others_;
};

// Keeps the ring's one-sided traffic moving while a consumer computes: on transports without hardware atomics
// (UCX without them, for one) a producer's Fetch_and_op completes only when the target rank calls into MPI, so in the
// asynchronous loop the next rollout would wait for the end of the training step. Needs MPI_THREAD_MULTIPLE.
class RingProgress {
 public:
  RingProgress(buffer::RmaRing* ring, bool enabled) {
    int level = MPI_THREAD_SINGLE;
    MPI_Query_thread(&level);
    if (!ring || !enabled || level != MPI_THREAD_MULTIPLE) return;
    thread_ = std::thread([this, ring] {
      while (!stop_.load()) {
        ring->progress();
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    });
  }
  ~RingProgress() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  RingProgress(const RingProgress&) = delete;
  RingProgress& operator=(const RingProgress&) = delete;

 private:
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// Every trainer rank's byte strings, concatenated in rank order, on every trainer rank.
std::vector<std::vector<char>> allgather_messages(const std::vector<std::vector<char>>& mine, MPI_Comm comm) {
  std::vector<char> packed;
  for (const auto& m : mine) {
    const uint64_t n = m.size();
    packed.insert(packed.end(), reinterpret_cast<const char*>(&n), reinterpret_cast<const char*>(&n) + sizeof n);
    packed.insert(packed.end(), m.begin(), m.end());
  }
  const int ranks = comm::size(comm);
  std::vector<int> counts(static_cast<size_t>(ranks)), displs(static_cast<size_t>(ranks));
  const int count = static_cast<int>(packed.size());
  mpiCheck(MPI_Allgather(&count, 1, MPI_INT, counts.data(), 1, MPI_INT, comm));
  int64_t total = 0;
  for (int r = 0; r < ranks; ++r) {
    displs[static_cast<size_t>(r)] = static_cast<int>(total);
    total += counts[static_cast<size_t>(r)];
  }
  SLIME_CHECK(total < (int64_t{1} << 31), "rollout of ", total, " bytes is too large to all-gather in one call");
  std::vector<char> all(static_cast<size_t>(total));
  mpiCheck(MPI_Allgatherv(packed.data(), count, MPI_CHAR, all.data(), counts.data(), displs.data(), MPI_CHAR, comm));
  std::vector<std::vector<char>> out;
  for (size_t at = 0; at < all.size();) {
    uint64_t n = 0;
    std::memcpy(&n, all.data() + at, sizeof n);
    at += sizeof n;
    out.emplace_back(all.begin() + static_cast<std::ptrdiff_t>(at), all.begin() + static_cast<std::ptrdiff_t>(at + n));
    at += n;
  }
  return out;
}

// ------------------------------------------------------------------------------------------------------------
// Metrics of one step: printed as one line and appended to the metrics file (trainer rank 0).
class MetricsLog {
 public:
  MetricsLog(const Args& args, bool writer) : writer_(writer) {
    if (!writer_) return;
    if (args.metrics_file) path_ = *args.metrics_file;
    else if (args.save) path_ = path_join(*args.save, "metrics.jsonl");
    const std::string dir = std::filesystem::path(path_).parent_path().string();
    if (!dir.empty()) make_directories(dir);
    if (args.use_tensorboard) {  // validate_args resolved the directory
      std::string tb_dir = *args.tb_dir;
      if (args.tb_experiment_name) tb_dir = path_join(tb_dir, *args.tb_experiment_name);
      tensorboard_ = std::make_unique<obs::TensorBoardWriter>(tb_dir);
      SLIME_INFO("TensorBoard event file: ", tensorboard_->path());
    }
  }

  // Appends the record; prints it as one line when `print` (--log-interval, evaluations, the first and last step).
  // `step` is the TensorBoard step: the rollout id (an evaluation before training uses the first rollout id).
  void write(const ordered_json& record, int64_t step, bool print = true) {
    if (!writer_) return;
    if (print) {
      std::printf("%s\n", summary(record).c_str());
      std::fflush(stdout);
    }
    if (tensorboard_) {
      std::vector<obs::ScalarValue> values;
      for (auto it = record.begin(); it != record.end(); ++it)
        if (it.value().is_number() && it.key() != "rollout_id") values.emplace_back(it.key(), it.value().get<double>());
      tensorboard_->add_scalars(values, step);
    }
    if (path_.empty()) return;
    std::ofstream out(path_, std::ios::app);
    SLIME_CHECK(out.good(), "metrics file '", path_, "': cannot append");
    out << record.dump() << '\n';
  }

 private:
  static std::string summary(const ordered_json& r) {
    std::string line = r.contains("rollout_id") ? cat("[step ", r["rollout_id"].get<int64_t>(), "]") : "[eval]";
    auto field = [&](const char* key, const char* label, const char* format) {
      if (!r.contains(key) || !r[key].is_number()) return;
      char buf[64];
      std::snprintf(buf, sizeof buf, format, r[key].get<double>());
      line += cat(" ", label, " ", buf);
    };
    field("rollout/raw_reward", "reward", "%.3f");
    for (auto it = r.begin(); it != r.end(); ++it)
      if (it.key().rfind("eval/", 0) == 0 && it.key().find('/', 5) == std::string::npos && it.value().is_number()) {
        char buf[64];
        std::snprintf(buf, sizeof buf, "%.3f", it.value().get<double>());
        line += cat(" ", it.key(), " ", buf);
      }
    field("rollout/response_len/mean", "resp_len", "%.1f");
    field("train/loss", "loss", "%.4f");
    field("train/kl_loss", "kl", "%.5f");
    field("train/ppo_kl", "ppo_kl", "%.5f");
    field("train/grad_norm", "grad_norm", "%.3f");
    field("perf/rollout_time", "rollout_s", "%.2f");
    field("perf/train_time", "train_s", "%.2f");
    field("perf/update_weights_time", "sync_s", "%.3f");
    field("perf/eval_time", "eval_s", "%.2f");
    return line;
  }

  bool writer_;
  std::string path_;
  std::unique_ptr<obs::TensorBoardWriter> tensorboard_;
};

// Per-step training metrics: the mean of each metric over the rollout's optimizer steps.
void add_train_metrics(const train::RolloutTrainResult& result, ordered_json& record) {
  for (const auto& [key, value] : result.rollout) record[key] = value;
  std::map<std::string, double> sums;
  for (const auto& step : result.steps)
    for (const auto& [key, value] : step) sums[key] += value;
  for (const auto& [key, sum] : sums) record[key] = sum / static_cast<double>(result.steps.size());
  record["train/steps"] = result.steps.size();
}

// Closes this rank's trace; rank 0 then joins every rank's file into <dir>/trace.json (Perfetto, chrome://tracing).
void finish_trace(std::unique_ptr<obs::TraceWriter> trace, const std::string& dir, MPI_Comm world) {
  obs::set_process_trace(nullptr);
  trace->close();
  trace.reset();
  MPI_Barrier(world);
  if (comm::rank(world) != 0) return;
  std::vector<std::string> inputs;
  for (int r = 0; r < comm::size(world); ++r) inputs.push_back(path_join(dir, cat("trace-rank", r, ".json")));
  const std::string merged = path_join(dir, "trace.json");
  const obs::MergeSummary summary = obs::merge_traces(inputs, merged);
  SLIME_INFO("trace: ", summary.events, " events of ", inputs.size(), " ranks in ", merged);
}

void merge(ordered_json& into, const ordered_json& from) {
  for (auto it = from.begin(); it != from.end(); ++it) into[it.key()] = it.value();
}

}  // namespace

int run_rl_job(const Args& args, MPI_Comm world) {
  const EarlyExit early_exit(args);  // first: a signal from now on is recorded instead of killing the rank
  SLIME_CHECK(!args.save_debug_train_data, "--save-debug-train-data is not supported by this build's slime-train: "
              "save the rollouts with --save-debug-rollout-data and replay a step with --load-debug-rollout-data");
  const int rank = comm::rank(world);
  const PoolLayout layout = plan_pools(args, comm::size(world));
  SLIME_INFO0(layout.describe(), args.train_async ? ", asynchronous loop" : ", synchronous loop");
  PoolComms comms = PoolComms::create(layout, world);
  const bool trainer_rank = layout.is_trainer(rank);
  const bool rollout_role = layout.is_rollout(rank) || rank == layout.rollout_leader();
  // --trace-dir: every rank's phases on one timeline (trace-rank<r>.json, merged into trace.json at the end).
  std::unique_ptr<obs::TraceWriter> trace;
  if (args.trace_dir) {
    MPI_Barrier(world);  // the ranks' trace clocks start together
    obs::reset_trace_epoch();
    const char* role = trainer_rank && rollout_role ? "trainer + rollout" : trainer_rank ? "trainer" : "rollout";
    trace = std::make_unique<obs::TraceWriter>(*args.trace_dir, rank, cat("rank ", rank, " (", role, ")"));
    trace->set_thread_name("main");
    obs::set_process_trace(trace.get());
  }
  struct ClearProcessTrace {  // on any exit (an exception too), before `trace` goes
    ~ClearProcessTrace() { obs::set_process_trace(nullptr); }
  } clear_process_trace;
  const int tp = static_cast<int>(args.tensor_model_parallel_size);
  // Engines use the trainer's vocabulary padding, so weight sync moves tensors of the same shapes.
  const model::ModelConfig config = train::resolve_model_config(args, tp);

  // Trainer pool: the model, optimizer and schedule, resumed from --load when it holds a checkpoint.
  comm::ParallelGroups groups;
  std::unique_ptr<train::Trainer> trainer;
  if (trainer_rank) {
    groups = comm::ParallelGroups::create(comms.trainer, tp);
    trainer = std::make_unique<train::Trainer>(args, groups);
  }
  Plan plan;
  std::string source_state;
  if (rank == 0 && trainer) {
    plan.start = trainer->start_rollout_id();
    const json& extra = trainer->loaded_extra();
    if (extra.contains("data_source")) source_state = extra["data_source"].get<std::string>();
  }
  comm::broadcast(&plan.start, sizeof plan.start, 0, world);
  comm::broadcast(source_state, 0, world);

  // Rollout pool: engines on every rollout rank; prompts, router and rollout function on the leader.
  std::unique_ptr<RolloutSide> rollout;
  if (rollout_role) rollout = std::make_unique<RolloutSide>(args, layout, comms, rank, config);
  if (rollout && rollout->leader()) {
    if (!source_state.empty()) rollout->source().load(ordered_json::parse(source_state));
    rollout->fill_plan(plan);
  }
  {
    int64_t values[2] = {plan.num_rollout, plan.rollouts_per_epoch.value_or(-1)};
    comm::broadcast(values, sizeof values, layout.rollout_leader(), world);
    plan.num_rollout = values[0];
    if (values[1] >= 0) plan.rollouts_per_epoch = values[1];
  }
  SLIME_INFO0("rollout steps ", plan.start, " .. ", plan.num_rollout - 1,
              plan.start > 0 ? cat(" (resumed from ", *args.load, ")") : std::string());

  // The data buffer: one ring per data-parallel trainer rank (its tensor-parallel rank 0), the leader produces.
  // --debug-rollout-only: no trainer; rank 0 (the leader) takes its own rollouts back to log them.
  const bool rollout_only = layout.trainer_ranks == 0;
  const int consumers = rollout_only ? 1 : layout.trainer_ranks / tp;
  std::vector<int> consumer_ranks;
  for (int c = 0; c < consumers; ++c) consumer_ranks.push_back(c * tp);
  buffer::RmaRing ring(world, consumer_ranks, ring_capacity(args, config, consumers));
  const bool consumer = (trainer_rank && groups.tp.rank == 0) || (rollout_only && rank == 0);
  if (rollout_only && rollout) rollout->load_engine_weights();
  BufferReader reader(consumer ? &ring : nullptr);

  // Weight sync: trainer -> every engine.
  const bool receiver = rollout && rollout->engine_model();
  const bool have_engines = layout.rollout_ranks > 0 && !rollout_only;  // weights flow trainer -> engines
  std::optional<sync::WeightSync> weight_sync;
  if (have_engines)
    weight_sync.emplace(world, trainer_rank, receiver, args.update_weight_buffer_size,
                        trainer_rank ? groups.pool.rank : -1);
#ifdef SLIME_HAVE_CUDA
  // --backend cuda with --update-weight-transport nccl: the trainer's GPU weights go straight into the engines' GPU
  // buffers when every engine can take them (sync/device_weight_sync.h); otherwise the host path below.
  std::optional<sync::DeviceWeightSync> device_sync;
  if (have_engines && args.backend == "cuda" && args.update_weight_transport == "nccl")
    device_sync.emplace(world, weight_sync->bcast_comm(), weight_sync->is_source(), receiver,
                        args.update_weight_buffer_size);
#endif
  auto sync_weights = [&](int64_t version) -> double {
    if (!have_engines) return 0.0;
#ifdef SLIME_HAVE_CUDA
    if (device_sync) {
      const auto t0 = std::chrono::steady_clock::now();
      // The source's weights; with a tensor-parallel trainer every TP rank of its replica brings its shard.
      const bool tp_source = trainer && groups.dp.rank == 0 && !groups.tp.single();
      std::optional<model::DeviceWeights> source;
      if (trainer && (weight_sync->is_source() || tp_source)) source = trainer->device_weights();
      const model::DeviceWeights* engine = rollout ? rollout->engine_device_weights() : nullptr;
      if (device_sync->sync(source ? &*source : nullptr, engine, tp_source ? &groups.tp : nullptr)) {
        if (rollout) rollout->weights_updated(version, true);
        if (args.check_weight_update_equal) {
          std::string report;
          const bool equal = device_sync->check_equal(source ? &*source : nullptr, engine, &report);
          SLIME_CHECK(equal, "--check-weight-update-equal: after the GPU sync of version ", version, ": ", report);
          SLIME_INFO0("--check-weight-update-equal: engines hold the trainer's GPU weights (version ", version, ")");
        }
        SLIME_DEBUG("weights on the GPU over ", device_sync->transport(), ": ", device_sync->bytes_sent(), " bytes");
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      }
    }
#endif
    const sync::SyncStats stats =
        weight_sync->sync(trainer ? &trainer->weights() : nullptr, trainer ? &groups : nullptr,
                          receiver ? rollout->engine_model() : nullptr, version);
    if (rollout) rollout->weights_updated(version, false);
    if (args.check_weight_update_equal) {
      std::string report;
      const bool equal = weight_sync->check_weights_equal(trainer ? &trainer->weights() : nullptr,
                                                         trainer ? &groups : nullptr,
                                                         receiver ? rollout->engine_model() : nullptr, &report);
      SLIME_CHECK(equal, "--check-weight-update-equal: after the sync of version ", version, ": ", report);
      SLIME_INFO0("--check-weight-update-equal: engines hold the trainer's weights (version ", version, ")");
    }
    return stats.seconds;
  };

  MetricsLog log(args, rank == 0);
  obs::TraceSpan first_sync_span(trace.get(), "sync", "update_weights");
  const double first_sync = sync_weights(plan.start);
  first_sync_span.end();
  if (have_engines) SLIME_INFO0("weights trainer -> engines (version ", plan.start, ") in ", first_sync, " s");
  if (eval_before_train(args, plan)) {
    if (rollout) rollout->evaluate(plan.start, ring);
    if (rank == 0) {
      ordered_json record = ordered_json::parse(reader.take_eval(plan.start));
      record["phase"] = "eval_before_train";
      log.write(record, plan.start);
    }
  }

  // The asynchronous loop has the first rollout in flight before the first step.
  if (args.train_async && rollout && plan.start < plan.num_rollout) rollout->produce(plan.start, ring, consumers);

  std::string data_source_state;  // after the rollout being trained (saved with its checkpoint)
  int exit_code = 0;
  for (int64_t k = plan.start; k < plan.num_rollout; ++k) {
    Stopwatch step_watch;
    obs::TraceSpan step_span(trace.get(), "step", cat("step ", k));
    // Rollout side: this step's rollout (sync), or the next one while the trainer trains this one (async).
    if (rollout) {
      if (!args.train_async) rollout->produce(k, ring, consumers);
      else if (k + 1 < plan.num_rollout) rollout->produce(k + 1, ring, consumers);
    }

    ordered_json record = ordered_json::object();
    record["rollout_id"] = k;
    if (trainer_rank) {
      Stopwatch wait_watch;
      std::string end_text;
      std::vector<std::vector<char>> mine;
      {
        obs::TraceSpan span(trace.get(), "buffer", "take");
        if (consumer) mine = reader.take_rollout(k, &end_text);
      }
      const double wait_seconds = wait_watch.seconds();
      std::vector<buffer::BufferedSample> received;
      obs::TraceSpan gather_span(trace.get(), "buffer", "allgather");
      for (const auto& m : allgather_messages(mine, comms.trainer))
        received.push_back(buffer::decode_sample(m.data(), m.size(), cat("rollout ", k, " sample")));
      std::sort(received.begin(), received.end(),
                [](const auto& a, const auto& b) { return a.index < b.index; });
      std::vector<train::TrainSample> samples;
      for (auto& b : received) samples.push_back(std::move(b.sample));
      comm::broadcast(end_text, 0, comms.trainer);
      gather_span.end();
      const ordered_json end = ordered_json::parse(end_text);
      merge(record, end["metrics"]);
      record["perf/buffer_wait_time"] = wait_seconds;

      Stopwatch train_watch;
      train::RolloutTrainResult result;
      {
        obs::TraceSpan span(trace.get(), "train", "train_rollout");
        RingProgress progress(consumer ? &ring : nullptr, /*enabled=*/args.train_async);
        result = trainer->train_rollout(k, samples);
      }
      const double train_seconds = train_watch.seconds();
      record["perf/train_time"] = train_seconds;
      // slime's perf/tokens_per_gpu_per_sec: every token of the rollout over the training time and trainer ranks.
      double tokens = 0;
      for (const auto& sample : samples) tokens += static_cast<double>(sample.tokens.size());
      record["perf/tokens_per_gpu_per_sec"] = tokens / std::max(train_seconds, 1e-9) / layout.trainer_ranks;
      add_train_metrics(result, record);

      data_source_state = end["data_source"].get<std::string>();
    } else if (rollout_only && rank == 0) {  // log the rollout (its samples were saved by the leader, if asked)
      std::string end_text;
      obs::TraceSpan span(trace.get(), "buffer", "take");
      reader.take_rollout(k, &end_text);
      merge(record, ordered_json::parse(end_text)["metrics"]);
    }
    if (have_engines && weights_due(args, k)) {
      obs::TraceSpan span(trace.get(), "sync", "update_weights");
      const double seconds = sync_weights(k + 1);
      record["perf/update_weights_time"] = seconds;
    }
    if (eval_due(args, plan, k)) {
      if (rollout) rollout->evaluate(k, ring);
      obs::TraceSpan span(rank == 0 ? trace.get() : nullptr, "buffer", "take_eval");
      if (rank == 0) merge(record, ordered_json::parse(reader.take_eval(k)));
    }
    record["perf/step_time"] = step_watch.seconds();
    // The step's metrics are written before its checkpoint: a job killed in between repeats the step after the
    // restart (the later line wins), and a checkpoint never exists without its step's metrics.
    const bool evaluated = eval_due(args, plan, k);
    log.write(record, k,
              evaluated || k == plan.start || k + 1 == plan.num_rollout || (k + 1) % args.log_interval == 0);
    // Early exit (a signal, the time budget, --exit-interval): every rank stops after this step, saved.
    const ExitDecision exit = early_exit.after_step(k, world);
    const bool stop_early = exit.stop && k + 1 < plan.num_rollout;
    if (trainer && args.save &&
        (stop_early || train::periodic_action_due(args.save_interval, k, plan.num_rollout, plan.rollouts_per_epoch,
                                                  /*last_rollout_too=*/true))) {
      obs::TraceSpan span(trace.get(), "save", "checkpoint");
      trainer->save_checkpoint(k, json{{"data_source", data_source_state}});
    }
    if (stop_early) {
      if (trace) trace->instant("step", cat("stop: ", exit.reason), nullptr, 'g');
      SLIME_INFO0("stopping after rollout step ", k, " of ", plan.num_rollout, ": ", exit.reason, "; checkpoint ", k,
                  " is in ", *args.save, ", resume with --load ", *args.save, " (exit status ", exit.exit_code, ")");
      exit_code = exit.exit_code;
      break;
    }
  }
  ring.free();
  if (trainer) {
    trainer.reset();
    groups.release();
  }
  comms.release();
  if (trace) finish_trace(std::move(trace), *args.trace_dir, world);
  return exit_code;
}

}  // namespace slime::app
