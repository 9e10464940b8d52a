// The rollout function: over-sampling with the dynamic sampling filter, determinism across engines and threads,
// partial rollout through the data buffer, group rewards, custom generate plug-ins, and failures that abort cleanly.
#include <catch2/catch.hpp>
#include <atomic>
#include <chrono>
#include <cmath>
#include <memory>
#include <thread>

#include "core/io.h"
#include "data/data_source.h"
#include "data/dataset.h"
#include "model/decoder.h"
#include "model/init.h"
#include "rollout/dynamic_filter.h"
#include "rollout/engine.h"
#include "rollout/generate_rollout.h"
#include "rollout/router.h"
#include "tokenizer/test_fixtures.h"
#include "tokenizer/tokenizer.h"

using namespace slime;
using namespace slime::rollout;

namespace {

const tokenizer::Tokenizer& qwen3_tokenizer() { return tokenizer::test::fixture_tokenizer("qwen3"); }

model::ModelConfig tiny_config() {
  return model::ModelConfig::from_hf_json(json::parse(R"({"architectures": ["Qwen3ForCausalLM"], "vocab_size": 64,
    "hidden_size": 32, "intermediate_size": 48, "num_hidden_layers": 2, "num_attention_heads": 4,
    "num_key_value_heads": 2, "head_dim": 8, "max_position_embeddings": 128, "tie_word_embeddings": false})"),
                                          "tiny");
}

// A model with two engines on it (a rollout pool of two single-rank engines sharing the weights in this process).
struct Pool {
  model::ModelConfig config = tiny_config();
  model::Decoder model{config};
  std::vector<std::unique_ptr<Engine>> engines;
  std::unique_ptr<Router> router;

  explicit Pool(int num_engines = 1, int64_t max_running = 256) {
    model::init_random(config, model.params(), 5, 0.6f);
    EngineConfig ec;
    ec.num_blocks = 512;
    ec.block_size = 4;
    ec.max_running = max_running;
    ec.max_batched_tokens = 64;
    ec.max_context_len = 96;
    std::vector<EngineClient*> raw;
    for (int e = 0; e < num_engines; ++e) {
      engines.push_back(std::make_unique<Engine>(model, ec, &qwen3_tokenizer()));
      raw.push_back(engines.back().get());
    }
    router = std::make_unique<Router>(raw);
  }
};

// An engine whose steps take at least `delay`: a test that needs the reward thread to score a group while others are
// still generating then holds on a loaded machine too (the scheduler may keep that thread off the CPU for a while).
class PacedEngine : public EngineClient {
 public:
  PacedEngine(Engine& engine, std::chrono::microseconds delay) : engine_(engine), delay_(delay) {}
  int64_t add_request(GenerateRequest request) override { return engine_.add_request(std::move(request)); }
  std::vector<GenerateOutput> step() override {
    std::this_thread::sleep_for(delay_);
    return engine_.step();
  }
  void abort_all() override { engine_.abort_all(); }

 private:
  Engine& engine_;
  std::chrono::microseconds delay_;
};

// Reward: label "const" -> 1 whatever the response; otherwise the byte sum of the response mod 7.
class ScriptedReward : public reward::RewardModel {
 public:
  std::atomic<int> single_calls{0}, group_calls{0};
  std::string fail_on_label;
  reward::RewardValue score(const reward::RewardInput& in) override {
    ++single_calls;
    if (!fail_on_label.empty() && in.label == fail_on_label) throw Error("the verifier crashed");
    return {value_of(in), nullptr};
  }
  std::vector<reward::RewardValue> score_group(const std::vector<reward::RewardInput>& inputs) override {
    ++group_calls;
    std::vector<reward::RewardValue> out;
    for (const auto& in : inputs) out.push_back({value_of(in), nullptr});
    return out;
  }
  static double value_of(const reward::RewardInput& in) {
    if (in.label == "const") return 1.0;
    int sum = 0;
    for (unsigned char ch : in.response) sum += ch;
    return sum % 7;
  }
};

std::shared_ptr<data::PromptDataset> make_dataset(const std::vector<std::string>& labels, int64_t prompt_len = 6) {
  std::vector<data::Sample> samples;
  for (size_t i = 0; i < labels.size(); ++i) {
    data::Sample s;
    s.prompt = cat("prompt ", i);
    s.label = labels[i];
    for (int64_t t = 0; t < prompt_len; ++t) s.tokens.push_back(static_cast<int32_t>((i * 7 + t * 3) % 64));
    samples.push_back(s);
  }
  return std::make_shared<data::PromptDataset>(data::PromptDataset::from_samples(samples, "test prompts"));
}

RolloutConfig base_config(int64_t batch, int64_t n, int64_t over, int64_t max_new) {
  RolloutConfig c;
  c.rollout_batch_size = batch;
  c.n_samples_per_prompt = n;
  c.over_sampling_batch_size = over;
  c.sampling.temperature = 1.0f;
  c.sampling.max_new_tokens = max_new;
  c.eval_sampling = c.sampling;
  c.rollout_seed = 7;
  c.worker_threads = 3;
  return c;
}

double group_std(const data::SampleGroup& g) {
  double mean = 0, sq = 0;
  for (const auto& s : g) mean += s.reward;
  mean /= static_cast<double>(g.size());
  for (const auto& s : g) sq += (s.reward - mean) * (s.reward - mean);
  return std::sqrt(sq / static_cast<double>(g.size() - 1));
}

void check_sample_shape(const data::Sample& s, int64_t prompt_len) {
  CHECK(s.prompt_length() == prompt_len);
  CHECK(static_cast<int64_t>(s.rollout_logprobs.size()) == s.response_length);
  CHECK(static_cast<int64_t>(s.loss_mask.size()) == s.response_length);
  for (float lp : s.rollout_logprobs) CHECK(lp <= 0.0f);
}

}  // namespace

TEST_CASE("dynamic filter: zero-std groups are dropped with slime's reason, the fallback keeps them when short") {
  auto group_of = [](std::vector<double> rewards) {
    data::SampleGroup g(rewards.size());
    for (size_t i = 0; i < rewards.size(); ++i) g[i].reward = rewards[i];
    return g;
  };
  CHECK(check_reward_nonzero_std(group_of({0, 1, 1, 1})).keep);
  DynamicFilterResult flat = check_reward_nonzero_std(group_of({1, 1, 1, 1}));
  CHECK_FALSE(flat.keep);
  CHECK(flat.reason == "zero_std_1.0");
  CHECK(check_reward_nonzero_std(group_of({-0.5, -0.5})).reason == "zero_std_-0.5");
  CHECK(check_reward_nonzero_std(group_of({0.26, 0.26})).reason == "zero_std_0.3");
  CHECK_FALSE(check_reward_nonzero_std(group_of({3})).keep);  // one sample: no std (nan), as torch
  // should_drop: a keep never drops; keep_when_insufficient keeps while remaining <= target.
  DynamicFilterResult fallback = flat;
  fallback.keep_when_insufficient = true;
  CHECK(should_drop(flat, 3, 8));
  CHECK_FALSE(should_drop(fallback, 8, 8));
  CHECK(should_drop(fallback, 9, 8));
  CHECK_FALSE(should_drop(DynamicFilterResult{}, 9, 8));
  // The option: built-ins by name or slime's module path; plug-ins; errors name the option.
  CHECK(make_dynamic_filter(std::nullopt) == nullptr);
  DynamicFilter by_module =
      make_dynamic_filter(std::string("slime.rollout.filter_hub.dynamic_sampling_filters.check_reward_nonzero_std"));
  CHECK_FALSE(by_module(group_of({2, 2})).keep);
  CHECK(make_dynamic_filter(std::string("check_reward_nonzero_std_with_fallback"))(group_of({2, 2}))
            .keep_when_insufficient);
  CHECK_THROWS_WITH(make_dynamic_filter(std::string("check_reward_positive")),
                    Catch::Contains("--dynamic-sampling-filter-path 'check_reward_positive': not a built-in filter"));
  CHECK_THROWS_WITH(make_dynamic_filter(std::string("/nonexistent/libf.so:keep")),
                    Catch::Contains("plug-in library '/nonexistent/libf.so' not found"));
  CHECK_THROWS_WITH(make_dynamic_filter(std::string(SLIME_ROLLOUT_TEST_PLUGIN) + ":no_such_filter"),
                    Catch::Contains("symbol 'no_such_filter' not found"));
  DynamicFilter plugin = make_dynamic_filter(std::string(SLIME_ROLLOUT_TEST_PLUGIN) + ":keep_if_label_wanted");
  data::SampleGroup wanted = group_of({1, 1});
  wanted[0].label = "wanted";
  CHECK(plugin(wanted).keep);
  DynamicFilterResult unwanted = plugin(group_of({0, 1}));
  CHECK_FALSE(unwanted.keep);
  CHECK(unwanted.reason == "unwanted");
  data::SampleGroup explode = group_of({1, 1});
  explode[0].label = "explode";
  CHECK_THROWS_WITH(plugin(explode), Catch::Contains("returned -1: cannot judge an exploding group"));
}

TEST_CASE("over-sampling with the DAPO filter keeps --rollout-batch-size groups, all with non-zero reward std") {
  Pool pool;
  ScriptedReward rm;
  RolloutGenerator gen(*pool.router, qwen3_tokenizer(), rm, base_config(3, 4, 4, 6));
  gen.set_dynamic_filter(make_dynamic_filter(std::string("check_reward_nonzero_std")));
  data::DataSource source(make_dataset({"const", "vary", "const", "vary", "const", "const", "vary", "vary", "const",
                                        "vary", "vary", "const"}),
                          data::DataSourceOptions{4, false, 1});
  RolloutOutput out = gen.generate_rollout(0, source);
  REQUIRE(out.groups.size() == 3);
  int64_t const_groups = 0, last_index = -1;
  for (const data::SampleGroup& g : out.all_groups) const_groups += g.front().label == "const";
  CHECK(out.metrics.at("rollout/dynamic_filter/drop_zero_std_1.0") == const_groups);
  CHECK(const_groups > 0);
  CHECK(out.metrics.at("rollout/groups_dropped") == const_groups);
  CHECK(out.all_groups.size() >= 3 + static_cast<size_t>(const_groups));
  for (const data::SampleGroup& g : out.groups) {
    REQUIRE(g.size() == 4);
    CHECK(g.front().label == "vary");
    CHECK(group_std(g) > 1e-6);
    CHECK(g.front().index > last_index);  // sorted by sample index
    last_index = g.back().index;
    for (const data::Sample& s : g) {
      check_sample_shape(s, 6);
      CHECK(s.response_length == 6);
      CHECK(s.status == data::SampleStatus::Truncated);
      CHECK(s.reward == ScriptedReward::value_of({"", s.response, s.label, {}}));
      CHECK(s.group_index == g.front().group_index);
      CHECK(s.weight_versions == std::vector<std::string>{"0"});
    }
  }
  CHECK(source.buffer_size() == 0);  // without --partial-rollout the surplus is discarded, as in slime
  CHECK_FALSE(pool.router->has_unfinished());
  CHECK(out.metrics.at("rollout/truncated_ratio") == 1.0);

  SECTION("the fallback filter keeps zero-std groups rather than over-sampling again") {
    RolloutGenerator fallback(*pool.router, qwen3_tokenizer(), rm, base_config(2, 2, 2, 4));
    fallback.set_dynamic_filter(make_dynamic_filter(std::string("check_reward_nonzero_std_with_fallback")));
    data::DataSource flat(make_dataset({"const", "const", "const", "const"}), data::DataSourceOptions{2, false, 1});
    RolloutOutput kept = fallback.generate_rollout(1, flat);
    CHECK(kept.groups.size() == 2);
    CHECK(flat.sample_group_index() == 2);  // no second refill
    CHECK(kept.metrics.count("rollout/dynamic_filter/drop_zero_std_1.0") == 0);
  }
}

TEST_CASE("the same seed gives the same rollout with one engine or two, and any number of worker threads") {
  auto run = [](int engines, int64_t workers, int64_t max_running) {
    Pool pool(engines, max_running);
    ScriptedReward rm;
    RolloutConfig c = base_config(4, 3, 4, 8);
    c.worker_threads = workers;
    RolloutGenerator gen(*pool.router, qwen3_tokenizer(), rm, c);
    data::DataSource source(make_dataset({"a", "b", "c", "d", "e"}), data::DataSourceOptions{3, false, 1});
    return gen.generate_rollout(0, source).groups;
  };
  const auto one = run(1, 1, 256);
  const auto two = run(2, 5, 3);  // two engines, few running slots: other batch compositions, queueing
  REQUIRE(one.size() == two.size());
  for (size_t g = 0; g < one.size(); ++g)
    for (size_t i = 0; i < one[g].size(); ++i) {
      INFO("group " << g << " sample " << i);
      CHECK(one[g][i].tokens == two[g][i].tokens);
      CHECK(one[g][i].reward == two[g][i].reward);
      for (size_t t = 0; t < one[g][i].rollout_logprobs.size(); ++t)
        CHECK(one[g][i].rollout_logprobs[t] == Approx(two[g][i].rollout_logprobs[t]).margin(1e-5));
    }
  // Samples of a group differ (distinct seeds), as do groups.
  CHECK(one[0][0].tokens != one[0][1].tokens);
}

TEST_CASE("partial rollout: groups in flight go back to the buffer and continue next rollout") {
  // Two running slots: group 0 generates first; when it is scored, group 1 is usually part way and groups 2-3
  // wait (how far group 1 got depends on when the reward thread runs: the checks hold for any point). Steps are
  // paced (2 ms) so that the reward comes back before groups 1-3 finish even when the machine is busy.
  Pool pool(1, 2);
  PacedEngine paced(*pool.engines[0], std::chrono::milliseconds(2));
  Router router({&paced});
  ScriptedReward rm;
  RolloutConfig c = base_config(1, 2, 4, 40);
  c.partial_rollout = true;
  c.mask_offpolicy_in_partial_rollout = true;
  RolloutGenerator gen(router, qwen3_tokenizer(), rm, c);
  data::DataSource source(make_dataset({"a", "b", "c", "d", "e", "f"}), data::DataSourceOptions{2, false, 1});
  RolloutOutput first = gen.generate_rollout(3, source);
  REQUIRE(first.groups.size() == 1);
  CHECK(first.groups[0][0].response_length == 40);
  CHECK(first.groups_to_buffer == 3);
  REQUIRE(source.buffer_size() == 3);
  std::map<int64_t, data::Sample> before;  // sample index -> its state in the buffer
  int64_t aborted = 0;
  for (const data::SampleGroup& g : source.buffer())
    for (const data::Sample& s : g) {
      before[s.index] = s;
      aborted += s.status == data::SampleStatus::Aborted;
      // Finished surplus groups come back as they are; aborted ones with what they had generated.
      CHECK(s.response_length == (s.status == data::SampleStatus::Truncated ? 40 : s.response_length));
      if (s.status == data::SampleStatus::Aborted) CHECK(s.response_length < 40);
      if (s.response_length > 0) CHECK(s.metadata.at("start_rollout_id") == 3);
    }
  // Group 3 cannot start before groups 1 and 2 have generated 80 tokens; group 0's reward comes back long before.
  CHECK(aborted >= 2);

  // The next rollout takes the buffered groups first and finishes them.
  RolloutConfig c2 = c;
  c2.rollout_batch_size = 3;
  c2.over_sampling_batch_size = 3;
  RolloutGenerator gen2(router, qwen3_tokenizer(), rm, c2);
  RolloutOutput second = gen2.generate_rollout(4, source);
  REQUIRE(second.groups.size() == 3);
  for (const data::SampleGroup& g : second.groups)
    for (const data::Sample& s : g) {
      INFO("sample " << s.index);
      REQUIRE(before.count(s.index) == 1);
      const data::Sample& old = before.at(s.index);
      CHECK(s.response_length == 40);  // max_new_tokens counts what the earlier rollout generated
      CHECK(std::equal(old.tokens.begin(), old.tokens.end(), s.tokens.begin()));  // continued, not restarted
      for (int64_t t = 0; t < s.response_length; ++t)  // --mask-offpolicy-in-partial-rollout
        CHECK(s.loss_mask[t] == (t < old.response_length ? 0 : 1));
      CHECK(s.reward == ScriptedReward::value_of({"", s.response, s.label, {}}));
      check_sample_shape(s, 6);
    }
}

TEST_CASE("--group-rm scores each group once, through score_group") {
  Pool pool;
  ScriptedReward rm;
  RolloutConfig c = base_config(2, 3, 2, 5);
  c.group_rm = true;
  RolloutGenerator gen(*pool.router, qwen3_tokenizer(), rm, c);
  data::DataSource source(make_dataset({"x", "y"}), data::DataSourceOptions{3, false, 1});
  RolloutOutput out = gen.generate_rollout(0, source);
  CHECK(rm.group_calls == 2);
  CHECK(rm.single_calls == 0);
  for (const auto& g : out.groups)
    for (const auto& s : g) CHECK(s.reward == ScriptedReward::value_of({"", s.response, s.label, {}}));
}

TEST_CASE("a custom generate plug-in runs multi-turn samples on worker threads; tool tokens are masked") {
  Pool pool(2, 4);
  ScriptedReward rm;
  RolloutGenerator gen(*pool.router, qwen3_tokenizer(), rm, base_config(3, 2, 3, 10));
  gen.set_generate_plugin(GeneratePlugin::load(std::string(SLIME_ROLLOUT_TEST_PLUGIN) + ":two_turn_generate"));
  data::DataSource source(make_dataset({"a", "b", "c"}), data::DataSourceOptions{2, false, 1});
  RolloutOutput out = gen.generate_rollout(0, source);
  REQUIRE(out.groups.size() == 3);
  for (const auto& g : out.groups)
    for (const data::Sample& s : g) {
      check_sample_shape(s, 6);
      REQUIRE(s.response_length == 10);  // 5 model tokens, 2 tool tokens, 3 model tokens
      const std::vector<int32_t> mask = {1, 1, 1, 1, 1, 0, 0, 1, 1, 1};
      CHECK(s.loss_mask == mask);
      CHECK(s.tokens[6 + 5] == 1);
      CHECK(s.tokens[6 + 6] == 2);
      CHECK(s.rollout_logprobs[5] == 0.0f);
      CHECK(s.rollout_logprobs[4] < 0.0f);
      CHECK(s.status == data::SampleStatus::Truncated);
      CHECK(s.metadata.at("turns") == 2);
      CHECK(s.reward == ScriptedReward::value_of({"", s.response, s.label, {}}));
    }
  CHECK(out.groups[0][0].tokens != out.groups[0][1].tokens);
}

TEST_CASE("failures abort everything in flight and name the sample; the engines stay usable") {
  Pool pool;
  ScriptedReward rm;
  SECTION("a prompt longer than the context") {
    RolloutGenerator gen(*pool.router, qwen3_tokenizer(), rm, base_config(2, 2, 2, 5));
    data::DataSource source(make_dataset({"a", "b"}, 100), data::DataSourceOptions{2, false, 1});
    CHECK_THROWS_WITH(gen.generate_rollout(0, source), Catch::Contains("sample 0") &&
                                                           Catch::Contains("the context length is 96"));
  }
  SECTION("a reward that throws") {
    rm.fail_on_label = "boom";
    RolloutGenerator gen(*pool.router, qwen3_tokenizer(), rm, base_config(2, 2, 2, 5));
    data::DataSource source(make_dataset({"ok", "boom"}), data::DataSourceOptions{2, false, 1});
    CHECK_THROWS_WITH(gen.generate_rollout(0, source), Catch::Contains("reward of sample") && Catch::Contains("the verifier crashed"));
  }
  SECTION("a filter plug-in that fails") {
    RolloutGenerator gen(*pool.router, qwen3_tokenizer(), rm, base_config(1, 2, 2, 5));
    gen.set_dynamic_filter(make_dynamic_filter(std::string(SLIME_ROLLOUT_TEST_PLUGIN) + ":keep_if_label_wanted"));
    data::DataSource source(make_dataset({"explode", "explode"}), data::DataSourceOptions{2, false, 1});
    CHECK_THROWS_WITH(gen.generate_rollout(0, source), Catch::Contains("cannot judge an exploding group"));
  }
  SECTION("a generate plug-in path that does not load") {
    CHECK_THROWS_WITH(GeneratePlugin::load("/nonexistent/libgen.so:generate"), Catch::Contains("not found"));
    CHECK_THROWS_WITH(GeneratePlugin::load(std::string(SLIME_ROLLOUT_TEST_PLUGIN) + ":missing_symbol"),
                      Catch::Contains("missing_symbol"));
  }
  CHECK_FALSE(pool.router->has_unfinished());
  // The same engines serve the next rollout.
  RolloutGenerator gen(*pool.router, qwen3_tokenizer(), rm, base_config(1, 2, 1, 3));
  data::DataSource source(make_dataset({"fine"}), data::DataSourceOptions{2, false, 1});
  CHECK(gen.generate_rollout(1, source).groups.size() == 1);
}
