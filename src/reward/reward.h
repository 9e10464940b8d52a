// Rewards: the interface the rollout uses to score generated samples, and the factory that picks the reward
// model the way slime's rm_hub dispatch does (custom plug-in > metadata "rm_type" > --rm-type).
//
// Built-in types (slime's names): math, deepscaler, dapo, f1, gpqa, remote_rm, random; ours: exact_match,
// countdown, arithmetic. A `boxed_` prefix (e.g. boxed_f1) first replaces the response by the content of its last
// \boxed{} (empty when there is none), as slime; remote_rm always receives the full response, as slime.
// `random` is a 0/1 draw that is a pure function of (random_seed, prompt, response, label), so it is reproducible
// whatever the order or threading of the calls (slime draws random.randint(0, 1) on each call).
//
// Thread safety: score() and score_group() of the built-in and remote models may be called from several threads
// at once; a plug-in model is as thread-safe as the plug-in's function.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace slime::reward {

struct RewardInput {
  std::string prompt;               // the rendered prompt text
  std::string response;             // the generated text
  nlohmann::ordered_json label;     // ground truth (string, number or object)
  nlohmann::ordered_json metadata;  // dataset metadata; a string "rm_type" overrides the default type
};

// A reward is a number, or a JSON object (slime's dict rewards, e.g. dapo's {"score", "acc", "pred"}) from
// which --reward-key picks the number. `details` is the raw reward: the number itself or the whole object.
struct RewardValue {
  double value = 0;
  nlohmann::ordered_json details;
};

class RewardModel {
 public:
  virtual ~RewardModel() = default;
  virtual RewardValue score(const RewardInput& input) = 0;
  // A group of samples of one prompt (slime's --group-rm); default: score each in order.
  virtual std::vector<RewardValue> score_group(const std::vector<RewardInput>& inputs);
};

struct RewardOptions {
  std::optional<std::string> rm_type;         // --rm-type
  std::optional<std::string> rm_url;          // --rm-url (remote_rm)
  std::optional<std::string> custom_rm_path;  // --custom-rm-path path/to/lib.so:symbol
  std::optional<std::string> reward_key;      // --reward-key (or --eval-reward-key for evaluation)
  double timeout_seconds = 120;               // remote_rm: connect / read / write timeout of one attempt
  int max_retries = 10;                       // remote_rm: attempts in all, as slime's max_retries
  double backoff_seconds = 0.5;               // remote_rm: wait before retry k is min(backoff * 2^k, 30) + jitter
  int max_concurrency = 64;                   // remote_rm: requests in flight in score_group (slime: 64)
  uint64_t random_seed = 0;                   // `random`: seed of the 0/1 draws (e.g. --rollout-seed)
};

// Builds the reward model slime's dispatch would use. Errors name the option and list the known types:
// an unknown --rm-type, remote_rm without --rm-url, a dict reward (dapo) without --reward-key, a plug-in that
// cannot be loaded.
std::unique_ptr<RewardModel> make_reward_model(const RewardOptions& options);

// The built-in type names (without the boxed_ prefix), for help texts and error messages.
const std::vector<std::string>& builtin_reward_types();

// The number a raw reward stands for: a number is itself; an object needs `reward_key` naming a numeric (or
// boolean) field. Errors say where the reward came from (`source`) and what it holds.
double select_reward_value(const nlohmann::ordered_json& reward, const std::optional<std::string>& reward_key,
                           const std::string& source);

}  // namespace slime::reward
