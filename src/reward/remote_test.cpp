// Tests of remote_rm against real HTTP servers started here (cpp-httplib on 127.0.0.1, ephemeral ports):
// JSON round trip, --reward-key, timeouts, retries with backoff, HTTP errors, malformed replies, concurrency.
#include "reward/remote.h"

#include <httplib.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <functional>
#include <thread>

#include "core/error.h"
#include "reward/reward.h"

using namespace slime::reward;
using nlohmann::ordered_json;

namespace {

// An HTTP server on 127.0.0.1 with one POST route, listening in a thread for the lifetime of the object.
class TestServer {
 public:
  using Handler = std::function<void(const httplib::Request&, httplib::Response&)>;
  explicit TestServer(Handler handler, const std::string& path = "/reward") {
    server_.Post(path, [this, handler](const httplib::Request& request, httplib::Response& response) {
      ++requests;
      handler(request, response);
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    REQUIRE(port_ > 0);
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~TestServer() {
    server_.stop();
    thread_.join();
  }
  std::string url(const std::string& path = "/reward") const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  std::atomic<int> requests{0};

 private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
};

RemoteRewardConfig fast_config(const std::string& url, int attempts = 3) {
  RemoteRewardConfig config;
  config.url = url;
  config.timeout_seconds = 5;
  config.max_attempts = attempts;
  config.backoff_seconds = 0.01;  // keeps the retry tests fast
  return config;
}

RewardInput sample(const std::string& response, ordered_json label) {
  RewardInput input;
  input.prompt = "Q: 6*7? — «réponse»";
  input.response = response;
  input.label = std::move(label);
  input.metadata = {{"source", "test"}};
  return input;
}

void reply_json(httplib::Response& response, const ordered_json& body) {
  response.set_content(body.dump(), "application/json");
}

}  // namespace

TEST_CASE("remote_rm: JSON round trip and reward key", "[reward][remote]") {
  TestServer server([](const httplib::Request& request, httplib::Response& response) {
    auto payload = ordered_json::parse(request.body);
    bool correct = payload["response"] == payload["label"]["answer"];
    reply_json(response, {{"reward", correct ? 1.0 : 0.25}, {"echo", payload}});
  });
  RemoteRewardModel model(fast_config(server.url()), std::string("reward"));
  auto input = sample("42", {{"answer", "42"}, {"unit", "none"}});
  RewardValue value = model.score(input);
  CHECK(value.value == 1.0);
  const auto& echo = value.details["echo"];
  CHECK(echo.size() == 3);  // exactly {"prompt", "response", "label"}, as slime
  CHECK(echo["prompt"] == input.prompt);
  CHECK(echo["response"] == "42");
  CHECK(echo["label"] == input.label);
  CHECK(model.score(sample("41", {{"answer", "42"}})).value == 0.25);
  CHECK(server.requests == 2);

  RemoteRewardModel wrong_key(fast_config(server.url()), std::string("score"));
  CHECK_THROWS_WITH(wrong_key.score(input), Catch::Contains("--reward-key 'score' is not in the reward object") &&
                                                Catch::Contains("reward, echo"));
  RemoteRewardModel no_key(fast_config(server.url()), std::nullopt);
  CHECK_THROWS_WITH(no_key.score(input), Catch::Contains("set --reward-key"));
}

TEST_CASE("remote_rm: a plain number reply", "[reward][remote]") {
  TestServer server(
      [](const httplib::Request&, httplib::Response& response) { response.set_content("0.75", "application/json"); });
  RemoteRewardModel model(fast_config(server.url()), std::nullopt);
  RewardValue value = model.score(sample("x", "y"));
  CHECK(value.value == 0.75);
  CHECK(value.details == 0.75);
}

TEST_CASE("remote_rm: a slow server times out, the retry succeeds", "[reward][remote]") {
  std::atomic<int> calls{0};
  TestServer server([&calls](const httplib::Request&, httplib::Response& response) {
    if (calls++ == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    response.set_content("1", "application/json");
  });
  auto config = fast_config(server.url(), 3);
  config.timeout_seconds = 0.3;
  RemoteRewardModel model(config, std::nullopt);
  CHECK(model.score(sample("x", "y")).value == 1.0);
  CHECK(calls == 2);
}

TEST_CASE("remote_rm: HTTP 500 a few times, then success", "[reward][remote]") {
  std::atomic<int> calls{0};
  TestServer server([&calls](const httplib::Request&, httplib::Response& response) {
    if (calls++ < 2) {
      response.status = 500;
      response.set_content("overloaded", "text/plain");
      return;
    }
    reply_json(response, {{"score", 0.5}});
  });
  RemoteRewardModel model(fast_config(server.url(), 5), std::string("score"));
  CHECK(model.score(sample("x", "y")).value == 0.5);
  CHECK(calls == 3);
}

TEST_CASE("remote_rm: always 500 ends in a clear error after the retries", "[reward][remote]") {
  TestServer server([](const httplib::Request&, httplib::Response& response) {
    response.status = 500;
    response.set_content("internal failure in the judge", "text/plain");
  });
  RemoteRewardModel model(fast_config(server.url(), 3), std::nullopt);
  CHECK_THROWS_WITH(model.score(sample("x", "y")),
                    Catch::Contains("remote_rm: POST " + server.url()) && Catch::Contains("after 3 attempts") &&
                        Catch::Contains("HTTP 500") && Catch::Contains("internal failure in the judge"));
  CHECK(server.requests == 3);
}

TEST_CASE("remote_rm: malformed and unexpected replies", "[reward][remote]") {
  TestServer malformed([](const httplib::Request&, httplib::Response& response) {
    response.set_content("{\"reward\": 1.0", "application/json");
  });
  RemoteRewardModel model(fast_config(malformed.url(), 2), std::nullopt);
  CHECK_THROWS_WITH(model.score(sample("x", "y")), Catch::Contains("malformed JSON reply") &&
                                                       Catch::Contains("after 2 attempts") &&
                                                       Catch::Contains("{\"reward\": 1.0"));

  TestServer text_reply([](const httplib::Request&, httplib::Response& response) {
    response.set_content("\"high\"", "application/json");
  });
  RemoteRewardModel text_model(fast_config(text_reply.url(), 1), std::nullopt);
  CHECK_THROWS_WITH(text_model.score(sample("x", "y")),
                    Catch::Contains("expected a number or a JSON object") && Catch::Contains("after 1 attempt;"));

  TestServer wrong_field([](const httplib::Request&, httplib::Response& response) {
    reply_json(response, {{"reward", "yes"}});
  });
  RemoteRewardModel field_model(fast_config(wrong_field.url(), 1), std::string("reward"));
  CHECK_THROWS_WITH(field_model.score(sample("x", "y")),
                    Catch::Contains("reward field 'reward': expected a number, got string"));
}

TEST_CASE("remote_rm: wrong path, no server, bad URL", "[reward][remote]") {
  TestServer server(
      [](const httplib::Request&, httplib::Response& response) { response.set_content("1", "application/json"); });
  RemoteRewardModel wrong_path(fast_config(server.url("/nope"), 1), std::nullopt);
  CHECK_THROWS_WITH(wrong_path.score(sample("x", "y")), Catch::Contains("HTTP 404"));

  std::string dead_url;
  {
    TestServer gone([](const httplib::Request&, httplib::Response&) {});
    dead_url = gone.url();
  }
  RemoteRewardModel dead(fast_config(dead_url, 2), std::nullopt);
  CHECK_THROWS_WITH(dead.score(sample("x", "y")),
                    Catch::Contains("request failed") && Catch::Contains("after 2 attempts"));

  CHECK_THROWS_WITH(RemoteRewardClient(fast_config("ftp://127.0.0.1/x")), Catch::Contains("--rm-url 'ftp://"));
  CHECK_THROWS_WITH(RemoteRewardClient(fast_config("localhost:8000")), Catch::Contains("--rm-url"));
  CHECK_THROWS_WITH(RemoteRewardClient(fast_config("http:///x")), Catch::Contains("no host"));
  auto bad_attempts = fast_config("http://127.0.0.1:1/");
  bad_attempts.max_attempts = 0;
  CHECK_THROWS_WITH(RemoteRewardClient(bad_attempts), Catch::Contains("max_retries"));
}

TEST_CASE("remote_rm: a group is sent concurrently, in order", "[reward][remote]") {
  std::atomic<int> in_flight{0}, most_in_flight{0};
  TestServer server([&](const httplib::Request& request, httplib::Response& response) {
    int now = ++in_flight;
    int seen = most_in_flight.load();
    while (now > seen && !most_in_flight.compare_exchange_weak(seen, now)) {
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    --in_flight;
    auto payload = ordered_json::parse(request.body);
    response.set_content(payload["label"].dump(), "application/json");  // the reward is the label
  });
  auto config = fast_config(server.url());
  config.max_concurrency = 4;
  RemoteRewardModel model(config, std::nullopt);
  std::vector<RewardInput> group;
  for (int i = 0; i < 8; ++i) group.push_back(sample("r", i));
  auto values = model.score_group(group);
  REQUIRE(values.size() == 8);
  for (int i = 0; i < 8; ++i) CHECK(values[i].value == i);
  CHECK(most_in_flight > 1);
  CHECK(most_in_flight <= 4);
}

TEST_CASE("remote_rm through make_reward_model", "[reward][remote]") {
  TestServer server([](const httplib::Request& request, httplib::Response& response) {
    auto payload = ordered_json::parse(request.body);
    reply_json(response, {{"score", payload["response"].get<std::string>().size()}});
  });
  RewardOptions options;
  options.rm_type = "boxed_remote_rm";
  options.rm_url = server.url();
  options.reward_key = "score";
  options.backoff_seconds = 0.01;
  auto model = make_reward_model(options);
  // remote_rm receives the whole response even with the boxed_ prefix, as slime's remote_rm(args, sample).
  CHECK(model->score(sample("so \\boxed{7}", "7")).value == 12);
  // A sample may pick remote_rm through its metadata when --rm-url is set.
  options.rm_type = "math";
  auto mixed = make_reward_model(options);
  auto remote_input = sample("abc", "7");
  remote_input.metadata = {{"rm_type", "remote_rm"}};
  auto values = mixed->score_group({sample("\\boxed{7}", "7"), remote_input});
  CHECK(values[0].value == 1);
  CHECK(values[1].value == 3);
}
