// slime's --save-debug-rollout-data / --load-debug-rollout-data: the samples of a rollout step (with their rewards,
// log-probs, loss masks and weight versions) and its rollout metrics, one file per step, so that a training step
// can be replayed without the engines (--load-debug-rollout-data implies --debug-train-only). On the CPU with the
// same seed and options, a replayed step trains to the same loss bit for bit.
//
// The path is a template: `{rollout_id}` is replaced by the step (slime's `path.format(rollout_id=...)`).
// File layout (little-endian): "SLIMEDRD" | u32 version (1) | i64 rollout_id | u64 n | n bytes of metrics JSON |
// u64 count | count x (u64 n | n bytes: one sample in the data buffer's codec, buffer/sample_codec.h, which carries
// its own checksum). Every error names the file.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "buffer/sample_codec.h"

namespace slime::app {

// `path_template` with every `{rollout_id}` replaced by `rollout_id`.
std::string debug_rollout_path(const std::string& path_template, int64_t rollout_id);

struct DebugRollout {
  std::vector<buffer::BufferedSample> samples;
  std::map<std::string, double> metrics;
};

// Writes the file atomically (its directory is created).
void save_debug_rollout(const std::string& path, int64_t rollout_id, const DebugRollout& rollout);

// Reads a file written by save_debug_rollout for step `rollout_id`. With `subsample` (0, 1], keeps the first
// ceil(subsample x groups) whole groups, in sample-index order (slime's --load-debug-rollout-data-subsample).
DebugRollout load_debug_rollout(const std::string& path, int64_t rollout_id,
                                std::optional<double> subsample = std::nullopt);

}  // namespace slime::app
