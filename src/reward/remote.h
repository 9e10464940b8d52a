// The `remote_rm` reward (slime's rm_hub.remote_rm): an HTTP POST of {"prompt", "response", "label"} as JSON to
// --rm-url; the reply is a number or a JSON object (from which --reward-key picks the reward). Failed attempts
// (connection errors, timeouts, non-2xx statuses, malformed or unexpected JSON) are retried with exponential
// backoff; the last failure becomes an error naming the URL, the number of attempts and the cause.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "reward/reward.h"

namespace slime::reward {

struct RemoteRewardConfig {
  std::string url;               // http://host:port/path or https://...
  double timeout_seconds = 120;  // connect, read and write timeout of each attempt
  int max_attempts = 10;
  double backoff_seconds = 0.5;  // before retry k (k = 0, 1, ...): min(backoff * 2^k, 30) + U[0, backoff)
  int max_concurrency = 64;      // parallel requests in request_all
};

class RemoteRewardClient {
 public:
  // Errors name --rm-url when the URL is not http(s)://host[:port][/path].
  explicit RemoteRewardClient(RemoteRewardConfig config);

  // The server's reply (a number or an object) for one sample. Safe to call from several threads.
  nlohmann::ordered_json request(const RewardInput& input) const;
  // Replies for many samples, up to max_concurrency requests in flight; the first failure is rethrown.
  std::vector<nlohmann::ordered_json> request_all(const std::vector<RewardInput>& inputs) const;

  const RemoteRewardConfig& config() const { return config_; }

 private:
  RemoteRewardConfig config_;
  std::string scheme_host_port_;  // "http://127.0.0.1:8000"
  std::string path_;              // "/reward" ("/" when the URL has none)
};

// RewardModel over the client: the reply, with --reward-key selection.
class RemoteRewardModel : public RewardModel {
 public:
  RemoteRewardModel(RemoteRewardConfig config, std::optional<std::string> reward_key);
  RewardValue score(const RewardInput& input) override;
  std::vector<RewardValue> score_group(const std::vector<RewardInput>& inputs) override;

 private:
  RemoteRewardClient client_;
  std::optional<std::string> reward_key_;
};

}  // namespace slime::reward
