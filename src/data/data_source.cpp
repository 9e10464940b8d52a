// DataSource: buffer first, then the dataset in epoch order; the epoch permutation; state save/restore.
#include "data/data_source.h"

#include <algorithm>
#include <numeric>
#include <utility>

#include "core/error.h"
#include "core/io.h"
#include "core/rng.h"

namespace slime::data {

namespace {

// Philox stream reserved for the prompt shuffle, so it never shares numbers with sampling or initialisation.
constexpr uint64_t kShuffleStream = 0x53485546464c45ull;  // "SHUFFLE"

int64_t state_int(const ordered_json& state, const char* key) {
  SLIME_CHECK(state.contains(key), "data source state: field '", key, "' is missing");
  SLIME_CHECK(state[key].is_number_integer(), "data source state: field '", key, "': expected an integer, got ",
              json_type_name(state[key]));
  const int64_t value = state[key].get<int64_t>();
  SLIME_CHECK(value >= 0, "data source state: field '", key, "': expected >= 0, got ", value);
  return value;
}

}  // namespace

std::vector<SampleGroup> pop_first(std::vector<SampleGroup>& buffer, int64_t num_groups) {
  const auto count = static_cast<std::ptrdiff_t>(std::min<int64_t>(num_groups, buffer.size()));
  std::vector<SampleGroup> taken(std::make_move_iterator(buffer.begin()),
                                 std::make_move_iterator(buffer.begin() + count));
  buffer.erase(buffer.begin(), buffer.begin() + count);
  return taken;
}

std::vector<int64_t> epoch_order(int64_t size, bool shuffle, int64_t seed, int64_t epoch) {
  std::vector<int64_t> order(static_cast<size_t>(size));
  std::iota(order.begin(), order.end(), int64_t{0});
  if (!shuffle) return order;
  Rng rng(static_cast<uint64_t>(seed + epoch), kShuffleStream);
  for (int64_t i = size - 1; i > 0; --i) {
    const auto j = static_cast<int64_t>(rng.below(static_cast<uint64_t>(i + 1)));
    std::swap(order[static_cast<size_t>(i)], order[static_cast<size_t>(j)]);
  }
  return order;
}

DataSource::DataSource(std::shared_ptr<const PromptDataset> dataset, DataSourceOptions options)
    : dataset_(std::move(dataset)), options_(options) {
  SLIME_CHECK(options_.n_samples_per_prompt >= 1, "--n-samples-per-prompt: expected >= 1, got ",
              options_.n_samples_per_prompt);
  if (dataset_) {
    SLIME_CHECK(dataset_->size() > 0, "prompt dataset '", dataset_->source(), "' has no prompts");
    order_ = epoch_order(dataset_->size(), options_.rollout_shuffle, options_.rollout_seed, epoch_id_);
  }
}

std::vector<SampleGroup> DataSource::get_samples(int64_t num_groups) {
  SLIME_CHECK(num_groups >= 0, "get_samples: expected a number of groups >= 0, got ", num_groups);
  std::vector<SampleGroup> groups;
  if (!buffer_.empty() && num_groups > 0) {
    groups = buffer_filter_(buffer_, num_groups);
    SLIME_CHECK(static_cast<int64_t>(groups.size()) <= num_groups, "buffer filter returned ", groups.size(),
                " groups, at most ", num_groups, " were asked for");
  }
  std::vector<SampleGroup> fresh = groups_from_dataset(num_groups - static_cast<int64_t>(groups.size()));
  groups.insert(groups.end(), std::make_move_iterator(fresh.begin()), std::make_move_iterator(fresh.end()));
  return groups;
}

std::vector<SampleGroup> DataSource::groups_from_dataset(int64_t num_groups) {
  std::vector<SampleGroup> groups;
  groups.reserve(static_cast<size_t>(num_groups));
  for (int64_t g = 0; g < num_groups; ++g) {
    Sample prompt;  // an empty Sample without a dataset
    if (dataset_) {
      // An epoch ends lazily: the offset may rest at the end until more prompts are asked for (as slime).
      if (sample_offset_ == dataset_->size()) {
        ++epoch_id_;
        sample_offset_ = 0;
        order_ = epoch_order(dataset_->size(), options_.rollout_shuffle, options_.rollout_seed, epoch_id_);
      }
      prompt = (*dataset_)[order_[static_cast<size_t>(sample_offset_++)]];
    }
    SampleGroup group(static_cast<size_t>(options_.n_samples_per_prompt), prompt);
    for (Sample& sample : group) {
      sample.group_index = sample_group_index_;
      sample.index = sample_index_++;
    }
    ++sample_group_index_;
    groups.push_back(std::move(group));
  }
  return groups;
}

void DataSource::check_group(const SampleGroup& group, const std::string& where) const {
  SLIME_CHECK(static_cast<int64_t>(group.size()) == options_.n_samples_per_prompt, where, " has ", group.size(),
              " samples, expected n_samples_per_prompt = ", options_.n_samples_per_prompt);
}

void DataSource::add_samples(std::vector<SampleGroup> groups) {
  for (size_t i = 0; i < groups.size(); ++i) check_group(groups[i], cat("add_samples: group ", i));
  buffer_.insert(buffer_.end(), std::make_move_iterator(groups.begin()), std::make_move_iterator(groups.end()));
}

int64_t DataSource::num_rollout_per_epoch(int64_t rollout_batch_size) const {
  SLIME_CHECK(dataset_ != nullptr, "--num-epoch needs the global prompt dataset (--prompt-data without ",
              "--disable-rollout-global-dataset)");
  SLIME_CHECK(rollout_batch_size > 0, "--rollout-batch-size: expected > 0, got ", rollout_batch_size);
  return dataset_->size() / rollout_batch_size;
}

ordered_json DataSource::state() const {
  ordered_json state = ordered_json::object();
  state["sample_offset"] = sample_offset_;
  state["epoch_id"] = epoch_id_;
  state["sample_group_index"] = sample_group_index_;
  state["sample_index"] = sample_index_;
  state["metadata"] = metadata_;
  state["dataset_size"] = size();
  state["n_samples_per_prompt"] = options_.n_samples_per_prompt;
  ordered_json buffer = ordered_json::array();
  for (const SampleGroup& group : buffer_) {
    ordered_json samples = ordered_json::array();
    for (const Sample& sample : group) samples.push_back(sample.to_json());
    buffer.push_back(std::move(samples));
  }
  state["buffer"] = std::move(buffer);
  return state;
}

void DataSource::load(const ordered_json& state) {
  SLIME_CHECK(state.is_object(), "data source state: expected an object, got ", json_type_name(state));
  const int64_t dataset_size = state_int(state, "dataset_size");
  SLIME_CHECK(dataset_size == size(), "data source state: field 'dataset_size': the state was saved with ",
              dataset_size, " prompts, the dataset now has ", size());
  const int64_t n_samples = state_int(state, "n_samples_per_prompt");
  SLIME_CHECK(n_samples == options_.n_samples_per_prompt, "data source state: field 'n_samples_per_prompt': ",
              "saved with ", n_samples, ", now ", options_.n_samples_per_prompt);
  const int64_t offset = state_int(state, "sample_offset");
  const int64_t epoch_id = state_int(state, "epoch_id");
  const int64_t group_index = state_int(state, "sample_group_index");
  const int64_t sample_index = state_int(state, "sample_index");
  SLIME_CHECK(offset <= size(), "data source state: field 'sample_offset': ", offset, " is past the end of the ",
              size(), " prompts");
  ordered_json metadata = ordered_json::object();
  if (state.contains("metadata") && !state["metadata"].is_null()) {
    SLIME_CHECK(state["metadata"].is_object(), "data source state: field 'metadata': expected an object, got ",
                json_type_name(state["metadata"]));
    metadata = state["metadata"];
  }
  std::vector<SampleGroup> buffer;
  if (state.contains("buffer")) {
    const ordered_json& groups = state["buffer"];
    SLIME_CHECK(groups.is_array(), "data source state: field 'buffer': expected a list of groups, got ",
                json_type_name(groups));
    for (size_t g = 0; g < groups.size(); ++g) {
      const std::string where = cat("data source state: buffer group ", g);
      SLIME_CHECK(groups[g].is_array(), where, ": expected a list of samples, got ", json_type_name(groups[g]));
      SampleGroup group;
      for (size_t i = 0; i < groups[g].size(); ++i)
        group.push_back(Sample::from_json(groups[g][i], cat(where, " sample ", i)));
      check_group(group, where);
      buffer.push_back(std::move(group));
    }
  }

  // Everything is checked: commit.
  sample_offset_ = offset;
  epoch_id_ = epoch_id;
  sample_group_index_ = group_index;
  sample_index_ = sample_index;
  metadata_ = std::move(metadata);
  buffer_ = std::move(buffer);
  if (dataset_) order_ = epoch_order(dataset_->size(), options_.rollout_shuffle, options_.rollout_seed, epoch_id_);
}

}  // namespace slime::data
