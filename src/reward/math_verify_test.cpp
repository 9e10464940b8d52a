// Tests of the math verifiers: slime's tests/test_rm_math.py, test_rm_deepscaler.py and test_rm_math_dapo.py
// ported case by case (expected values unchanged), then our own edge cases for the exact equivalence.
#include "reward/math_verify.h"

#include <catch2/catch.hpp>

#include "core/error.h"
#include "reward/exact_expr.h"

using namespace slime::reward;
using nlohmann::ordered_json;

// ---------------------------------------------------------------------------------------------------------
// slime tests/test_rm_math.py
// ---------------------------------------------------------------------------------------------------------

TEST_CASE("slime test_rm_math: last_boxed_only_string", "[reward][math][slime]") {
  CHECK(last_boxed_only_string(R"(first attempt \boxed{wrong}, final \boxed{42})") == std::string(R"(\boxed{42})"));
  CHECK(last_boxed_only_string(R"(answer: \boxed{\frac{1}{2}})") == std::string(R"(\boxed{\frac{1}{2}})"));
  CHECK(last_boxed_only_string(R"(answer: \fbox{7})") == std::string(R"(\fbox{7})"));
  CHECK_FALSE(last_boxed_only_string("plain text, no box").has_value());
  CHECK_FALSE(last_boxed_only_string(R"(start \boxed{never closes)").has_value());
}

TEST_CASE("slime test_rm_math: remove_boxed and extraction", "[reward][math][slime]") {
  CHECK(remove_boxed(R"(\boxed{x+1})") == std::string("x+1"));
  CHECK(remove_boxed(R"(\boxed{\frac{1}{2}})") == std::string(R"(\frac{1}{2})"));
  CHECK_FALSE(remove_boxed("not boxed at all").has_value());
  // remove_boxed(None) has no C++ counterpart (the argument is never null).
  CHECK(extract_boxed_answer(R"(Solution: \boxed{42})") == std::string("42"));
  CHECK_FALSE(extract_boxed_answer("just 42").has_value());
}

TEST_CASE("slime test_rm_math: _strip_string canonical substitutions", "[reward][math][slime]") {
  const std::pair<const char*, const char*> cases[] = {
      {R"(\frac12)", R"(\frac{1}{2})"},
      {R"(\tfrac{1}{2})", R"(\frac{1}{2})"},
      {R"(\left(1\right))", "(1)"},
      {R"(45^{\circ})", "45"},
      {R"(45^\circ)", "45"},
      {".7", "0.7"},
      {"0.5", R"(\frac{1}{2})"},
      {".5", R"(\frac{1}{2})"},
      {"3/4", R"(\frac{3}{4})"},
      {"1 + 1", "1+1"},
  };
  for (const auto& [raw, expected] : cases) {
    INFO(raw);
    CHECK(strip_string(raw) == std::string(expected));
  }
}

TEST_CASE("slime test_rm_math: mathd normalisation and grading", "[reward][math][slime]") {
  CHECK(mathd_normalize_answer(R"(\text{42})") == "42");
  // mathd_normalize_answer(None) has no C++ counterpart.
  CHECK(grade_answer_mathd(R"(\frac{1}{2})", "0.5"));
  CHECK(grade_answer_mathd(R"(\frac12)", R"(\frac{1}{2})"));
  CHECK(grade_answer_mathd(R"(45^\circ)", "45"));
  CHECK(grade_answer_mathd("3/4", R"(\frac{3}{4})"));
  CHECK_FALSE(grade_answer_mathd("42", "43"));
}

TEST_CASE("slime test_rm_math: sympy-path grading and grade_answer_verl", "[reward][math][slime]") {
  CHECK(grade_answer_equivalent("x+1", "1+x"));
  CHECK_FALSE(grade_answer_equivalent(R"(\frac{2}{4})", R"(\frac{1}{2})"));  // unreduced fractions are not equal
  CHECK(grade_answer_verl(R"(answer: \boxed{42})", R"(\boxed{42})"));
  CHECK_FALSE(grade_answer_verl("just 42", "42"));
  CHECK_FALSE(grade_answer_verl(R"(\boxed{42})", ""));
}

// ---------------------------------------------------------------------------------------------------------
// slime tests/test_rm_deepscaler.py
// ---------------------------------------------------------------------------------------------------------

TEST_CASE("slime test_rm_deepscaler", "[reward][deepscaler][slime]") {
  CHECK(deepscaler_reward(R"(Let me reconsider. \boxed{99}</think>Final: \boxed{42})", "42") == 1);
  CHECK(deepscaler_reward(R"(Scratch work \boxed{wrong}###Response\boxed{42})", "42") == 1);
  CHECK(deepscaler_reward(R"(\boxed{42})", "42") == 0);
  CHECK(deepscaler_reward("plain</think>no box here", "42") == 0);
  CHECK(deepscaler_reward(R"(</think>\boxed{42})", "") == 0);
  CHECK(deepscaler_reward(R"(</think>\boxed{42})", 42) == 1);
  CHECK(deepscaler_reward(R"(</think>\boxed{42})", 42.0) == 1);  // slime's float case passes 42; 42.0 is harder
  CHECK(deepscaler_reward(R"(</think>\boxed{42})", R"(\boxed{42})") == 1);
  CHECK(deepscaler_reward(R"(</think>\boxed{43})", "42") == 0);
  CHECK(deepscaler_reward(R"(</think>\boxed{\frac{1}{2}})", "0.5") == 1);
  CHECK_THROWS_WITH(deepscaler_reward(R"(</think>\boxed{1})", ordered_json::array({1})),
                    Catch::Contains("rm_type deepscaler") && Catch::Contains("string or a number"));
}

// ---------------------------------------------------------------------------------------------------------
// slime tests/test_rm_math_dapo.py
// ---------------------------------------------------------------------------------------------------------

TEST_CASE("slime test_rm_math_dapo: normalize_final_answer", "[reward][dapo][slime]") {
  const std::pair<const char*, const char*> cases[] = {
      {"x = 42", "42"},
      {"an answer", "answer"},
      {"42 square", "42"},
      {"100 dollars", "100"},
      {R"(\text{hello})", "hello"},
      {R"(\boxed{42})", "42"},
      {"1,234,567", "1234567"},
      {"a b c", "bc"},
  };
  for (const auto& [raw, expected] : cases) {
    INFO(raw);
    CHECK(dapo_normalize_final_answer(raw) == expected);
  }
  CHECK(dapo_normalize_final_answer("42<|endoftext|>") == "42");
  CHECK(dapo_normalize_final_answer("42<|im_end|>") == "42");
}

TEST_CASE("slime test_rm_math_dapo: strict box", "[reward][dapo][slime]") {
  auto correct = dapo_is_correct_strict_box(R"(long preamble … \boxed{42})", "42");
  CHECK(correct.correct);
  CHECK(correct.prediction == std::string("42"));
  auto wrong = dapo_is_correct_strict_box(R"(\boxed{43})", "42");
  CHECK_FALSE(wrong.correct);
  CHECK(wrong.prediction == std::string("43"));
  auto none = dapo_is_correct_strict_box("plain 42", "42");
  CHECK_FALSE(none.correct);
  CHECK_FALSE(none.prediction.has_value());
}

TEST_CASE("slime test_rm_math_dapo: minerva", "[reward][dapo][slime]") {
  auto verdict = dapo_is_correct_minerva("Long solution. Answer: 42", "42");
  CHECK(verdict.correct);
  CHECK(verdict.prediction == std::string("42"));
  CHECK(dapo_is_correct_minerva("Answer: 41 was a wrong guess.\nAnswer: 42", "42").correct);
  CHECK_FALSE(dapo_is_correct_minerva("just a number 42", "42").correct);
  CHECK(dapo_is_correct_minerva("Answer: 42", "42").correct);  // verify() default path
}

TEST_CASE("slime test_rm_math_dapo: compute_score", "[reward][dapo][slime]") {
  CHECK(dapo_compute_score(R"(\boxed{42})", "42", true) ==
        ordered_json({{"score", 1.0}, {"acc", true}, {"pred", "42"}}));
  auto wrong = dapo_compute_score(R"(\boxed{43})", "42", true);
  CHECK(wrong["score"] == -1.0);
  CHECK(wrong["acc"] == false);
  std::string filler;
  for (int i = 0; i < 60; ++i) filler += " filler";
  CHECK(dapo_compute_score(std::string(R"(\boxed{42})") + filler, "42", true)["score"] == -1.0);
}

// ---------------------------------------------------------------------------------------------------------
// Our cases
// ---------------------------------------------------------------------------------------------------------

TEST_CASE("boxed extraction: nesting, several boxes, no braces", "[reward][math]") {
  CHECK(extract_boxed_answer(R"(\boxed{\frac{\sqrt{3}}{2}})") == std::string(R"(\frac{\sqrt{3}}{2})"));
  CHECK(extract_boxed_answer(R"(\boxed{1} then \boxed{2} and finally \boxed{\{3\}})") == std::string(R"(\{3\})"));
  CHECK(extract_boxed_answer(R"(so $\boxed 5$.)") == std::string("5"));
  CHECK(extract_boxed_answer("the answer is \\boxed 12\nok") == std::string("12"));
  CHECK(extract_boxed_answer(R"(\boxed {7})") == std::string("7"));
  CHECK(extract_boxed_answer(R"(\boxed{})") == std::string(""));
  CHECK_FALSE(extract_boxed_answer(R"(\fbox{7})").has_value());                // slime only extracts \boxed
  CHECK_FALSE(extract_boxed_answer(R"(\boxed{1} and \boxed{2)").has_value());  // the last box never closes
}

TEST_CASE("math reward: equivalences", "[reward][math]") {
  auto math = [](const std::string& boxed, const ordered_json& label) {
    return math_reward("The answer is \\boxed{" + boxed + "}.", label);
  };
  // fractions, decimals, mixed numbers
  CHECK(math(R"(\frac{1}{4})", "0.25") == 1);
  CHECK(math("0.25", R"(\frac14)") == 1);
  CHECK(math(R"(\dfrac{3}{2})", "1.5") == 1);
  CHECK(math(R"(1\frac{1}{2})", R"(\frac{3}{2})") == 1);
  CHECK(math("-0.5", R"(-\frac{1}{2})") == 1);
  CHECK(math(R"(\frac{-1}{2})", R"(-\frac{1}{2})") == 1);
  CHECK(math("0.33", R"(\frac{1}{3})") == 0);
  CHECK(math(R"(\frac{2}{4})", R"(\frac{1}{2})") == 0);
  // integers
  CHECK(math("10", "10.0") == 1);
  CHECK(math("1,000,000", "1000000") == 1);
  CHECK(math("7", ordered_json(7)) == 1);
  CHECK(math("7.0", ordered_json(7)) == 1);
  CHECK(math("7.5", ordered_json(7)) == 0);
  CHECK(math("0", ordered_json(0)) == 1);  // slime scores 0 here: `if not ground_truth` (documented difference)
  // percent, degrees, dollars, text and units
  CHECK(math(R"(50\%)", "50") == 1);
  CHECK(math(R"(30^\circ)", "30") == 1);
  CHECK(math(R"(\$5)", "5") == 1);
  CHECK(math(R"(\text{(B)})", "(B)") == 1);
  CHECK(math(R"(12\text{ cm})", "12") == 1);
  CHECK(math("5 meters", "5") == 1);
  // spacing and \left / \right
  CHECK(math(R"(\frac {1} {2})", R"(\frac{1}{2})") == 1);
  CHECK(math(R"(\left( 1, 2 \right))", "(1,2)") == 1);
  CHECK(math(R"(x = 5)", "5") == 1);
  // tuples and intervals
  CHECK(math("(1, 2)", "(1,2)") == 1);
  CHECK(math("(2, 1)", "(1,2)") == 0);
  CHECK(math("[1, 2]", "(1,2)") == 0);
  CHECK(math(R"((\frac{1}{2}, 3))", "(0.5, 3)") == 1);
  // surds and pi
  CHECK(math(R"(2\sqrt{2})", R"(\sqrt{8})") == 1);
  CHECK(math(R"(\frac{\sqrt{2}}{2})", R"(\frac{1}{\sqrt{2}})") == 1);
  CHECK(math(R"(\sqrt{2}+\sqrt{3})", R"(\sqrt{5})") == 0);
  CHECK(math(R"(\sqrt{12})", R"(2\sqrt3)") == 1);
  CHECK(math(R"(2\pi)", R"(\pi \cdot 2)") == 1);
  CHECK(math(R"(\frac{\pi}{2})", "1.5708") == 0);
  // polynomials
  CHECK(math("x^2+2x+1", "(x+1)^2") == 1);
  CHECK(math("x^2+2x+2", "(x+1)^2") == 0);
  CHECK(math(R"(\frac{x}{x})", "1") == 0);  // an integer truth needs an integer answer, as slime
  CHECK(math(R"(\frac{1}{1+\sqrt{2}})", R"(\sqrt{2}-1)") == 1);
  // nothing to grade
  CHECK(math_reward("no box at all: 5", "5") == 0);
  CHECK(math_reward(R"(\boxed{5})", ordered_json()) == 0);
  CHECK(math_reward(R"(\boxed{5})", "") == 0);
}

TEST_CASE("normalize_answer_expression follows slime's _normalize", "[reward][math]") {
  CHECK(normalize_answer_expression(R"(\text{5 inches})") == "5");
  CHECK(normalize_answer_expression("3 million") == "3*10^6");
  CHECK(normalize_answer_expression(R"(\frac{1}{2})") == "1/2");
  CHECK(normalize_answer_expression(R"(7 \frac{3}{4})") == "7+3/4");
  CHECK(normalize_answer_expression(R"(\sqrt{2})") == "sqrt(2)");
  CHECK(normalize_answer_expression("1,234") == "1234");
  CHECK(normalize_answer_expression("X") == "x");
  CHECK(normalize_answer_expression("2 and 3") == "2,3");
  CHECK(normalize_answer_expression("12.00000001") == "12");
}

TEST_CASE("exact expression equality", "[reward][math]") {
  CHECK(expressions_equal("1/3+1/6", "1/2") == true);
  CHECK(expressions_equal("0.1+0.2", "0.3") == true);  // exact decimals (sympy's floats disagree)
  CHECK(expressions_equal("2^10", "1024") == true);
  CHECK(expressions_equal("2^-1", "0.5") == true);
  CHECK(expressions_equal("5!", "120") == true);
  CHECK(expressions_equal("sqrt(18)", "3sqrt(2)") == true);
  CHECK(expressions_equal("sqrt(2)sqrt(3)", "sqrt(6)") == true);
  CHECK(expressions_equal("sqrt(1/2)", "sqrt(2)/2") == true);
  CHECK(expressions_equal("(x+y)(x-y)", "x^2-y^2") == true);
  CHECK(expressions_equal("1/(x+1)+1/(x-1)", "2x/(x^2-1)") == true);
  CHECK(expressions_equal("x", "y") == false);
  CHECK(expressions_equal("1/0", "1") == std::nullopt);
  CHECK(expressions_equal("sqrt(-1)", "i") == std::nullopt);
  CHECK(expressions_equal("sin(x)", "1") == std::nullopt);
  CHECK(expressions_equal("1,2", "12") == std::nullopt);
  CHECK(expressions_equal("99999999999999999999^9", "1") == std::nullopt);  // overflow is "cannot tell"
}

TEST_CASE("dapo: extraction details and label errors", "[reward][dapo]") {
  CHECK(dapo_compute_score("work...\nAnswer: $1,000$", "1000")["acc"] == true);
  CHECK(dapo_compute_score("Answer: 12 dollars", ordered_json(12).dump())["score"] == 1.0);
  CHECK(dapo_compute_score("answer : 7", "7.0")["acc"] == true);    // label cast like int(float("7.0"))
  CHECK(dapo_compute_score("Answer: 7.5", "7.5")["acc"] == false);  // int(float("7.5")) is 7, as slime
  auto invalid = dapo_compute_score("no marker", "3");
  CHECK(invalid["pred"] == "[INVALID]");
  CHECK(invalid["score"] == -1.0);
  // Only the last 300 characters count: an early answer line is cut away.
  CHECK(dapo_compute_score("Answer: 5\n" + std::string(400, '.'), "5")["acc"] == false);
  CHECK_THROWS_WITH(dapo_compute_score("Answer: 5", "five"),
                    Catch::Contains("rm_type dapo") && Catch::Contains("'five' is not a number"));
}
