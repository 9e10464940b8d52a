// Reward dispatch and factory (see reward.h): resolves the reward type of each sample as slime's rm_hub does and
// runs the matching verifier, the remote client or a plug-in.
#include "reward/reward.h"

#include <algorithm>

#include "core/error.h"
#include "core/rng.h"
#include "reward/countdown.h"
#include "reward/math_verify.h"
#include "reward/plugin_loader.h"
#include "reward/remote.h"
#include "reward/text_match.h"
#include "reward/text_util.h"

namespace slime::reward {

std::vector<RewardValue> RewardModel::score_group(const std::vector<RewardInput>& inputs) {
  std::vector<RewardValue> values;
  values.reserve(inputs.size());
  for (const auto& input : inputs) values.push_back(score(input));
  return values;
}

const std::vector<std::string>& builtin_reward_types() {
  static const std::vector<std::string> kTypes = {"math",        "deepscaler", "dapo",       "f1",     "gpqa",
                                                  "exact_match", "countdown",  "arithmetic", "random", "remote_rm"};
  return kTypes;
}

double select_reward_value(const nlohmann::ordered_json& reward, const std::optional<std::string>& reward_key,
                           const std::string& source) {
  if (reward.is_number()) return reward.get<double>();
  if (reward.is_boolean()) return reward.get<bool>() ? 1.0 : 0.0;
  SLIME_CHECK(reward.is_object(), source, ": a reward must be a number or a JSON object, got ", reward.type_name(), " ",
              reward.dump());
  std::string keys;
  for (auto it = reward.begin(); it != reward.end(); ++it) keys += (keys.empty() ? "" : ", ") + it.key();
  SLIME_CHECK(reward_key.has_value(), source, ": the reward is an object with keys [", keys,
              "]; set --reward-key to the one that holds the reward");
  SLIME_CHECK(reward.contains(*reward_key), source, ": --reward-key '", *reward_key,
              "' is not in the reward object (keys: [", keys, "])");
  const auto& value = reward[*reward_key];
  if (value.is_boolean()) return value.get<bool>() ? 1.0 : 0.0;
  SLIME_CHECK(value.is_number(), source, ": reward field '", *reward_key, "': expected a number, got ",
              value.type_name(), " ", value.dump());
  return value.get<double>();
}

namespace {

std::string known_types_text() {
  std::string text;
  for (const auto& type : builtin_reward_types()) text += (text.empty() ? "" : ", ") + type;
  return text + ", or boxed_<type> for any of them";
}

struct ResolvedType {
  std::string base;    // a name of builtin_reward_types()
  bool boxed = false;  // "boxed_" prefix: score the last \boxed{} content instead of the response
};

std::optional<ResolvedType> resolve_type(const std::string& raw) {
  ResolvedType resolved;
  resolved.base = text::strip(raw);
  if (text::starts_with(resolved.base, "boxed_")) {
    resolved.boxed = true;
    resolved.base = resolved.base.substr(6);
  }
  const auto& types = builtin_reward_types();
  if (std::find(types.begin(), types.end(), resolved.base) == types.end()) return std::nullopt;
  return resolved;
}

uint64_t fnv1a(const std::string& text, uint64_t hash = 14695981039346656037ULL) {
  for (unsigned char c : text) {
    hash ^= c;
    hash *= 1099511628211ULL;
  }
  return hash;
}

// Built-in verifiers and remote_rm, chosen per sample: metadata "rm_type" first, then --rm-type.
class BuiltinRewardModel : public RewardModel {
 public:
  explicit BuiltinRewardModel(const RewardOptions& options) : options_(options) {
    if (options_.rm_type && text::strip(*options_.rm_type).empty()) options_.rm_type.reset();
    if (options_.rm_type) {
      auto resolved = resolve_type(*options_.rm_type);
      SLIME_CHECK(resolved, "--rm-type '", *options_.rm_type,
                  "' is not a known reward type; known: ", known_types_text(),
                  " (or a plug-in through --custom-rm-path path/to/lib.so:symbol)");
      SLIME_CHECK(resolved->base != "remote_rm" || options_.rm_url,
                  "--rm-type remote_rm needs --rm-url (the URL that receives the POST of {prompt, response, label})");
      SLIME_CHECK(resolved->base != "dapo" || options_.reward_key, "--rm-type ", *options_.rm_type,
                  " returns an object {score, acc, pred}; set --reward-key to ",
                  "pick the reward (slime's dapo recipes use --reward-key score)");
    }
    if (options_.rm_url) {
      RemoteRewardConfig config;
      config.url = *options_.rm_url;
      config.timeout_seconds = options_.timeout_seconds;
      config.max_attempts = options_.max_retries;
      config.backoff_seconds = options_.backoff_seconds;
      config.max_concurrency = options_.max_concurrency;
      remote_ = std::make_unique<RemoteRewardClient>(config);
    }
  }

  RewardValue score(const RewardInput& input) override {
    ResolvedType type = type_of(input);
    nlohmann::ordered_json raw = type.base == "remote_rm" ? remote_->request(input) : local_reward(type, input);
    return RewardValue{select_reward_value(raw, options_.reward_key, "rm_type " + describe(type)), raw};
  }

  // Remote samples of the group go out concurrently; the others are scored in place.
  std::vector<RewardValue> score_group(const std::vector<RewardInput>& inputs) override {
    std::vector<RewardValue> values(inputs.size());
    std::vector<RewardInput> remote_inputs;
    std::vector<size_t> remote_positions;
    for (size_t i = 0; i < inputs.size(); ++i) {
      ResolvedType type = type_of(inputs[i]);
      if (type.base == "remote_rm") {
        remote_inputs.push_back(inputs[i]);
        remote_positions.push_back(i);
      } else {
        auto raw = local_reward(type, inputs[i]);
        values[i] = RewardValue{select_reward_value(raw, options_.reward_key, "rm_type " + describe(type)), raw};
      }
    }
    if (!remote_inputs.empty()) {
      auto replies = remote_->request_all(remote_inputs);
      for (size_t k = 0; k < replies.size(); ++k)
        values[remote_positions[k]] =
            RewardValue{select_reward_value(replies[k], options_.reward_key, "rm_type remote_rm"), replies[k]};
    }
    return values;
  }

 private:
  RewardOptions options_;
  std::unique_ptr<RemoteRewardClient> remote_;

  static std::string describe(const ResolvedType& type) { return (type.boxed ? "boxed_" : "") + type.base; }

  ResolvedType type_of(const RewardInput& input) const {
    if (input.metadata.is_object() && input.metadata.contains("rm_type") && !input.metadata["rm_type"].is_null()) {
      const auto& field = input.metadata["rm_type"];
      SLIME_CHECK(field.is_string(), "sample metadata field 'rm_type': expected a string, got ", field.type_name());
      std::string name = field.get<std::string>();
      if (!name.empty()) {  // an empty string falls back to --rm-type, as slime's `or`
        auto resolved = resolve_type(name);
        SLIME_CHECK(resolved, "sample metadata field 'rm_type': '", name,
                    "' is not a known reward type; known: ", known_types_text());
        SLIME_CHECK(resolved->base != "remote_rm" || remote_,
                    "sample metadata field 'rm_type' is remote_rm but no --rm-url was given");
        return *resolved;
      }
    }
    SLIME_CHECK(options_.rm_type, "no reward type for this sample: set --rm-type (known: ", known_types_text(),
                "), give the sample a metadata 'rm_type', or use --custom-rm-path");
    return *resolve_type(*options_.rm_type);
  }

  nlohmann::ordered_json local_reward(const ResolvedType& type, const RewardInput& input) const {
    std::string response = input.response;
    if (type.boxed) response = extract_boxed_answer(response).value_or("");
    const auto& label = input.label;
    const std::string& base = type.base;
    if (base == "math") return math_reward(response, label);
    if (base == "deepscaler") return deepscaler_reward(response, label);
    if (base == "dapo") return dapo_compute_score(response, label_text(label, "dapo"));
    if (base == "f1") return f1_reward(response, label);
    if (base == "gpqa") return gpqa_reward(response, label, input.metadata);
    if (base == "exact_match") return exact_match_reward(response, label);
    if (base == "countdown") return countdown_reward(response, label, input.metadata);
    if (base == "arithmetic") return arithmetic_reward(response, label);
    if (base == "random") {
      // A pure function of (seed, sample): reproducible whatever the order or threading of the calls.
      uint64_t stream = fnv1a(label.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                              fnv1a(response, fnv1a(input.prompt)));
      return static_cast<int>(philox_u32(options_.random_seed, stream, 0) & 1u);
    }
    SLIME_ASSERT(false, "reward type without a handler: ", base);
    return nullptr;
  }
};

}  // namespace

std::unique_ptr<RewardModel> make_reward_model(const RewardOptions& options) {
  if (options.custom_rm_path && !options.custom_rm_path->empty())
    return std::make_unique<PluginRewardModel>(*options.custom_rm_path);
  return std::make_unique<BuiltinRewardModel>(options);
}

}  // namespace slime::reward
