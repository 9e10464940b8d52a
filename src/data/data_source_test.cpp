// DataSource tests: groups and counters, epoch wrap-around with and without shuffle, the buffer served first,
// state save/load reproducing the next batches exactly (with buffered partial groups), and the errors.
#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <set>

#include "core/error.h"
#include "data/data_source.h"

using slime::data::DataSource;
using slime::data::DataSourceOptions;
using slime::data::epoch_order;
using slime::data::ordered_json;
using slime::data::PromptDataset;
using slime::data::Sample;
using slime::data::SampleGroup;
using slime::data::TurnInfo;

namespace {

// Prompts "p0" .. "p<n-1>", each with its number as label.
std::shared_ptr<const PromptDataset> numbered_prompts(int n) {
  std::vector<Sample> samples;
  for (int i = 0; i < n; ++i) {
    Sample s;
    s.prompt = "p" + std::to_string(i);
    s.label = i;
    s.tokens = {1000 + i};
    samples.push_back(s);
  }
  return std::make_shared<const PromptDataset>(PromptDataset::from_samples(samples, "numbered"));
}

DataSourceOptions options(int64_t n_samples, bool shuffle, int64_t seed = 42) {
  DataSourceOptions o;
  o.n_samples_per_prompt = n_samples;
  o.rollout_shuffle = shuffle;
  o.rollout_seed = seed;
  return o;
}

// The prompt number of each group.
std::vector<int> prompt_ids(const std::vector<SampleGroup>& groups) {
  std::vector<int> out;
  for (const auto& group : groups) out.push_back(group.at(0).label.get<int>());
  return out;
}

std::vector<int> draw(DataSource& source, int batches, int64_t per_batch) {
  std::vector<int> out;
  for (int b = 0; b < batches; ++b)
    for (int id : prompt_ids(source.get_samples(per_batch))) out.push_back(id);
  return out;
}

std::string dump(const std::vector<SampleGroup>& groups) {
  ordered_json doc = ordered_json::array();
  for (const auto& group : groups)
    for (const auto& sample : group) doc.push_back(sample.to_json());
  return doc.dump();
}

// A group whose samples were partly generated, as partial rollout puts back.
SampleGroup partial_group(const SampleGroup& fresh, int generated) {
  SampleGroup group = fresh;
  for (size_t i = 0; i < group.size(); ++i) {
    std::vector<int32_t> tokens(static_cast<size_t>(generated), static_cast<int32_t>(7 + i));
    std::vector<float> logprobs(static_cast<size_t>(generated), -0.125f * static_cast<float>(i + 1));
    TurnInfo turn;
    turn.finish_reason = "abort";
    turn.weight_version = "4";
    group[i].append_response_tokens(tokens, logprobs, true, turn, "partial");
  }
  return group;
}

}  // namespace

TEST_CASE("groups hold n_samples_per_prompt copies with group and sample counters", "[data_source]") {
  DataSource source(numbered_prompts(5), options(3, false));
  const auto groups = source.get_samples(2);
  REQUIRE(groups.size() == 2);
  for (int g = 0; g < 2; ++g) {
    REQUIRE(groups[g].size() == 3);
    for (int i = 0; i < 3; ++i) {
      CHECK(groups[g][i].prompt == "p" + std::to_string(g));
      CHECK(groups[g][i].tokens == std::vector<int32_t>{1000 + g});
      CHECK(groups[g][i].group_index == g);
      CHECK(groups[g][i].index == 3 * g + i);
    }
  }
  const auto next = source.get_samples(1);
  CHECK(next[0][0].group_index == 2);
  CHECK(next[0][2].index == 8);
  CHECK(source.get_samples(0).empty());
}

TEST_CASE("without shuffle epochs wrap around in file order", "[data_source]") {
  DataSource source(numbered_prompts(5), options(1, false));
  CHECK(draw(source, 1, 2) == std::vector<int>{0, 1});
  CHECK(draw(source, 1, 3) == std::vector<int>{2, 3, 4});
  // The epoch ends lazily, as slime: the offset rests at the end until more prompts are asked for.
  CHECK(source.epoch_id() == 0);
  CHECK(source.sample_offset() == 5);
  CHECK(draw(source, 1, 2) == std::vector<int>{0, 1});
  CHECK(source.epoch_id() == 1);
  CHECK(draw(source, 1, 4) == std::vector<int>{2, 3, 4, 0});
  CHECK(source.epoch_id() == 2);
  // A request larger than the dataset spans several epochs.
  CHECK(draw(source, 1, 12) == std::vector<int>{1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1, 2});
  CHECK(source.epoch_id() == 4);
  CHECK(source.sample_offset() == 3);
}

TEST_CASE("epoch_order is a deterministic permutation that changes with the epoch and the seed", "[data_source]") {
  const int64_t n = 50;
  const auto e0 = epoch_order(n, true, 42, 0);
  std::vector<int64_t> sorted = e0;
  std::sort(sorted.begin(), sorted.end());
  CHECK(sorted == epoch_order(n, false, 42, 0));  // a permutation of 0..n-1
  CHECK(e0 == epoch_order(n, true, 42, 0));       // deterministic
  CHECK(e0 != epoch_order(n, true, 42, 1));       // another epoch
  CHECK(e0 != epoch_order(n, true, 7, 0));        // another seed
  CHECK(epoch_order(n, true, 41, 1) == epoch_order(n, true, 42, 0));  // seeded by seed + epoch, as slime
  CHECK(e0 != sorted);
  CHECK(epoch_order(1, true, 42, 0) == std::vector<int64_t>{0});
  CHECK(epoch_order(0, true, 42, 0).empty());

  // Every position receives every element about equally often over many seeds (no biased shuffle).
  std::map<std::pair<int64_t, int64_t>, int> counts;
  const int seeds = 4000;
  for (int seed = 0; seed < seeds; ++seed) {
    const auto order = epoch_order(4, true, seed * 1000, 0);
    for (int64_t pos = 0; pos < 4; ++pos) ++counts[{pos, order[pos]}];
  }
  for (const auto& [key, count] : counts) {
    CHECK(count > seeds / 4 - 150);
    CHECK(count < seeds / 4 + 150);
  }
  CHECK(counts.size() == 16);
}

TEST_CASE("with shuffle every prompt is served exactly once per epoch", "[data_source]") {
  const int n = 7;
  DataSource source(numbered_prompts(n), options(2, true, 123));
  // Batches of 3 do not divide 7: epochs straddle batches.
  const std::vector<int> served = draw(source, 7, 3);  // 21 prompts = 3 epochs
  REQUIRE(served.size() == 21);
  for (int epoch = 0; epoch < 3; ++epoch) {
    const std::vector<int> window(served.begin() + epoch * n, served.begin() + (epoch + 1) * n);
    CHECK(std::set<int>(window.begin(), window.end()).size() == static_cast<size_t>(n));
    const auto order = epoch_order(n, true, 123, epoch);
    CHECK(window == std::vector<int>(order.begin(), order.end()));
  }
  CHECK(std::vector<int>(served.begin(), served.begin() + n) != std::vector<int>(served.begin() + n, served.begin() + 2 * n));

  // Deterministic for a seed, different for another.
  DataSource same(numbered_prompts(n), options(2, true, 123));
  CHECK(draw(same, 7, 3) == served);
  DataSource other(numbered_prompts(n), options(2, true, 124));
  CHECK(draw(other, 7, 3) != served);
}

TEST_CASE("buffered groups are served first, oldest first", "[data_source]") {
  DataSource source(numbered_prompts(10), options(2, false));
  const auto first = source.get_samples(3);  // p0 p1 p2, group_index 0..2
  source.add_samples({partial_group(first[2], 2), partial_group(first[0], 1)});
  CHECK(source.buffer_size() == 2);

  const auto next = source.get_samples(3);
  REQUIRE(next.size() == 3);
  CHECK(prompt_ids(next) == std::vector<int>{2, 0, 3});
  // Buffered groups come back as they were put in, counters untouched.
  CHECK(next[0][0].group_index == 2);
  CHECK(next[0][1].response_length == 2);
  CHECK(next[1][0].response_length == 1);
  CHECK(next[0][0].status == slime::data::SampleStatus::Aborted);
  // The fresh group continues the counters.
  CHECK(next[2][0].group_index == 3);
  CHECK(next[2][0].index == 6);
  CHECK(source.buffer_size() == 0);

  // More buffered groups than asked: the rest stays for the next call.
  source.add_samples({first[0], first[1], first[2]});
  CHECK(prompt_ids(source.get_samples(2)) == std::vector<int>{0, 1});
  CHECK(source.buffer_size() == 1);
  CHECK(prompt_ids(source.get_samples(2)) == std::vector<int>{2, 4});
}

TEST_CASE("a custom buffer filter chooses the buffered groups", "[data_source]") {
  DataSource source(numbered_prompts(10), options(1, false));
  const auto groups = source.get_samples(3);
  source.add_samples(groups);
  // Newest first.
  source.set_buffer_filter([](std::vector<SampleGroup>& buffer, int64_t num) {
    std::vector<SampleGroup> taken;
    while (!buffer.empty() && static_cast<int64_t>(taken.size()) < num) {
      taken.push_back(buffer.back());
      buffer.pop_back();
    }
    return taken;
  });
  CHECK(prompt_ids(source.get_samples(2)) == std::vector<int>{2, 1});
  CHECK(prompt_ids(source.get_samples(2)) == std::vector<int>{0, 3});
}

TEST_CASE("add_samples rejects groups of the wrong size", "[data_source]") {
  DataSource source(numbered_prompts(4), options(4, false));
  auto groups = source.get_samples(2);
  groups[1].pop_back();
  CHECK_THROWS_WITH(source.add_samples(groups),
                    Catch::Contains("add_samples: group 1 has 3 samples, expected n_samples_per_prompt = 4"));
  CHECK(source.buffer_size() == 0);  // nothing half-added
  source.add_samples({});
  CHECK(source.buffer_size() == 0);
}

TEST_CASE("state save/load continues with exactly the same batches", "[data_source]") {
  for (bool shuffle : {false, true}) {
    DYNAMIC_SECTION("shuffle " << shuffle) {
      auto dataset = numbered_prompts(9);
      DataSource run(dataset, options(3, shuffle, 5));
      // Three steps, partial groups put back each time; the third crosses into epoch 1 (a reshuffled order that
      // load must rebuild from the saved epoch).
      auto step = run.get_samples(4);
      run.add_samples({partial_group(step[1], 3)});
      step = run.get_samples(4);
      run.add_samples({partial_group(step[3], 1), partial_group(step[0], 2)});
      step = run.get_samples(7);
      run.add_samples({partial_group(step[6], 2), partial_group(step[2], 1)});
      REQUIRE(run.epoch_id() == 1);
      REQUIRE(run.sample_offset() == 3);
      run.metadata()["note"] = "kept";

      const std::string saved = run.state().dump();
      DataSource resumed(dataset, options(3, shuffle, 5));
      resumed.load(ordered_json::parse(saved));
      CHECK(resumed.buffer_size() == 2);
      CHECK(resumed.epoch_id() == run.epoch_id());
      CHECK(resumed.sample_offset() == run.sample_offset());
      CHECK(resumed.metadata()["note"] == "kept");
      CHECK(resumed.state().dump() == saved);

      // The next batches cross an epoch boundary (and reshuffle); both runs must agree exactly.
      for (int64_t batch : {4, 4, 5, 9}) CHECK(dump(resumed.get_samples(batch)) == dump(run.get_samples(batch)));
      CHECK(run.epoch_id() >= 3);
    }
  }
}

TEST_CASE("state holds slime's fields and the buffer", "[data_source]") {
  DataSource source(numbered_prompts(6), options(2, false));
  const auto groups = source.get_samples(4);
  source.add_samples({partial_group(groups[0], 2)});
  const ordered_json state = source.state();
  CHECK(state["sample_offset"] == 4);
  CHECK(state["epoch_id"] == 0);
  CHECK(state["sample_group_index"] == 4);
  CHECK(state["sample_index"] == 8);
  CHECK(state["metadata"] == ordered_json::object());
  CHECK(state["dataset_size"] == 6);
  REQUIRE(state["buffer"].size() == 1);
  CHECK(state["buffer"][0].size() == 2);
  CHECK(state["buffer"][0][1]["rollout_log_probs"] == ordered_json::parse("[-0.25, -0.25]"));
}

TEST_CASE("state load errors name the field", "[data_source]") {
  auto dataset = numbered_prompts(6);
  DataSource source(dataset, options(2, false));
  source.add_samples({source.get_samples(1)});
  const ordered_json good = source.state();

  DataSource other_size(numbered_prompts(7), options(2, false));
  CHECK_THROWS_WITH(other_size.load(good),
                    Catch::Contains("field 'dataset_size': the state was saved with 6 prompts, the dataset now has 7"));
  DataSource other_n(dataset, options(3, false));
  CHECK_THROWS_WITH(other_n.load(good), Catch::Contains("field 'n_samples_per_prompt': saved with 2, now 3"));

  DataSource target(dataset, options(2, false));
  ordered_json bad = good;
  bad["epoch_id"] = "one";
  CHECK_THROWS_WITH(target.load(bad), Catch::Contains("field 'epoch_id': expected an integer, got string"));
  bad = good;
  bad.erase("sample_index");
  CHECK_THROWS_WITH(target.load(bad), Catch::Contains("field 'sample_index' is missing"));
  bad = good;
  bad["sample_offset"] = 9;
  CHECK_THROWS_WITH(target.load(bad), Catch::Contains("field 'sample_offset': 9 is past the end of the 6 prompts"));
  bad = good;
  bad["buffer"][0].erase(1);
  CHECK_THROWS_WITH(target.load(bad),
                    Catch::Contains("buffer group 0 has 1 samples, expected n_samples_per_prompt = 2"));
  bad = good;
  bad["buffer"][0][1]["tokens"] = "x";
  CHECK_THROWS_WITH(target.load(bad), Catch::Contains("buffer group 0 sample 1: field 'tokens'"));
  // A failed load leaves the source as it was.
  CHECK(target.sample_index() == 0);
  CHECK(target.buffer_size() == 0);
}

TEST_CASE("without a dataset get_samples returns empty samples", "[data_source]") {
  DataSource source(nullptr, options(2, true));
  const auto groups = source.get_samples(3);
  REQUIRE(groups.size() == 3);
  CHECK(groups[2][1].prompt == "");
  CHECK(groups[2][1].tokens.empty());
  CHECK(groups[2][1].group_index == 2);
  CHECK(groups[2][1].index == 5);
  CHECK(source.size() == 0);
  CHECK_THROWS_WITH(source.num_rollout_per_epoch(4), Catch::Contains("--num-epoch needs the global prompt dataset"));
  // The state round-trips without a dataset too.
  DataSource resumed(nullptr, options(2, true));
  resumed.load(source.state());
  CHECK(resumed.get_samples(1)[0][0].index == 6);
}

TEST_CASE("num_rollout_per_epoch is len(dataset) // rollout_batch_size", "[data_source]") {
  DataSource source(numbered_prompts(10), options(1, false));
  CHECK(source.num_rollout_per_epoch(3) == 3);
  CHECK(source.num_rollout_per_epoch(10) == 1);
  CHECK(source.num_rollout_per_epoch(11) == 0);
  CHECK_THROWS_WITH(source.num_rollout_per_epoch(0), Catch::Contains("--rollout-batch-size: expected > 0, got 0"));
}
