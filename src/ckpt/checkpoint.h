// Training checkpoints in HDF5 with Megatron-core names, resharding-friendly and crash-safe.
//
//   <root>/iter_0000100/model.h5       every parameter as one dataset of its full (global) shape, named as in
//                                      Megatron-core; root attributes: format_version, iteration, rollout_id,
//                                      consumed_samples, model_config (HF config.json), megatron, args, trainer,
//                                      rng (JSON strings)
//   <root>/iter_0000100/optimizer.h5   groups exp_avg/ and exp_avg_sq/ with the same dataset names; attribute step
//   <root>/latest_checkpointed_iteration.txt   written last, by atomic rename (as Megatron does)
//
// Every rank of the trainer pool takes part (collective parallel HDF5). A rank writes its tensor-parallel shard of
// each parameter as a union of hyperslabs of the global dataset (data-parallel replicas and TP replicas of
// replicated tensors write nothing), and its data-parallel share of the Adam moments; loading reads whatever the
// loading layout needs, so a checkpoint saved with one TP/DP layout loads with another.
//
// Each dataset carries an order-independent checksum (a sum of per-element hashes over global positions) that the
// loader verifies. An iteration is written into iter_XXXXXXX.partial/ and renamed into place only when complete; a
// crash leaves the previous iteration and the tracker untouched.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "comm/parallel.h"
#include "core/io.h"
#include "model/config.h"
#include "model/params.h"

namespace slime::ckpt {

constexpr int64_t kCheckpointFormatVersion = 1;

// Everything in a checkpoint besides tensors.
struct CheckpointState {
  int64_t iteration = 0;
  int64_t rollout_id = -1;
  int64_t consumed_samples = 0;
  int64_t optimizer_step = 0;  // Adam's step count (stored in optimizer.h5)
  json model_config;           // the HF config.json of the model: conversion back needs no other input
  json megatron;               // padded_vocab_size, make_vocab_size_divisible_by, the saver's tp/dp sizes
  json args;                   // slime-train options
  json trainer;                // LR scheduler state, dataset position, ... (owned by the trainer)
  json rng;                    // random-generator states, one entry per trainer rank
};

// The Adam moments of the elements [begin, end) (local flat coordinates of the parameter's shard) this rank owns.
struct OptimizerShard {
  const model::Param* param;
  int64_t begin, end;
  float* exp_avg;
  float* exp_avg_sq;
};

struct SaveOptions {
  bool save_optimizer = true;             // false: --no-save-optim (no exact resume)
  std::optional<int64_t> keep_last_n;     // delete older iterations beyond the newest N
};

struct LoadOptions {
  bool load_optimizer = true;             // false: --no-load-optim / --finetune
  const model::ModelConfig* expect_config = nullptr;  // checked against the stored config when given
  // Parameters left as they are (not read); datasets the model lacks are then tolerated too. A critic started
  // from an actor checkpoint skips its value head (output_layer.*), as slime re-initialises it.
  std::vector<std::string> skip_params;
};

std::string iteration_dir(const std::string& root, int64_t iteration);  // <root>/iter_0000100
std::string tracker_path(const std::string& root);                      // <root>/latest_checkpointed_iteration.txt

// Collective over groups.pool. `optimizer` may be empty when options.save_optimizer is false.
void save_checkpoint(const std::string& root, const CheckpointState& state, const model::ParamRegistry& params,
                     const std::vector<OptimizerShard>& optimizer, const comm::ParallelGroups& groups,
                     const SaveOptions& options);

// The iteration to load from `root`: `step` if given (it must exist), else the tracker's. nullopt when `root` has
// no tracker file (not a checkpoint directory: slime then starts from --ref-load or an HF model).
std::optional<int64_t> find_checkpoint(const std::string& root, std::optional<int64_t> step = std::nullopt);

// Collective over groups.pool. Fills every parameter's local shard (and the optimizer shards unless disabled) and
// returns the stored state. Errors name the file and the dataset: missing or extra datasets, shape or config
// mismatch, checksum mismatch, unreadable (truncated, corrupt) files.
CheckpointState load_checkpoint(const std::string& root, int64_t iteration, model::ParamRegistry& params,
                                const std::vector<OptimizerShard>& optimizer, const comm::ParallelGroups& groups,
                                const LoadOptions& options);

// Reads the attributes of an iteration's model.h5 (one process, no collective).
CheckpointState read_checkpoint_state(const std::string& root, int64_t iteration);

// One process reads a whole dataset (conversion tools, inspection) and verifies its checksum. `group` is "" for
// model.h5's parameters, "exp_avg" / "exp_avg_sq" in optimizer.h5.
Tensor read_global_tensor(const std::string& file, const std::string& group, const std::string& name);
// The dataset names of a checkpoint file's group, sorted.
std::vector<std::string> list_tensors(const std::string& file, const std::string& group);

// Errors naming the field when two model configs disagree on what shapes the parameters.
void check_same_model(const json& stored_config, const model::ModelConfig& model, const std::string& where);

// The checksum of a dataset's elements: sum over elements of hash(global index, value bits), modulo 2^64.
// Partial sums over disjoint parts add up to the whole, whichever ranks hold them.
uint64_t element_checksum(int64_t global_index, float value);

}  // namespace slime::ckpt
