// The rollout data source with its buffer (slime's RolloutDataSourceWithBuffer, slime/rollout/data_source.py):
// hands out groups of n_samples_per_prompt copies of a prompt, first from a buffer of groups put back by partial
// or asynchronous rollouts (FIFO by default), then from the prompt dataset, wrapping around epochs.
//
// Shuffle: with rollout_shuffle, epoch e visits the prompts in the order of a Fisher-Yates permutation drawn from
// our Philox generator seeded with (rollout_seed + e). It is NOT Python's random.shuffle (Mersenne Twister), so
// the order differs from slime's for the same seed; it is deterministic and the same on every rank and machine.
//
// State: state() holds slime's dataset position (sample_offset, epoch_id, sample_group_index, sample_index,
// metadata) AND the buffered groups, so a resumed run hands out exactly the batches the interrupted one would
// have (slime drops the buffer on save).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "data/dataset.h"
#include "data/sample.h"

namespace slime::data {

using SampleGroup = std::vector<Sample>;  // [n_samples_per_prompt] copies of one prompt (or their rollouts)

struct DataSourceOptions {
  int64_t n_samples_per_prompt = 1;  // --n-samples-per-prompt
  bool rollout_shuffle = false;      // --rollout-shuffle
  int64_t rollout_seed = 42;         // --rollout-seed
};

// Takes up to `num_groups` groups out of `buffer` and returns them (slime's --buffer-filter-path signature,
// without args and rollout_id).
using BufferFilter = std::function<std::vector<SampleGroup>(std::vector<SampleGroup>& buffer, int64_t num_groups)>;

// The default filter: the oldest groups first (slime's pop_first).
std::vector<SampleGroup> pop_first(std::vector<SampleGroup>& buffer, int64_t num_groups);

// The visiting order of epoch `epoch` over `size` prompts: identity without shuffle, else the Philox
// Fisher-Yates permutation seeded with seed + epoch.
std::vector<int64_t> epoch_order(int64_t size, bool shuffle, int64_t seed, int64_t epoch);

class DataSource {
 public:
  // dataset: null = no global dataset (--disable-rollout-global-dataset or no --prompt-data): get_samples then
  // returns groups of empty Samples, as slime does.
  DataSource(std::shared_ptr<const PromptDataset> dataset, DataSourceOptions options);

  // `num_groups` groups: buffered groups first (through the buffer filter), then fresh prompts, each a group of
  // n_samples_per_prompt copies with group_index (prompt counter) and index (sample counter) set.
  std::vector<SampleGroup> get_samples(int64_t num_groups);
  // Puts groups back (partial rollout, aborted groups of the asynchronous loop); each must hold exactly
  // n_samples_per_prompt samples.
  void add_samples(std::vector<SampleGroup> groups);
  void set_buffer_filter(BufferFilter filter) { buffer_filter_ = std::move(filter); }

  int64_t size() const { return dataset_ ? dataset_->size() : 0; }  // prompts in the dataset (slime's __len__)
  int64_t buffer_size() const { return static_cast<int64_t>(buffer_.size()); }
  // len(dataset) / rollout_batch_size (slime's get_num_rollout_per_epoch); needs a dataset.
  int64_t num_rollout_per_epoch(int64_t rollout_batch_size) const;

  int64_t epoch_id() const { return epoch_id_; }
  int64_t sample_offset() const { return sample_offset_; }
  int64_t sample_group_index() const { return sample_group_index_; }
  int64_t sample_index() const { return sample_index_; }
  // Free-form values carried in the state (slime's update_metadata/get_metadata).
  ordered_json& metadata() { return metadata_; }
  const std::vector<SampleGroup>& buffer() const { return buffer_; }

  // {"sample_offset", "epoch_id", "sample_group_index", "sample_index", "metadata", "dataset_size",
  //  "n_samples_per_prompt", "buffer": [[sample, ...], ...]}.
  ordered_json state() const;
  // Restores a state() document (errors name the field); the dataset must have the size it had.
  void load(const ordered_json& state);

 private:
  std::vector<SampleGroup> groups_from_dataset(int64_t num_groups);
  void check_group(const SampleGroup& group, const std::string& where) const;

  std::shared_ptr<const PromptDataset> dataset_;
  DataSourceOptions options_;
  BufferFilter buffer_filter_ = pop_first;

  int64_t epoch_id_ = 0;
  int64_t sample_offset_ = 0;       // position in the current epoch's order
  int64_t sample_group_index_ = 0;  // next group_index
  int64_t sample_index_ = 0;        // next index
  ordered_json metadata_ = ordered_json::object();
  std::vector<int64_t> order_;      // [size] dataset index visited at each position of the current epoch
  std::vector<SampleGroup> buffer_;
};

}  // namespace slime::data
