// Tests of the text verifiers: slime's tests/test_rm_f1.py and tests/test_rm_gpqa.py ported case by case
// (expected values unchanged), then exact_match and our own f1 cases.
#include "reward/text_match.h"

#include <catch2/catch.hpp>

#include "core/error.h"

using namespace slime::reward;
using nlohmann::ordered_json;

namespace {
const std::vector<std::string> kDefaultLetters = {"A", "B", "C", "D", "E", "F", "G", "H", "I", "J"};
}

// ---------------------------------------------------------------------------------------------------------
// slime tests/test_rm_f1.py
// ---------------------------------------------------------------------------------------------------------

TEST_CASE("slime test_rm_f1: normalize_answer", "[reward][f1][slime]") {
  const std::pair<const char*, const char*> cases[] = {
      {"The Quick Brown Fox.", "quick brown fox"},
      {"An apple, a day", "apple day"},
      {"HELLO   WORLD", "hello world"},
      {"a.b,c!", "abc"},
      {"", ""},
      {"the", ""},
  };
  for (const auto& [raw, expected] : cases) {
    INFO(raw);
    CHECK(squad_normalize_answer(raw) == expected);
  }
}

TEST_CASE("slime test_rm_f1: scores", "[reward][f1][slime]") {
  auto exact = f1_score("Paris is the capital", "Paris is the capital");
  CHECK(exact.f1 == 1.0);
  CHECK(exact.precision == 1.0);
  CHECK(exact.recall == 1.0);

  auto partial = f1_score("the brown fox", "a quick brown fox");
  CHECK(partial.precision == Approx(1.0));
  CHECK(partial.recall == Approx(2.0 / 3.0));
  CHECK(partial.f1 == Approx(0.8));

  auto disjoint = f1_score("apple banana", "carrot date");
  CHECK(disjoint.f1 == 0);
  CHECK(disjoint.precision == 0);
  CHECK(disjoint.recall == 0);
  // f1_score(None, ...) has no C++ counterpart (the response is never null).

  for (const char* special : {"yes", "no", "noanswer"}) {
    INFO(special);
    CHECK(f1_score(special, "some other phrase").f1 == 0);
    CHECK(f1_score("some other phrase", special).f1 == 0);
  }
  auto yes = f1_score("yes", "yes");
  CHECK(yes.f1 == 1.0);
  CHECK(yes.precision == 1.0);
  CHECK(yes.recall == 1.0);
}

// ---------------------------------------------------------------------------------------------------------
// slime tests/test_rm_gpqa.py
// ---------------------------------------------------------------------------------------------------------

TEST_CASE("slime test_rm_gpqa: letter extraction", "[reward][gpqa][slime]") {
  const std::pair<const char*, const char*> cases[] = {
      {"The answer is B.", "B"},        {"Answer: C", "C"},
      {"My choice is D", "D"},          {"A is correct here", "A"},
      {"E is the correct option", "E"}, {"Final answer: B", "B"},
      {"the final option is C", "C"},   {"we ruled out A, then B, settled on C", "C"},
  };
  for (const auto& [response, expected] : cases) {
    INFO(response);
    CHECK(gpqa_extract_letter(response, kDefaultLetters) == std::string(expected));
  }
  CHECK(gpqa_extract_letter("Let me think… Answer: A is wrong.</think>The answer is B.", kDefaultLetters) ==
        std::string("B"));
  CHECK_FALSE(gpqa_extract_letter("no idea, sorry", kDefaultLetters).has_value());
  CHECK_FALSE(gpqa_extract_letter("", kDefaultLetters).has_value());
  CHECK(gpqa_extract_letter("Answer: C, but actually A was right, no wait B.", {"A", "B"}) == std::string("B"));
}

TEST_CASE("slime test_rm_gpqa: rewards", "[reward][gpqa][slime]") {
  ordered_json none = ordered_json::object();
  CHECK(gpqa_reward("The answer is C.", "C", none) == 1.0);
  CHECK(gpqa_reward("The answer is C.", "D", none) == 0.0);
  CHECK(gpqa_reward("Answer: C", 2, {{"choices", {"alpha", "beta", "gamma", "delta"}}}) == 1.0);
  CHECK(gpqa_reward("Answer: B", 1, {{"choices", {{"a", "first"}, {"b", "second"}, {"c", "third"}}}}) == 1.0);
  CHECK(gpqa_reward("I think the answer is B.", "capital of france",
                    {{"choices", {"London", "Capital of France", "Berlin"}}}) == 1.0);
  CHECK(gpqa_reward("Definitely paris.", "Paris", {{"choices", {"London", "Paris", "Berlin"}}}) == 1.0);
  CHECK(gpqa_reward("Answer: A", "anything", {{"correct_letter", "a"}}) == 1.0);
  // compute_gpqa_reward(None, ...) has no C++ counterpart; an empty response scores 0.
  CHECK(gpqa_reward("", "A", none) == 0.0);
  CHECK(gpqa_reward("random text", "some answer", none) == 0.0);
}

TEST_CASE("gpqa: our cases", "[reward][gpqa]") {
  // valid_letters as a string; a label index beyond the choices gives no correct letter.
  CHECK(gpqa_reward("Answer: D", "B", {{"valid_letters", "ABCD"}}) == 0.0);
  CHECK(gpqa_reward("Answer: B", "B", {{"valid_letters", "ABCD"}}) == 1.0);
  CHECK(gpqa_reward("Answer: A", 7, {{"choices", {"x", "y"}}}) == 0.0);
  // slime's last resort: the label text anywhere in the response (lenient for one-letter labels, as slime).
  CHECK(gpqa_reward("Answer: E", "E", {{"valid_letters", {"A", "B", "C", "D"}}}) == 1.0);
  // slime's first pattern backtracks to read the "i" of "is" as option I (Python's re does the same).
  CHECK(gpqa_extract_letter("The answer is (b)", kDefaultLetters) == std::string("I"));
  CHECK(gpqa_reward("The answer is (b)", "B", ordered_json::object()) == 0.0);
  CHECK(gpqa_reward("The answer is b", "B", ordered_json::object()) == 1.0);
  CHECK_THROWS_WITH(gpqa_reward("Answer: A", "A", {{"choices", "ABCD"}}), Catch::Contains("metadata field 'choices'"));
}

// ---------------------------------------------------------------------------------------------------------
// Our cases: f1 on partial overlaps, label lists, exact_match
// ---------------------------------------------------------------------------------------------------------

TEST_CASE("f1 reward: partial overlaps and label lists", "[reward][f1]") {
  // 2 common tokens of 4 predicted and 2 true: precision 1/2, recall 1, F1 2/3.
  CHECK(f1_reward("Barack Obama was president", "Barack Obama") == Approx(2.0 / 3.0));
  // Repeated tokens count as many times as they appear on both sides (multiset intersection).
  auto repeated = f1_score("new new york", "new york");
  CHECK(repeated.precision == Approx(2.0 / 3.0));
  CHECK(repeated.recall == Approx(1.0));
  CHECK(f1_reward("The Eiffel Tower!", ordered_json::array({"louvre", "eiffel tower"})) == Approx(1.0));
  CHECK(f1_reward("1999", 1999) == 1.0);
  CHECK_THROWS_WITH(f1_reward("x", ordered_json::object()), Catch::Contains("rm_type f1"));
  CHECK_THROWS_WITH(f1_reward("x", ordered_json::array()), Catch::Contains("empty array"));
}

TEST_CASE("exact_match reward", "[reward][exact_match]") {
  CHECK(exact_match_reward("The Eiffel Tower.", "eiffel tower") == 1);
  CHECK(exact_match_reward("Eiffel Tower, Paris", "eiffel tower") == 0);
  CHECK(exact_match_reward("  42 ", 42) == 1);
  CHECK(exact_match_reward("paris", ordered_json::array({"London", "Paris"})) == 1);
  CHECK(exact_match_reward("rome", ordered_json::array({"London", "Paris"})) == 0);
}
