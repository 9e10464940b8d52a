// Tests of make_reward_model: slime's dispatch order (metadata rm_type over --rm-type), the boxed_ prefix, dict
// rewards with --reward-key, the seeded `random` type and the errors for unknown or incomplete options.
#include "reward/reward.h"

#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>
#include <set>

#include "core/error.h"

using namespace slime::reward;
using nlohmann::ordered_json;

namespace {
RewardInput sample(const std::string& response, ordered_json label, ordered_json metadata = ordered_json()) {
  RewardInput input;
  input.prompt = "What is the capital of France?";
  input.response = response;
  input.label = std::move(label);
  input.metadata = std::move(metadata);
  return input;
}

RewardOptions with_type(const std::string& type) {
  RewardOptions options;
  options.rm_type = type;
  return options;
}
}  // namespace

TEST_CASE("unknown reward types list the known ones", "[reward][factory]") {
  CHECK_THROWS_WITH(make_reward_model(with_type("mathh")),
                    Catch::Contains("--rm-type 'mathh' is not a known reward type") &&
                        Catch::Contains("math, deepscaler, dapo, f1, gpqa, exact_match, countdown, arithmetic, "
                                        "random, remote_rm, or boxed_<type>"));
  CHECK_THROWS_WITH(make_reward_model(with_type("boxed_nope")), Catch::Contains("'boxed_nope'"));
  CHECK_THROWS_WITH(make_reward_model(with_type("ifbench")), Catch::Contains("not a known reward type"));
  auto model = make_reward_model(with_type("math"));
  CHECK_THROWS_WITH(model->score(sample("x", "y", {{"rm_type", "wat"}})),
                    Catch::Contains("sample metadata field 'rm_type': 'wat' is not a known reward type"));
  CHECK_THROWS_WITH(model->score(sample("x", "y", {{"rm_type", 3}})),
                    Catch::Contains("field 'rm_type': expected a string"));
  auto untyped = make_reward_model(RewardOptions{});
  CHECK_THROWS_WITH(untyped->score(sample("x", "y")), Catch::Contains("no reward type for this sample"));
}

TEST_CASE("options that cannot work are refused up front", "[reward][factory]") {
  CHECK_THROWS_WITH(make_reward_model(with_type("remote_rm")), Catch::Contains("needs --rm-url"));
  CHECK_THROWS_WITH(make_reward_model(with_type("dapo")), Catch::Contains("set --reward-key"));
  auto model = make_reward_model(with_type("math"));
  CHECK_THROWS_WITH(model->score(sample("x", "y", {{"rm_type", "remote_rm"}})),
                    Catch::Contains("no --rm-url was given"));
  RewardOptions bad_url = with_type("math");
  bad_url.rm_url = "127.0.0.1:9000";
  CHECK_THROWS_WITH(make_reward_model(bad_url), Catch::Contains("--rm-url '127.0.0.1:9000'"));
}

TEST_CASE("metadata rm_type overrides --rm-type", "[reward][factory]") {
  auto model = make_reward_model(with_type("math"));
  CHECK(model->score(sample("The answer is \\boxed{Paris}", "Paris")).value == 1);
  // f1 from the metadata: 1 of 2 predicted tokens, 1 of 1 true token -> 2/3.
  CHECK(model->score(sample("Paris, France", "Paris", {{"rm_type", "f1"}})).value == Approx(2.0 / 3.0));
  CHECK(model->score(sample("Paris, France", "Paris", {{"rm_type", " exact_match "}})).value == 0);
  // An empty metadata rm_type falls back to --rm-type, as slime's `or`.
  CHECK(model->score(sample("\\boxed{Paris}", "Paris", {{"rm_type", ""}})).value == 1);
  auto group = model->score_group({sample("\\boxed{2}", "2"), sample("two", "two", {{"rm_type", "f1"}})});
  CHECK(group[0].value == 1);
  CHECK(group[1].value == 1);
}

TEST_CASE("boxed_ prefix scores the last box content", "[reward][factory]") {
  CHECK(make_reward_model(with_type("boxed_exact_match"))
            ->score(sample("so \\boxed{1} no \\boxed{Paris}", "paris"))
            .value == 1);
  CHECK(make_reward_model(with_type("exact_match"))->score(sample("so \\boxed{Paris}", "paris")).value == 0);
  CHECK(make_reward_model(with_type("boxed_f1"))->score(sample("no box: Paris", "Paris")).value == 0);  // -> ""
  auto countdown = make_reward_model(with_type("boxed_countdown"));
  CHECK(countdown->score(sample("\\boxed{(3 + 1) * 6}", 24, {{"numbers", {3, 1, 6}}})).value == 1);
  // As slime: boxed_math grades the box content, which has no box of its own, so it is always 0.
  CHECK(make_reward_model(with_type("boxed_math"))->score(sample("\\boxed{5}", "5")).value == 0);
}

TEST_CASE("dict rewards and --reward-key", "[reward][factory]") {
  RewardOptions options = with_type("dapo");
  options.reward_key = "score";
  auto model = make_reward_model(options);
  RewardValue right = model->score(sample("Work.\nAnswer: 42", "42"));
  CHECK(right.value == 1.0);
  CHECK(right.details == ordered_json({{"score", 1.0}, {"acc", true}, {"pred", "42"}}));
  CHECK(model->score(sample("Answer: 41", "42")).value == -1.0);
  options.reward_key = "acc";
  CHECK(make_reward_model(options)->score(sample("Answer: 41", "42")).value == 0.0);
  options.reward_key = "pred";
  CHECK_THROWS_WITH(make_reward_model(options)->score(sample("Answer: 41", "42")),
                    Catch::Contains("rm_type dapo: reward field 'pred': expected a number, got string"));
  // A reward key is harmless for types that return plain numbers.
  RewardOptions math = with_type("math");
  math.reward_key = "score";
  CHECK(make_reward_model(math)->score(sample("\\boxed{3}", 3)).value == 1);
}

TEST_CASE("select_reward_value", "[reward][factory]") {
  CHECK(select_reward_value(0.5, std::nullopt, "here") == 0.5);
  CHECK(select_reward_value(true, std::nullopt, "here") == 1.0);
  CHECK(select_reward_value({{"r", 2}}, std::string("r"), "here") == 2.0);
  CHECK_THROWS_WITH(select_reward_value({{"a", 1}, {"b", 2}}, std::nullopt, "judge"),
                    Catch::Contains("judge: the reward is an object with keys [a, b]; set --reward-key"));
  CHECK_THROWS_WITH(select_reward_value("1", std::nullopt, "judge"),
                    Catch::Contains("judge: a reward must be a number or a JSON object, got string"));
}

TEST_CASE("random rewards are seeded 0/1 draws", "[reward][factory]") {
  RewardOptions options = with_type("random");
  options.random_seed = 7;
  auto model = make_reward_model(options);
  auto again = make_reward_model(options);
  options.random_seed = 8;
  auto other_seed = make_reward_model(options);
  std::set<double> seen;
  int differences = 0;
  for (int i = 0; i < 64; ++i) {
    auto input = sample("response " + std::to_string(i), "label");
    double value = model->score(input).value;
    CHECK((value == 0 || value == 1));
    CHECK(again->score(input).value == value);  // a pure function of (seed, sample)
    differences += other_seed->score(input).value != value;
    seen.insert(value);
  }
  CHECK(seen.size() == 2);
  CHECK(differences > 10);  // P(<= 10 of 64 fair draws differ) < 1e-7
}

TEST_CASE("countdown and arithmetic through the factory", "[reward][factory]") {
  auto model = make_reward_model(with_type("countdown"));
  ordered_json problem = {{"target", 10}, {"numbers", {2, 5}}};
  CHECK(model->score(sample("<answer>2 * 5</answer>", problem)).value == 1);
  CHECK(model->score(sample("<answer>2 + 5</answer>", problem)).value == 0);
  CHECK(model->score(sample("7 * 6 = 42", 42, {{"rm_type", "arithmetic"}})).value == 1);
  CHECK(model->score(sample("The answer is B", "B", {{"rm_type", "gpqa"}})).value == 1);
  CHECK(model->score(sample("</think>\\boxed{4}", "4", {{"rm_type", "deepscaler"}})).value == 1);
}

TEST_CASE("pathological responses neither crash nor hang", "[reward][factory]") {
  const size_t n = 300000;
  std::vector<std::string> responses = {
      "\\boxed{" + std::string(n, '1') + "}",
      "\\boxed{" + std::string(n / 2, '{') + std::string(n / 2, '}') + "}",
      "\\boxed{" + std::string(n, '(') + "}",
      "\\boxed{" + std::string(n, ' ') + "1}",
      "\\boxed{" + std::string(n, '-') + "1}",
      "\\boxed{1/" + std::string(n, '2') + "}",
      "\\boxed{2^" + std::string(n, '9') + "}",
      "\\boxed{(1," + std::string(n, '2') + ")}",
      "\\boxed{" + std::string(n / 6, 'x') + "\\frac" + std::string(n / 6, 'y') + "}",
      "</think>answer" + std::string(n, ' ') + "B",
      std::string(n, 'a'),
      std::string(n, ' '),
      "<answer>" + std::string(n / 2, '(') + "1" + std::string(n / 2, ')') + "</answer>",
      "<answer>" + std::string(n, '-') + "1</answer>",
      "Answer:" + std::string(n, ' ') + "42",
      std::string(n, '\xff'),  // not UTF-8
  };
  std::string repeated_articles;
  for (size_t i = 0; i < n / 4; ++i) repeated_articles += "the ";
  responses.push_back(repeated_articles);
  ordered_json countdown_problem = {{"target", 1}, {"numbers", {1}}};
  for (const char* type : {"math", "deepscaler", "f1", "gpqa", "exact_match", "arithmetic", "boxed_f1"}) {
    auto model = make_reward_model(with_type(type));
    for (const auto& response : responses) {
      INFO(type << " on a response starting with " << response.substr(0, 12));
      double value = model->score(sample(response, "1")).value;
      CHECK((value >= 0 && value <= 1));
    }
  }
  RewardOptions dapo = with_type("dapo");
  dapo.reward_key = "score";
  auto dapo_model = make_reward_model(dapo);
  auto countdown_model = make_reward_model(with_type("countdown"));
  for (const auto& response : responses) {
    CHECK(dapo_model->score(sample(response, "42"))
              .details.dump(-1, ' ', false,
                            nlohmann::json::error_handler_t::strict)
              .size() > 0);  // the details are valid UTF-8 even when the response is not
    CHECK(countdown_model->score(sample(response, countdown_problem)).value <= 1);
  }
}

TEST_CASE("the project's arithmetic dataset scores through its metadata rm_type", "[reward][factory]") {
  std::ifstream file(std::string(std::getenv("SLIME_SOURCE_DIR")) + "/inputs/datasets/arithmetic-64.jsonl");
  REQUIRE(file.good());
  auto model = make_reward_model(RewardOptions{});  // no --rm-type: every line names its own
  std::string line;
  int rows = 0;
  while (std::getline(file, line)) {
    auto row = ordered_json::parse(line);
    std::string label = row["label"];
    std::string wrong = std::to_string(std::stol(label) + 1);
    CHECK(model->score(sample("Let me compute. \\boxed{" + label + "}", label, row["metadata"])).value == 1);
    CHECK(model->score(sample("Let me compute. \\boxed{" + wrong + "}", label, row["metadata"])).value == 0);
    CHECK(model->score(sample("Let me compute: " + label, label, row["metadata"])).value == 0);  // no box
    ++rows;
  }
  CHECK(rows == 64);
}
