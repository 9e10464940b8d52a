// HTTP reward client with timeouts and retries (see remote.h), on cpp-httplib.
#include "reward/remote.h"

#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <exception>
#include <mutex>
#include <random>
#include <thread>

#include "core/error.h"
#include "core/log.h"

namespace slime::reward {

namespace {

std::string shorten(const std::string& text, size_t limit = 200) {
  if (text.size() <= limit) return text;
  return text.substr(0, limit) + "...";
}

void set_timeouts(httplib::Client& client, double seconds) {
  auto whole = static_cast<time_t>(std::floor(seconds));
  auto micros = static_cast<time_t>(std::llround((seconds - static_cast<double>(whole)) * 1e6));
  client.set_connection_timeout(whole, micros);
  client.set_read_timeout(whole, micros);
  client.set_write_timeout(whole, micros);
}

// One attempt: the parsed reply, or the reason it failed in `failure`.
std::optional<nlohmann::ordered_json> attempt_once(const std::string& scheme_host_port, const std::string& path,
                                                   const std::string& body, double timeout_seconds,
                                                   std::string& failure) {
  httplib::Client client(scheme_host_port);
  set_timeouts(client, timeout_seconds);
  httplib::Result result = client.Post(path, body, "application/json");
  if (!result) {
    failure = "request failed: " + httplib::to_string(result.error());
    if (result.error() == httplib::Error::Read)
      failure += slime::cat(" (no complete reply within the ", timeout_seconds, " s read timeout)");
    if (result.error() == httplib::Error::Connection)
      failure += slime::cat(" (could not connect; connect timeout ", timeout_seconds, " s)");
    return std::nullopt;
  }
  if (result->status < 200 || result->status >= 300) {
    failure = slime::cat("HTTP ", result->status, ", body: ", shorten(result->body));
    return std::nullopt;
  }
  nlohmann::ordered_json reply;
  try {
    reply = nlohmann::ordered_json::parse(result->body);
  } catch (const nlohmann::json::parse_error& e) {
    failure = slime::cat("malformed JSON reply (", e.what(), "), body: ", shorten(result->body));
    return std::nullopt;
  }
  if (!reply.is_number() && !reply.is_object()) {
    failure = slime::cat("expected a number or a JSON object as the reply, got ", reply.type_name(), ": ",
                         shorten(reply.dump()));
    return std::nullopt;
  }
  return reply;
}

}  // namespace

RemoteRewardClient::RemoteRewardClient(RemoteRewardConfig config) : config_(std::move(config)) {
  const std::string& url = config_.url;
  size_t scheme_end = url.find("://");
  std::string scheme = scheme_end == std::string::npos ? "" : url.substr(0, scheme_end);
  SLIME_CHECK(scheme == "http" || scheme == "https", "--rm-url '", url,
              "': expected http://host:port/path or https://host/path");
  size_t path_start = url.find('/', scheme_end + 3);
  std::string host_port =
      url.substr(scheme_end + 3, path_start == std::string::npos ? std::string::npos : path_start - scheme_end - 3);
  SLIME_CHECK(!host_port.empty(), "--rm-url '", url, "': no host");
  scheme_host_port_ = scheme + "://" + host_port;
  path_ = path_start == std::string::npos ? "/" : url.substr(path_start);
  SLIME_CHECK(config_.timeout_seconds > 0, "remote_rm: the timeout must be positive, got ", config_.timeout_seconds);
  SLIME_CHECK(config_.max_attempts >= 1, "remote_rm: max_retries must be at least 1, got ", config_.max_attempts);
  SLIME_CHECK(config_.backoff_seconds >= 0, "remote_rm: the backoff must not be negative, got ",
              config_.backoff_seconds);
  SLIME_CHECK(config_.max_concurrency >= 1, "remote_rm: max_concurrency must be at least 1, got ",
              config_.max_concurrency);
}

nlohmann::ordered_json RemoteRewardClient::request(const RewardInput& input) const {
  nlohmann::ordered_json payload;
  payload["prompt"] = input.prompt;
  payload["response"] = input.response;
  payload["label"] = input.label;
  std::string body = payload.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  thread_local std::mt19937_64 jitter_source{std::random_device{}()};
  std::string failure;
  for (int attempt = 0; attempt < config_.max_attempts; ++attempt) {
    if (auto reply = attempt_once(scheme_host_port_, path_, body, config_.timeout_seconds, failure)) return *reply;
    if (attempt + 1 == config_.max_attempts) break;
    double backoff = std::min(config_.backoff_seconds * std::pow(2.0, attempt), 30.0);
    backoff += std::uniform_real_distribution<double>(0, config_.backoff_seconds)(jitter_source);
    SLIME_WARN("remote_rm: ", config_.url, ": ", failure, "; retrying in ", backoff, " s (", attempt + 1, "/",
               config_.max_attempts, ")");
    std::this_thread::sleep_for(std::chrono::duration<double>(backoff));
  }
  SLIME_FAIL("remote_rm: POST ", config_.url, " failed after ", config_.max_attempts, " attempt",
             config_.max_attempts == 1 ? "" : "s", "; last error: ", failure);
}

std::vector<nlohmann::ordered_json> RemoteRewardClient::request_all(const std::vector<RewardInput>& inputs) const {
  std::vector<nlohmann::ordered_json> replies(inputs.size());
  std::atomic<size_t> next{0};
  std::exception_ptr first_error;
  std::mutex error_mutex;
  auto worker = [&] {
    while (true) {
      size_t index = next.fetch_add(1);
      if (index >= inputs.size()) return;
      {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (first_error) return;
      }
      try {
        replies[index] = request(inputs[index]);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (!first_error) first_error = std::current_exception();
      }
    }
  };
  size_t thread_count = std::min<size_t>(inputs.size(), static_cast<size_t>(config_.max_concurrency));
  std::vector<std::thread> threads;
  for (size_t i = 0; i < thread_count; ++i) threads.emplace_back(worker);
  for (auto& thread : threads) thread.join();
  if (first_error) std::rethrow_exception(first_error);
  return replies;
}

RemoteRewardModel::RemoteRewardModel(RemoteRewardConfig config, std::optional<std::string> reward_key)
    : client_(std::move(config)), reward_key_(std::move(reward_key)) {}

RewardValue RemoteRewardModel::score(const RewardInput& input) {
  auto reply = client_.request(input);
  return RewardValue{select_reward_value(reply, reward_key_, "remote_rm reply from " + client_.config().url), reply};
}

std::vector<RewardValue> RemoteRewardModel::score_group(const std::vector<RewardInput>& inputs) {
  std::vector<RewardValue> values;
  for (auto& reply : client_.request_all(inputs))
    values.push_back(
        RewardValue{select_reward_value(reply, reward_key_, "remote_rm reply from " + client_.config().url), reply});
  return values;
}

}  // namespace slime::reward
