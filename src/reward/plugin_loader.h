// Loads a reward plug-in (the C ABI of plugin.h) from "path/to/lib.so:symbol" and scores samples with it.
#pragma once

#include <string>

#include "core/shared_library.h"
#include "reward/plugin.h"
#include "reward/reward.h"

namespace slime::reward {

class PluginRewardModel : public RewardModel {
 public:
  // `spec` is "path/to/lib.so:symbol" (the last ':' separates them). Errors: malformed spec, missing file,
  // dlopen failure (with dlerror), missing symbol — each naming the file and the symbol.
  explicit PluginRewardModel(const std::string& spec);

  // Calls the plug-in; a non-zero return or a non-finite reward is an error naming the plug-in, the code and the
  // plug-in's message.
  RewardValue score(const RewardInput& input) override;

  const std::string& library_path() const { return library_path_; }
  const std::string& symbol() const { return symbol_; }

 private:
  std::string library_path_;
  std::string symbol_;
  SharedLibrary library_;  // dlclose'd with the last copy
  slime_reward_v1_fn function_ = nullptr;
};

}  // namespace slime::reward
