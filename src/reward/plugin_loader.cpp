// Reward plug-ins through dlopen/dlsym (see plugin.h for the ABI, plugin_loader.h for the errors).
#include "reward/plugin_loader.h"

#include <dlfcn.h>

#include <cmath>

#include "core/error.h"
#include "core/io.h"

namespace slime::reward {

PluginRewardModel::PluginRewardModel(const std::string& spec) {
  size_t colon = spec.rfind(':');
  SLIME_CHECK(colon != std::string::npos && colon > 0 && colon + 1 < spec.size(), "--custom-rm-path '", spec,
              "': expected path/to/lib.so:symbol (a shared library built against src/reward/plugin.h and the name of "
              "its reward function)");
  library_path_ = spec.substr(0, colon);
  symbol_ = spec.substr(colon + 1);
  SLIME_CHECK(path_exists(library_path_), "--custom-rm-path: reward plug-in file '", library_path_,
              "' does not exist (looking for symbol '", symbol_, "')");
  // A path without a slash would make dlopen search the library path instead of opening this file.
  std::string open_path = library_path_.find('/') == std::string::npos ? "./" + library_path_ : library_path_;
  dlerror();
  handle_ = dlopen(open_path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle_ == nullptr) {
    const char* reason = dlerror();
    SLIME_FAIL("--custom-rm-path: cannot load reward plug-in '", library_path_, "': ", reason ? reason : "unknown");
  }
  dlerror();
  void* address = dlsym(handle_, symbol_.c_str());
  const char* reason = dlerror();
  if (address == nullptr || reason != nullptr) {
    std::string detail = reason ? reason : "the symbol is null";
    dlclose(handle_);
    handle_ = nullptr;
    SLIME_FAIL("--custom-rm-path: symbol '", symbol_, "' not found in reward plug-in '", library_path_, "' (", detail,
               "); it must be exported with extern \"C\" and the signature of slime_reward_v1_fn in "
               "src/reward/plugin.h");
  }
  function_ = reinterpret_cast<slime_reward_v1_fn>(address);
}

PluginRewardModel::~PluginRewardModel() {
  if (handle_ != nullptr) dlclose(handle_);
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
