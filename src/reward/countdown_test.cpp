// Tests of the exact arithmetic verifiers (`countdown`, `arithmetic`) and of the rational numbers under them.
#include "reward/countdown.h"

#include <catch2/catch.hpp>

#include "core/error.h"
#include "reward/rational.h"

using namespace slime::reward;
using nlohmann::ordered_json;

namespace {
const ordered_json kProblem = {{"target", 24}, {"numbers", {3, 8, 2, 1}}};
}

TEST_CASE("rationals are exact and checked", "[reward][rational]") {
  auto third = *make_rational(1, 3);
  auto sixth = *make_rational(2, 12);
  CHECK(to_string(*checked_add(third, sixth)) == "1/2");
  CHECK(to_string(*make_rational(6, -4)) == "-3/2");
  CHECK_FALSE(make_rational(1, 0).has_value());
  CHECK_FALSE(checked_div(third, Rational{0, 1}).has_value());
  CHECK(to_string(*parse_decimal("-3.250")) == "-13/4");
  CHECK(to_string(*parse_decimal(".5")) == "1/2");
  CHECK(to_string(*parse_decimal("1e3")) == "1000");
  CHECK(to_string(*parse_decimal("2.5e-1")) == "1/4");
  CHECK_FALSE(parse_decimal("1,000").has_value());
  CHECK_FALSE(parse_decimal("").has_value());
  CHECK_FALSE(parse_decimal("-").has_value());
  auto big = *parse_decimal("10000000000000000000");  // 1e19
  CHECK_FALSE(checked_pow(big, 2).has_value());       // 1e38 does not fit: no wrong value, no value
  CHECK(to_string(*checked_pow(*make_rational(2, 3), -2)) == "9/4");
  CHECK(*make_rational(1, 3) < *make_rational(1, 2));
}

TEST_CASE("integer expressions", "[reward][countdown]") {
  auto evaluated = evaluate_integer_expression(" (8 / (3 - 8/3)) ");
  REQUIRE(evaluated.value.has_value());
  CHECK(to_string(*evaluated.value) == "24");
  CHECK(evaluated.literals == std::vector<int128>{8, 3, 8, 3});
  CHECK(to_string(*evaluate_integer_expression("-3 * -(2 + 1)").value) == "9");
  CHECK(to_string(*evaluate_integer_expression("7/2").value) == "7/2");  // exact, no integer division
  auto by_zero = evaluate_integer_expression("5 / (2 - 2)");
  CHECK_FALSE(by_zero.value.has_value());
  CHECK(by_zero.literals.size() == 3);
  CHECK_FALSE(evaluate_integer_expression("2 ^ 3").value.has_value());
  CHECK_FALSE(evaluate_integer_expression("(1 + 2").value.has_value());
  CHECK_FALSE(evaluate_integer_expression("1.5 * 2").value.has_value());
  CHECK_FALSE(evaluate_integer_expression("").value.has_value());
  CHECK_FALSE(evaluate_integer_expression("3 4").value.has_value());
}

TEST_CASE("countdown reward", "[reward][countdown]") {
  ordered_json none = ordered_json::object();
  CHECK(countdown_reward("Let me think...\n<answer>(3 - 1) * 8 + 2 * 4</answer>", kProblem, none) == 0);  // 4 not given
  CHECK(countdown_reward("<answer>(3 + 1) * (8 - 2)</answer>", kProblem, none) == 1);
  CHECK(countdown_reward("<answer>(3 + 1) * (8 - 2) = 24</answer>", kProblem, none) == 1);
  CHECK(countdown_reward("I try <answer>3*8</answer> then\n<answer>8 * 3 * (2 - 1)</answer>", kProblem, none) == 1);
  CHECK(countdown_reward("<answer>8 * 3 * 1</answer>", kProblem, none) == 0);          // 2 not used
  CHECK(countdown_reward("<answer>8 * 3 * 1 * 1</answer>", kProblem, none) == 0);      // 1 reused, 2 not used
  CHECK(countdown_reward("<answer>8 * 3 * 2 * 1 / 2</answer>", kProblem, none) == 0);  // 2 reused
  CHECK(countdown_reward("<answer>8 * 3 + 2 - 1</answer>", kProblem, none) == 0);      // 25, not the target
  CHECK(countdown_reward("<answer>8 / (2 - 2 * 1) + 3</answer>", {{"target", 24}, {"numbers", {8, 2, 2, 1, 3}}},
                         none) == 0);                                                // division by zero
  CHECK(countdown_reward("<answer>8 x 3 x (2 - 1)</answer>", kProblem, none) == 0);  // not an expression
  CHECK(countdown_reward("no answer tag, last line:\n8 * 3 * (2 - 1)\n\n", kProblem, none) == 1);
  CHECK(countdown_reward("The answer is 8*3*(2-1)", kProblem, none) == 0);  // words on the line
  // Exact rationals: 8 / (3 - 8/3) = 24 is right, although floats would give 23.999999999999993.
  CHECK(countdown_reward("<answer>8 / (3 - 8 / 3)</answer>", {{"target", 24}, {"numbers", {8, 3, 8, 3}}}, none) == 1);
}

TEST_CASE("countdown problem sources and errors", "[reward][countdown]") {
  ordered_json none = ordered_json::object();
  CHECK(countdown_reward("<answer>4 + 5</answer>", 9, {{"numbers", {5, 4}}}) == 1);
  CHECK(countdown_reward("<answer>4 + 5</answer>", "", {{"target", 9}, {"numbers", {5, 4}}}) == 1);
  CHECK_THROWS_WITH(countdown_reward("<answer>1</answer>", ordered_json{{"target", 1}}, none),
                    Catch::Contains("rm_type countdown: no 'numbers'"));
  CHECK_THROWS_WITH(countdown_reward("<answer>1</answer>", ordered_json{{"numbers", {1}}}, none),
                    Catch::Contains("rm_type countdown: no 'target'"));
  CHECK_THROWS_WITH(countdown_reward("<answer>1</answer>", ordered_json{{"target", 1}, {"numbers", {1.5}}}, none),
                    Catch::Contains("field 'numbers'"));
  CHECK_THROWS_WITH(countdown_reward("<answer>1</answer>", ordered_json{{"target", "x"}, {"numbers", {1}}}, none),
                    Catch::Contains("field 'target'"));
}

TEST_CASE("final number and arithmetic reward", "[reward][arithmetic]") {
  CHECK(to_string(*final_number("so 3 + 4 = 7.")) == "7");
  CHECK(to_string(*final_number("the result is -12")) == "-12");
  CHECK(to_string(*final_number("10-3")) == "3");  // a binary minus is not a sign
  CHECK(to_string(*final_number("total: 1,234,567 apples")) == "1234567");
  CHECK(to_string(*final_number("x = 3/4")) == "3/4");
  CHECK(to_string(*final_number("about 2.50")) == "5/2");
  CHECK(to_string(*final_number("list 1,2,3")) == "3");
  CHECK_FALSE(final_number("no digits here").has_value());

  CHECK(arithmetic_reward("12 * 12 = 144", 144) == 1);
  CHECK(arithmetic_reward("12 * 12 = 144", "144") == 1);
  CHECK(arithmetic_reward("12 * 12 = 143", 144) == 0);
  CHECK(arithmetic_reward("The result is 0.75", "3/4") == 1);
  CHECK(arithmetic_reward("The result is 0.75", 0.75) == 1);
  CHECK(arithmetic_reward("-7 + 2 = -5", -5) == 1);
  CHECK(arithmetic_reward("It is \\boxed{42}, since 40 + 2 = 42 and I checked 43", 42) == 1);  // box wins
  CHECK(arithmetic_reward("<answer>17</answer> (I double checked with 18)", 17) == 1);
  CHECK(arithmetic_reward("Total: 1,000", "1,000") == 1);
  CHECK(arithmetic_reward("no number", 1) == 0);
  CHECK(arithmetic_reward("She has 3 + 4 = 7 apples.\n#### 7", "3 + 4 = <<3+4=7>>7 apples.\n#### 7") == 1);
  CHECK_THROWS_WITH(arithmetic_reward("1", "one"), Catch::Contains("rm_type arithmetic"));
  CHECK_THROWS_WITH(arithmetic_reward("1", ordered_json::array({1})), Catch::Contains("rm_type arithmetic"));
}
