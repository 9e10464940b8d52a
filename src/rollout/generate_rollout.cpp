#include "rollout/generate_rollout.h"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <exception>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <thread>

#include "core/error.h"
#include "core/log.h"
#include "core/progress.h"
#include "core/timer.h"
#include "obs/trace.h"

namespace slime::rollout {

namespace {

uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

std::vector<int64_t> to_int64(const std::vector<int32_t>& v) { return {v.begin(), v.end()}; }
std::vector<int32_t> to_int32(const std::vector<int64_t>& v) { return {v.begin(), v.end()}; }

json to_plain_json(const nlohmann::ordered_json& j) { return json::parse(j.dump()); }

std::string prompt_text(const data::Sample& s) {
  return s.prompt.is_string() ? s.prompt.get<std::string>() : s.prompt.dump();
}

// The output an engine would give a request aborted before it ran.
GenerateOutput aborted_output(const GenerateRequest& request) {
  GenerateOutput out;
  out.finish_reason = "abort";
  out.prompt_tokens = static_cast<int64_t>(request.prompt.size());
  return out;
}

// A fixed set of threads running jobs in submission order.
class WorkerPool {
 public:
  explicit WorkerPool(int64_t threads) {
    for (int64_t i = 0; i < threads; ++i) threads_.emplace_back([this] { loop(); });
  }
  ~WorkerPool() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    for (std::thread& t : threads_) t.join();
  }
  void submit(std::function<void()> job) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      jobs_.push_back(std::move(job));
    }
    cv_.notify_one();
  }

 private:
  void loop() {
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
        if (jobs_.empty()) return;
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
      job();
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace

// The state of one generate_rollout / generate_groups call. Every member is touched by the calling thread only,
// except `inbox_` (under mu_), through which worker threads hand back closures that the calling thread runs.
struct RolloutGenerator::State {
  struct Group {
    data::SampleGroup samples;
    int64_t open = 0;       // samples not done yet
    bool done = false;      // every sample done (and the group reward, with --group-rm)
    bool consumed = false;  // taken by the rollout (kept or dropped)
  };
  using Continuation = std::function<void()>;

  State(RolloutGenerator& g, int64_t rollout_id, bool evaluation)
      : gen(g), rollout_id(rollout_id), evaluation(evaluation), pool(g.config_.worker_threads) {}

  RolloutGenerator& gen;
  const int64_t rollout_id;
  const bool evaluation;

  std::vector<std::unique_ptr<Group>> groups;
  std::deque<Group*> finished;  // done, in finishing order, not yet consumed
  int64_t unfinished = 0;       // groups not done
  std::map<int64_t, std::pair<Group*, size_t>> default_requests;                  // router id -> sample
  std::map<int64_t, std::shared_ptr<std::promise<GenerateOutput>>> plugin_requests;  // router id -> waiting plug-in
  int64_t jobs_in_flight = 0;
  bool aborting = false;
  bool router_failed = false;
  std::string first_error;
  int64_t generated_tokens = 0;

  std::mutex mu;
  std::condition_variable cv;
  std::deque<Continuation> inbox;
  WorkerPool pool;  // last: joined first on destruction, while the rest is still alive

  const SamplingParams& base_params() const { return evaluation ? gen.config_.eval_sampling : gen.config_.sampling; }

  uint64_t sample_seed(const data::Sample& s) const {
    uint64_t h = splitmix64(gen.config_.rollout_seed ^ (evaluation ? 0x6576616cull : 0));
    h = splitmix64(h ^ static_cast<uint64_t>(s.index));
    return splitmix64(h ^ static_cast<uint64_t>(s.response_length));
  }

  // ---- worker hand-off ----
  void post(Continuation c) {
    {
      std::lock_guard<std::mutex> lock(mu);
      inbox.push_back(std::move(c));
    }
    cv.notify_one();
  }

  // Runs `work` on a worker; what it returns runs on the calling thread. An exception becomes a rollout error
  // described by `what`, and `on_failure` runs instead (it must still finish the sample or group).
  void run_job(std::function<Continuation()> work, std::string what, Continuation on_failure) {
    ++jobs_in_flight;
    pool.submit([this, work = std::move(work), what = std::move(what), on_failure = std::move(on_failure)] {
      Continuation next;
      std::string error;
      try {
        next = work();
      } catch (const std::exception& e) {
        error = cat(what, ": ", e.what());
      }
      post([this, next = std::move(next), error = std::move(error), on_failure] {
        --jobs_in_flight;
        if (!error.empty()) {
          fail(error);
          on_failure();
        } else {
          next();
        }
      });
    });
  }

  // ---- errors and abort ----
  void fail(const std::string& message) {
    if (first_error.empty()) first_error = message;
    begin_abort();
  }

  void begin_abort() {
    if (aborting) return;
    aborting = true;
    if (!router_failed) gen.router_.abort_all();
  }

  // ---- groups and samples ----
  void add_group(data::SampleGroup samples) {
    SLIME_CHECK(!samples.empty(), "rollout: an empty group");
    auto group = std::make_unique<Group>();
    group->samples = std::move(samples);
    group->open = static_cast<int64_t>(group->samples.size());
    Group* g = group.get();
    groups.push_back(std::move(group));
    ++unfinished;
    for (size_t i = 0; i < g->samples.size(); ++i) {
      try {
        start_sample(g, i);
      } catch (const std::exception& e) {  // a sample that cannot start fails the rollout, after the rest drains
        fail(e.what());
        g->samples[i].status = data::SampleStatus::Aborted;
        sample_done(g);
      }
    }
  }

  void start_sample(Group* g, size_t i) {
    data::Sample& s = g->samples[i];
    const RolloutConfig& c = gen.config_;
    if (c.partial_rollout && c.mask_offpolicy_in_partial_rollout && s.response_length > 0)
      s.loss_mask.assign(static_cast<size_t>(s.response_length), 0);  // tokens of an earlier policy
    if (s.session_id.empty()) s.session_id = cat("sample-", s.index);
    // Done in an earlier rollout (partial rollout hands back whole groups): scored then, unless --group-rm.
    if (s.status == data::SampleStatus::Completed || s.status == data::SampleStatus::Truncated ||
        s.status == data::SampleStatus::Failed)
      return sample_done(g);
    if (aborting) {
      s.status = data::SampleStatus::Aborted;
      return sample_done(g);
    }
    SLIME_CHECK(s.prompt_length() > 0, "rollout: sample ", s.index, " (group ", s.group_index,
                ") has an empty prompt: no tokens to continue");
    if (gen.plugin_)
      start_plugin_sample(g, i);
    else
      start_default_sample(g, i);
  }

  // slime's default generate: one engine request continuing the sample's tokens.
  void start_default_sample(Group* g, size_t i) {
    data::Sample& s = g->samples[i];
    GenerateRequest request;
    request.params = base_params();
    SLIME_CHECK(request.params.max_new_tokens >= s.response_length, "rollout: sample ", s.index, " already has ",
                s.response_length, " response tokens, more than --rollout-max-response-len ",
                request.params.max_new_tokens);
    request.params.max_new_tokens -= s.response_length;
    if (request.params.max_new_tokens == 0) {
      s.status = data::SampleStatus::Truncated;
      return after_generation(g, i);
    }
    request.params.seed = sample_seed(s);
    request.prompt = to_int64(s.tokens);
    request.session_id = s.session_id;
    try {
      default_requests[gen.router_.submit(std::move(request))] = {g, i};
    } catch (const std::exception& e) {
      fail(cat("rollout: sample ", s.index, " (group ", s.group_index, "): ", e.what()));
      s.status = data::SampleStatus::Aborted;
      sample_done(g);
    }
  }

  void on_default_output(Group* g, size_t i, const GenerateOutput& out) {
    data::Sample& s = g->samples[i];
    data::TurnInfo turn;
    turn.finish_reason = out.finish_reason;
    turn.weight_version = std::to_string(out.weight_version);
    turn.prompt_tokens = out.prompt_tokens;
    turn.cached_tokens = out.cached_tokens;
    const std::vector<int32_t> tokens = to_int32(out.tokens);
    generated_tokens += static_cast<int64_t>(tokens.size());
    s.append_response_tokens(tokens, out.logprobs, /*trainable=*/true, turn,
                             gen.tokenizer_.decode(tokens, gen.config_.skip_special_tokens));
    after_generation(g, i);
  }

  // --custom-generate-function-path: the plug-in runs on a worker; its engine calls come back here to be routed.
  void start_plugin_sample(Group* g, size_t i) {
    data::Sample& s = g->samples[i];
    // A plug-in sample restarts from its prompt: the ABI hands a plug-in no partial response.
    if (s.response_length > 0 || !s.response.empty()) {
      s.tokens.resize(static_cast<size_t>(s.prompt_length()));
      s.response_length = 0;
      s.response.clear();
      s.loss_mask.clear();
      s.rollout_logprobs.clear();
    }
    s.status = data::SampleStatus::Pending;
    auto input = std::make_shared<PluginInput>();
    input->prompt_tokens = to_int64(s.tokens);
    input->prompt_text = prompt_text(s);
    input->label = to_plain_json(s.label);
    input->metadata = s.metadata.is_object() ? to_plain_json(s.metadata) : json::object();
    input->params = base_params();
    input->params.seed = sample_seed(s);
    input->session_id = s.session_id;
    input->evaluation = evaluation;
    const GeneratePlugin* plugin = &*gen.plugin_;
    const tokenizer::Tokenizer* tok = &gen.tokenizer_;
    run_job(
        [this, g, i, input, plugin, tok]() -> Continuation {
          GenerateFn route = [this](GenerateRequest request) {
            auto promise = std::make_shared<std::promise<GenerateOutput>>();
            std::future<GenerateOutput> result = promise->get_future();
            post([this, promise, request = std::move(request)]() mutable { route_plugin_request(promise, request); });
            return result.get();
          };
          auto out = std::make_shared<PluginSample>(plugin->run(*input, route, *tok));
          return [this, g, i, out] { on_plugin_sample(g, i, *out); };
        },
        cat("rollout: sample ", s.index, ": custom generate"), [this, g, i] {
          g->samples[i].status = data::SampleStatus::Aborted;
          sample_done(g);
        });
  }

  void route_plugin_request(const std::shared_ptr<std::promise<GenerateOutput>>& promise, GenerateRequest& request) {
    if (router_failed) {
      promise->set_exception(std::make_exception_ptr(Error("the rollout engines failed")));
      return;
    }
    if (aborting) {
      promise->set_value(aborted_output(request));
      return;
    }
    try {
      plugin_requests[gen.router_.submit(std::move(request))] = promise;
    } catch (...) {
      promise->set_exception(std::current_exception());
    }
  }

  void on_plugin_sample(Group* g, size_t i, const PluginSample& out) {
    data::Sample& s = g->samples[i];
    s.tokens.insert(s.tokens.end(), out.response_tokens.begin(), out.response_tokens.end());
    s.response_length = static_cast<int64_t>(out.response_tokens.size());
    s.loss_mask = out.loss_mask;
    s.rollout_logprobs = out.logprobs;
    s.response = out.response_text;
    s.prefix_cache_info.cached_tokens += out.cached_tokens;
    s.prefix_cache_info.total_prompt_tokens += out.prompt_tokens;
    generated_tokens += s.response_length;
    switch (out.status) {
      case PluginStatus::Completed: s.status = data::SampleStatus::Completed; break;
      case PluginStatus::Truncated: s.status = data::SampleStatus::Truncated; break;
      case PluginStatus::Aborted: s.status = data::SampleStatus::Aborted; break;
      case PluginStatus::Failed: s.status = data::SampleStatus::Failed; break;
    }
    if (out.reward_metadata.is_object()) {
      if (!s.metadata.is_object()) s.metadata = nlohmann::ordered_json::object();
      for (auto it = out.reward_metadata.begin(); it != out.reward_metadata.end(); ++it)
        s.metadata[it.key()] = nlohmann::ordered_json::parse(it.value().dump());
    }
    s.check_consistent(cat("custom generate output of sample ", s.index));
    after_generation(g, i);
  }

  reward::RewardInput reward_input(const data::Sample& s) const {
    reward::RewardInput in;
    in.prompt = prompt_text(s);
    in.response = s.response;
    in.label = s.label;
    in.metadata = s.metadata;
    return in;
  }

  static void set_reward(data::Sample& s, const reward::RewardValue& v) {
    s.reward = v.value;
    s.reward_details = v.details.is_object() ? v.details : nlohmann::ordered_json(nullptr);
  }

  void after_generation(Group* g, size_t i) {
    data::Sample& s = g->samples[i];
    if (s.status == data::SampleStatus::Aborted || gen.config_.group_rm) return sample_done(g);
    auto input = std::make_shared<reward::RewardInput>(reward_input(s));
    reward::RewardModel* rm = &gen.reward_;
    run_job(
        [this, g, i, input, rm]() -> Continuation {
          obs::TraceSpan span(obs::process_trace(), "rollout", "reward");
          const reward::RewardValue value = rm->score(*input);
          span.end();
          return [this, g, i, value] {
            set_reward(g->samples[i], value);
            sample_done(g);
          };
        },
        cat("rollout: reward of sample ", s.index), [this, g] { sample_done(g); });
  }

  void sample_done(Group* g) {
    if (--g->open > 0) return;
    const bool any_aborted = std::any_of(g->samples.begin(), g->samples.end(),
                                         [](const data::Sample& s) { return s.status == data::SampleStatus::Aborted; });
    if (!gen.config_.group_rm || any_aborted) return group_done(g);
    auto inputs = std::make_shared<std::vector<reward::RewardInput>>();
    for (const data::Sample& s : g->samples) inputs->push_back(reward_input(s));
    reward::RewardModel* rm = &gen.reward_;
    run_job(
        [this, g, inputs, rm]() -> Continuation {
          obs::TraceSpan span(obs::process_trace(), "rollout", "group_reward");
          auto values = std::make_shared<std::vector<reward::RewardValue>>(rm->score_group(*inputs));
          SLIME_CHECK(values->size() == inputs->size(), "the group reward returned ", values->size(), " rewards for ",
                      inputs->size(), " samples");
          return [this, g, values] {
            for (size_t k = 0; k < values->size(); ++k) set_reward(g->samples[k], (*values)[k]);
            group_done(g);
          };
        },
        cat("rollout: group reward of group ", g->samples.front().group_index), [this, g] { group_done(g); });
  }

  void group_done(Group* g) {
    g->done = true;
    finished.push_back(g);
    --unfinished;
  }

  // ---- the loop ----
  void dispatch(int64_t id, const GenerateOutput& out) {
    if (auto d = default_requests.find(id); d != default_requests.end()) {
      const auto [g, i] = d->second;
      default_requests.erase(d);
      return on_default_output(g, i, out);
    }
    auto p = plugin_requests.find(id);
    SLIME_ASSERT(p != plugin_requests.end(), "rollout: the router finished request ", id, ", which nobody waits for");
    p->second->set_value(out);
    plugin_requests.erase(p);
  }

  // The engines threw: nothing they hold will finish. Waiting plug-ins get the error, default samples end aborted.
  void router_failure(const std::string& what) {
    router_failed = true;
    fail(cat("rollout engine failure: ", what));
    for (auto& [id, promise] : plugin_requests) promise->set_exception(std::make_exception_ptr(Error(what)));
    plugin_requests.clear();
    auto pending = std::move(default_requests);
    default_requests.clear();
    for (auto& [id, sample] : pending) {
      sample.first->samples[sample.second].status = data::SampleStatus::Aborted;
      sample_done(sample.first);
    }
  }

  // Runs a step of the state machine; an exception fails the rollout instead of leaving workers waiting.
  template <class F>
  void guarded(F&& f) {
    try {
      f();
    } catch (const std::exception& e) {
      fail(e.what());
    }
  }

  // One round: run the workers' hand-backs, else step the engines, else wait for a worker.
  void pump() {
    std::deque<Continuation> ready;
    {
      std::lock_guard<std::mutex> lock(mu);
      ready.swap(inbox);
    }
    for (Continuation& c : ready) guarded(c);
    if (!ready.empty()) return;
    if (!router_failed && gen.router_.has_unfinished()) {
      std::vector<std::pair<int64_t, GenerateOutput>> outputs;
      try {
        outputs = gen.router_.step();
      } catch (const std::exception& e) {
        router_failure(e.what());
      }
      for (auto& [id, out] : outputs) guarded([&] { dispatch(id, out); });
      return;
    }
    SLIME_ASSERT(jobs_in_flight > 0, "rollout: ", unfinished, " groups unfinished with nothing in flight");
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [this] { return !inbox.empty(); });
  }

  void drain() {
    while (unfinished > 0 || jobs_in_flight > 0) pump();
  }
};

RolloutGenerator::RolloutGenerator(Router& router, const tokenizer::Tokenizer& tokenizer, reward::RewardModel& reward,
                                   RolloutConfig config)
    : router_(router), tokenizer_(tokenizer), reward_(reward), config_(std::move(config)) {
  SLIME_CHECK(config_.rollout_batch_size >= 1, "--rollout-batch-size must be >= 1, got ", config_.rollout_batch_size);
  SLIME_CHECK(config_.n_samples_per_prompt >= 1, "--n-samples-per-prompt must be >= 1, got ",
              config_.n_samples_per_prompt);
  if (config_.over_sampling_batch_size == 0) config_.over_sampling_batch_size = config_.rollout_batch_size;
  SLIME_CHECK(config_.over_sampling_batch_size >= config_.rollout_batch_size, "--over-sampling-batch-size (",
              config_.over_sampling_batch_size, ") must be >= --rollout-batch-size (", config_.rollout_batch_size, ")");
  SLIME_CHECK(config_.worker_threads >= 1, "rollout: worker_threads must be >= 1");
}

RolloutGenerator::~RolloutGenerator() = default;

void RolloutGenerator::set_generate_plugin(std::optional<GeneratePlugin> plugin) { plugin_ = std::move(plugin); }
void RolloutGenerator::set_dynamic_filter(DynamicFilter filter) { filter_ = std::move(filter); }

RolloutOutput RolloutGenerator::generate_rollout(int64_t rollout_id, data::DataSource& source) {
  SLIME_CHECK(!router_.has_unfinished(), "generate_rollout: the engines still run requests of an earlier call");
  Stopwatch watch;
  State st(*this, rollout_id, /*evaluation=*/false);
  const int64_t target = config_.rollout_batch_size;
  int64_t remaining = 0;  // groups counted toward the batch: submitted minus dropped (slime's remaining_batch_size)
  RolloutOutput result;
  std::vector<State::Group*> kept, all;
  int64_t dropped = 0;
  Progress progress(cat("rollout ", rollout_id), target, "groups");
  while (static_cast<int64_t>(kept.size()) < target && st.first_error.empty()) {
    while (remaining < target && st.first_error.empty()) {
      st.guarded([&] {
        std::vector<data::SampleGroup> fresh = source.get_samples(config_.over_sampling_batch_size);
        SLIME_CHECK(!fresh.empty(), "rollout ", rollout_id, ": the data source returned no prompts");
        remaining += static_cast<int64_t>(fresh.size());
        for (data::SampleGroup& group : fresh) {
          SLIME_CHECK(static_cast<int64_t>(group.size()) == config_.n_samples_per_prompt, "rollout: the data "
                      "source returned a group of ", group.size(), " samples, --n-samples-per-prompt is ",
                      config_.n_samples_per_prompt);
          st.add_group(std::move(group));
        }
      });
    }
    while (st.finished.empty() && st.first_error.empty()) st.pump();
    while (!st.finished.empty() && static_cast<int64_t>(kept.size()) < target && st.first_error.empty()) {
      State::Group* g = st.finished.front();
      st.finished.pop_front();
      g->consumed = true;
      all.push_back(g);
      DynamicFilterResult verdict;
      if (filter_) st.guarded([&] { verdict = filter_(g->samples); });
      if (should_drop(verdict, remaining, target)) {
        if (!verdict.reason.empty()) result.metrics["rollout/dynamic_filter/drop_" + verdict.reason] += 1;
        ++dropped;
        --remaining;
        continue;
      }
      kept.push_back(g);
      progress.update(static_cast<int64_t>(kept.size()), dropped > 0 ? cat("dropped ", dropped) : std::string());
    }
  }
  progress.finish();
  // Enough groups: abort the surplus and wait until every request and worker has come back.
  st.begin_abort();
  st.drain();
  if (!st.first_error.empty()) throw Error(st.first_error);

  // Partial rollout: what was in flight or finished unconsumed goes back to the buffer, to continue next time.
  if (config_.partial_rollout) {
    std::vector<data::SampleGroup> back;
    for (auto& g : st.groups) {
      if (g->consumed) continue;
      for (data::Sample& s : g->samples)
        if (!s.response.empty() && !s.metadata.contains("start_rollout_id")) s.metadata["start_rollout_id"] = rollout_id;
      back.push_back(std::move(g->samples));
    }
    result.groups_to_buffer = static_cast<int64_t>(back.size());
    if (!back.empty()) source.add_samples(std::move(back));
    SLIME_INFO("rollout ", rollout_id, ": ", result.groups_to_buffer, " partial groups back to the data buffer");
  }

  auto by_index = [](const data::SampleGroup& a, const data::SampleGroup& b) {
    return a.front().index < b.front().index;
  };
  for (State::Group* g : all) result.all_groups.push_back(g->samples);
  for (State::Group* g : kept) result.groups.push_back(std::move(g->samples));
  std::sort(result.groups.begin(), result.groups.end(), by_index);
  std::sort(result.all_groups.begin(), result.all_groups.end(), by_index);

  // Metrics over the kept groups (slime's rollout_metrics subset; more with the observability work).
  double response_sum = 0, reward_sum = 0;
  int64_t samples = 0, truncated = 0, zero_std = 0;
  for (const data::SampleGroup& group : result.groups) {
    bool same = true;
    for (const data::Sample& s : group) {
      response_sum += static_cast<double>(s.effective_response_length());
      reward_sum += s.reward;
      truncated += s.status == data::SampleStatus::Truncated;
      same = same && s.reward == group.front().reward;
      ++samples;
    }
    zero_std += same;
  }
  const double seconds = watch.seconds();
  result.metrics["rollout/response_len/mean"] = response_sum / static_cast<double>(samples);
  result.metrics["rollout/raw_reward"] = reward_sum / static_cast<double>(samples);
  result.metrics["rollout/truncated_ratio"] = static_cast<double>(truncated) / static_cast<double>(samples);
  result.metrics["rollout/zero_std/count"] = static_cast<double>(zero_std);
  result.metrics["rollout/groups_generated"] = static_cast<double>(all.size());
  result.metrics["rollout/groups_dropped"] = static_cast<double>(dropped);
  result.metrics["perf/rollout_time"] = seconds;
  result.metrics["perf/tokens_per_sec"] = static_cast<double>(st.generated_tokens) / seconds;
  return result;
}

std::vector<data::SampleGroup> RolloutGenerator::generate_groups(std::vector<data::SampleGroup> groups,
                                                                 int64_t rollout_id, bool evaluation) {
  SLIME_CHECK(!router_.has_unfinished(), "generate_groups: the engines still run requests of an earlier call");
  State st(*this, rollout_id, evaluation);
  for (data::SampleGroup& group : groups) {
    if (!st.first_error.empty()) break;
    st.guarded([&] { st.add_group(std::move(group)); });
  }
  st.drain();
  if (!st.first_error.empty()) throw Error(st.first_error);
  std::vector<data::SampleGroup> out;
  for (auto& g : st.groups) out.push_back(std::move(g->samples));
  std::sort(out.begin(), out.end(),
            [](const data::SampleGroup& a, const data::SampleGroup& b) { return a.front().index < b.front().index; });
  return out;
}

}  // namespace slime::rollout
