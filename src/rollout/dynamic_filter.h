// DAPO's dynamic sampling filter (slime's --dynamic-sampling-filter-path, slime/rollout/filter_hub): decides, once a
// prompt group is generated and scored, whether the rollout keeps it. A dropped group does not count toward
// --rollout-batch-size, so the rollout over-samples until enough groups are kept.
//
// --dynamic-sampling-filter-path takes
//   check_reward_nonzero_std                drop groups whose rewards all agree (std <= 1e-6; reason zero_std_<r>)
//   check_reward_nonzero_std_with_fallback  the same, but keep such a group when dropping it would leave too few
//                                           groups in flight to fill the batch (no extra over-sampling round)
// (slime's module paths slime.rollout.filter_hub.dynamic_sampling_filters.<name> are accepted too), or a plug-in
// "path/to/lib.so:symbol" exporting
//
//   extern "C" int32_t symbol(const char* group_json, char* reason, int64_t reason_capacity);
//
// group_json is the group as a JSON array of samples (data::Sample::to_json). Return 1 = keep, 0 = drop,
// 2 = drop unless too few groups are left (keep_when_insufficient), negative = error; the plug-in may write a
// NUL-terminated reason (a drop's metric name suffix, or the error's message) of at most reason_capacity bytes.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "data/data_source.h"

namespace slime::rollout {

// slime's DynamicFilterOutput.
struct DynamicFilterResult {
  bool keep = true;
  std::string reason;                   // metric suffix of a drop: rollout/dynamic_filter/drop_<reason>
  bool keep_when_insufficient = false;
};

using DynamicFilter = std::function<DynamicFilterResult(const data::SampleGroup& group)>;

// slime's should_drop_dynamic_filter_output: `remaining` is the number of groups still counted toward the batch
// (submitted minus dropped), `target` the batch size.
bool should_drop(const DynamicFilterResult& result, int64_t remaining, int64_t target);

// The built-in filter on the groups' (already selected) scalar rewards: keep iff their unbiased std > 1e-6. A
// group of one sample has no std and is dropped, as torch's std() is nan there.
DynamicFilterResult check_reward_nonzero_std(const data::SampleGroup& group);

// The filter --dynamic-sampling-filter-path names; an empty function when unset. Errors name the option: an unknown
// built-in, a plug-in that does not load or lacks the symbol.
DynamicFilter make_dynamic_filter(const std::optional<std::string>& path);

}  // namespace slime::rollout
