#include "rollout/dynamic_filter.h"

#include <cmath>
#include <cstdio>
#include <vector>

#include "core/error.h"
#include "core/shared_library.h"

namespace slime::rollout {

namespace {

constexpr const char* kOption = "--dynamic-sampling-filter-path";
constexpr const char* kSlimeModule = "slime.rollout.filter_hub.dynamic_sampling_filters.";

using FilterFn = int32_t (*)(const char* group_json, char* reason, int64_t reason_capacity);

// Python's round(x, 1) printed the way str() prints a float: 1.0, 0.0, -0.5.
std::string rounded_reward(double r) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.1f", std::nearbyint(r * 10.0) / 10.0);
  return buf;
}

}  // namespace

bool should_drop(const DynamicFilterResult& result, int64_t remaining, int64_t target) {
  if (result.keep) return false;
  if (result.keep_when_insufficient && remaining <= target) return false;
  return true;
}

DynamicFilterResult check_reward_nonzero_std(const data::SampleGroup& group) {
  SLIME_CHECK(!group.empty(), "check_reward_nonzero_std: empty group");
  const double n = static_cast<double>(group.size());
  double mean = 0;
  for (const data::Sample& s : group) mean += s.reward;
  mean /= n;
  double sq = 0;
  for (const data::Sample& s : group) sq += (s.reward - mean) * (s.reward - mean);
  const double std = group.size() > 1 ? std::sqrt(sq / (n - 1)) : std::nan("");
  DynamicFilterResult r;
  r.keep = std > 1e-6;  // false for nan
  if (!r.keep) r.reason = "zero_std_" + rounded_reward(group.front().reward);
  return r;
}

DynamicFilter make_dynamic_filter(const std::optional<std::string>& path) {
  if (!path) return {};
  std::string name = *path;
  if (name.rfind(kSlimeModule, 0) == 0) name = name.substr(std::string(kSlimeModule).size());
  if (name == "check_reward_nonzero_std") return check_reward_nonzero_std;
  if (name == "check_reward_nonzero_std_with_fallback") {
    return [](const data::SampleGroup& group) {
      DynamicFilterResult r = check_reward_nonzero_std(group);
      r.keep_when_insufficient = true;
      return r;
    };
  }
  SLIME_CHECK(name.find(".so") != std::string::npos || name.find('/') != std::string::npos, kOption, " '", *path,
              "': not a built-in filter (check_reward_nonzero_std, check_reward_nonzero_std_with_fallback) nor a "
              "plug-in 'path/to/lib.so:symbol'");
  const LibrarySpec spec = parse_library_spec(*path, kOption);
  SharedLibrary library = SharedLibrary::open(spec.path, kOption);
  auto fn = reinterpret_cast<FilterFn>(library.require(spec.symbol, kOption));
  const std::string where = *path;
  return [library, fn, where](const data::SampleGroup& group) {
    nlohmann::ordered_json doc = nlohmann::ordered_json::array();
    for (const data::Sample& s : group) doc.push_back(s.to_json());
    const std::string text = doc.dump();
    std::vector<char> reason(256, '\0');
    const int32_t code = fn(text.c_str(), reason.data(), static_cast<int64_t>(reason.size()));
    reason.back() = '\0';
    const std::string message(reason.data());
    SLIME_CHECK(code >= 0 && code <= 2, kOption, " '", where, "' returned ", code,
                message.empty() ? std::string() : ": " + message);
    DynamicFilterResult r;
    r.keep = code == 1;
    r.keep_when_insufficient = code == 2;
    if (!r.keep) r.reason = message;
    return r;
  };
}

}  // namespace slime::rollout
