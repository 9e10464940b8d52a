// Reward plug-ins through dlopen/dlsym (see plugin.h for the ABI, plugin_loader.h for the errors).
#include "reward/plugin_loader.h"

#include <cmath>

#include "core/error.h"

namespace slime::reward {

PluginRewardModel::PluginRewardModel(const std::string& spec) {
  constexpr const char* kOption = "--custom-rm-path";
  const LibrarySpec parsed = parse_library_spec(spec, kOption);
  library_path_ = parsed.path;
  symbol_ = parsed.symbol;
  library_ = SharedLibrary::open(library_path_, kOption);
  // The signature cannot be checked: slime_reward_v1_fn in src/reward/plugin.h is the contract.
  function_ = reinterpret_cast<slime_reward_v1_fn>(library_.require(symbol_, kOption));
}

RewardValue PluginRewardModel::score(const RewardInput& input) {
  std::string label_json = input.label.dump();
  std::string metadata_json = input.metadata.is_null() ? "{}" : input.metadata.dump();
  double reward = 0;
  char error[1024] = {0};
  int code = function_(input.prompt.c_str(), input.response.c_str(), label_json.c_str(), metadata_json.c_str(), &reward,
                       error, sizeof(error));
  error[sizeof(error) - 1] = '\0';
  SLIME_CHECK(code == 0, "reward plug-in ", library_path_, ":", symbol_, " failed with code ", code, ": ",
              error[0] ? error : "(no message)");
  SLIME_CHECK(std::isfinite(reward), "reward plug-in ", library_path_, ":", symbol_, " returned a non-finite reward (",
              reward, ")");
  return RewardValue{reward, reward};
}

}  // namespace slime::reward
