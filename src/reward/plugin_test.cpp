// Tests of reward plug-ins: a real .so (reward_test_plugin, built beside this test) loaded by path:symbol, and the
// errors for a missing file, a file that is not a library, a missing symbol and a failing plug-in.
#include <catch2/catch.hpp>
#include <cstdlib>

#include "core/error.h"
#include "reward/plugin_loader.h"
#include "reward/reward.h"

using namespace slime::reward;
using nlohmann::ordered_json;

namespace {
const std::string kPlugin = SLIME_REWARD_TEST_PLUGIN;

RewardInput sample(const std::string& response, ordered_json label, ordered_json metadata = ordered_json()) {
  RewardInput input;
  input.prompt = "prompt";
  input.response = response;
  input.label = std::move(label);
  input.metadata = std::move(metadata);
  return input;
}
}  // namespace

TEST_CASE("plug-in rewards by path:symbol", "[reward][plugin]") {
  PluginRewardModel model(kPlugin + ":slime_test_reward_contains");
  CHECK(model.library_path() == kPlugin);
  CHECK(model.symbol() == "slime_test_reward_contains");
  CHECK(model.score(sample("the answer is Paris", "Paris")).value == 1.0);
  CHECK(model.score(sample("the answer is Rome", "Paris")).value == 0.0);
  RewardValue bonus = model.score(sample("Paris", "Paris", {{"bonus", true}}));
  CHECK(bonus.value == 1.5);
  CHECK(bonus.details == 1.5);
  auto group = model.score_group({sample("a", "a"), sample("b", "a")});
  CHECK(group[0].value == 1.0);
  CHECK(group[1].value == 0.0);
}

TEST_CASE("plug-in through make_reward_model takes precedence over --rm-type", "[reward][plugin]") {
  RewardOptions options;
  options.rm_type = "math";
  options.custom_rm_path = kPlugin + ":slime_test_reward_contains";
  auto model = make_reward_model(options);
  auto input = sample("no box, but Paris", "Paris", {{"rm_type", "f1"}});
  CHECK(model->score(input).value == 1.0);  // math would give 0, f1 less than 1
}

TEST_CASE("plug-in errors name the file, the symbol and the cause", "[reward][plugin]") {
  CHECK_THROWS_WITH(PluginRewardModel("/nonexistent/libreward.so:my_reward"),
                    Catch::Contains("--custom-rm-path: plug-in library '/nonexistent/libreward.so' not found"));
  CHECK_THROWS_WITH(PluginRewardModel(kPlugin + ":no_such_function"),
                    Catch::Contains("symbol 'no_such_function' not found") && Catch::Contains(kPlugin));
  CHECK_THROWS_WITH(PluginRewardModel(kPlugin), Catch::Contains("expected 'path/to/lib.so:symbol'"));
  CHECK_THROWS_WITH(PluginRewardModel(kPlugin + ":"), Catch::Contains("expected 'path/to/lib.so:symbol'"));
  std::string not_a_library = std::string(std::getenv("SLIME_SOURCE_DIR")) + "/src/reward/plugin.h";
  CHECK_THROWS_WITH(PluginRewardModel(not_a_library + ":f"),
                    Catch::Contains("--custom-rm-path: cannot load '" + not_a_library + "'"));

  PluginRewardModel contains(kPlugin + ":slime_test_reward_contains");
  CHECK_THROWS_WITH(
      contains.score(sample("x", ordered_json())),
      Catch::Contains("slime_test_reward_contains failed with code 7") && Catch::Contains("the label is null"));
  PluginRewardModel nan_reward(kPlugin + ":slime_test_reward_nan");
  CHECK_THROWS_WITH(nan_reward.score(sample("x", "y")), Catch::Contains("non-finite reward"));
  PluginRewardModel long_error(kPlugin + ":slime_test_reward_long_error");
  CHECK_THROWS_WITH(long_error.score(sample("x", "y")), Catch::Contains("failed with code 1: eeee"));
}

TEST_CASE("the example plug-in of inputs/plugins/reward_example", "[reward][plugin]") {
  RewardOptions options;
  options.custom_rm_path = std::string(SLIME_REWARD_EXAMPLE_PLUGIN) + ":answer_tag_reward";
  auto model = make_reward_model(options);
  CHECK(model->score(sample("thinking...<answer> Paris </answer>", "paris")).value == 1.0);
  CHECK(model->score(sample("<answer>Paris</answer> no, <answer>Rome</answer>", "Paris")).value == 0.1);
  CHECK(model->score(sample("<answer>Rome</answer>", "Paris", {{"format_reward", 0.0}})).value == 0.0);
  CHECK(model->score(sample("<answer>42</answer>", 42)).value == 1.0);
  CHECK(model->score(sample("Paris", "Paris")).value == 0.0);
  CHECK_THROWS_WITH(model->score(sample("<answer>x</answer>", ordered_json::array({1}))),
                    Catch::Contains("answer_tag_reward failed with code 2") &&
                        Catch::Contains("the label must be a string or a number"));
  CHECK_THROWS_WITH(model->score(sample("<answer>x</answer>", "x", {{"format_reward", "high"}})),
                    Catch::Contains("failed with code 3"));
}
