// Differential test against slime itself: testdata/slime_golden.jsonl holds rewards computed by slime's Python
// rm_hub (with sympy and pylatexenc) on a grid of answers, written by testdata/make_slime_golden.py. Every case
// must agree, except the documented differences listed below, which must still differ (so the list stays true).
#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>

#include "core/error.h"
#include "reward/math_verify.h"
#include "reward/text_match.h"

using namespace slime::reward;
using nlohmann::ordered_json;

namespace {

struct KnownDifference {
  const char* kind;
  const char* given;  // math: the boxed answer; other kinds: the response
  const char* truth;
  const char* reason;
};

// Where we differ from slime on purpose: slime turns LaTeX into text with pylatexenc 2.x before sympy, which
// writes \frac{a+1}{2} as "a+1/2" (the grouping of the fraction is lost) and \sqrt[3]{2} as "√(2)" (the degree
// is lost). We keep the grouping and refuse roots other than square roots.
constexpr const char* kLostGrouping = "pylatexenc drops the fraction's grouping: slime compares a+1/2";
constexpr const char* kLostDegree = "pylatexenc drops the root degree: slime takes the cube root of 2 for sqrt 2";
const KnownDifference kKnownDifferences[] = {
    {"math", "(a+1)/2", R"(\frac{1+a}{2})", kLostGrouping},
    {"math", "(a+1)/2", R"(\frac{a+1}{2})", kLostGrouping},
    {"math", R"(\frac{1+a}{2})", "(a+1)/2", kLostGrouping},
    {"math", R"(\frac{1+a}{2})", R"(\frac{a+1}{2})", kLostGrouping},
    {"math", R"(\frac{1+a}{2})", "a/2+1/2", kLostGrouping},
    {"math", R"(\frac{a+1}{2})", "(a+1)/2", kLostGrouping},
    {"math", R"(\frac{a+1}{2})", R"(\frac{1+a}{2})", kLostGrouping},
    {"math", R"(\frac{a+1}{2})", "a/2+1/2", kLostGrouping},
    {"math", "a/2+1/2", R"(\frac{1+a}{2})", kLostGrouping},
    {"math", "a/2+1/2", R"(\frac{a+1}{2})", kLostGrouping},
    {"math", R"(-1+\sqrt{2})", R"(\frac{1}{1+\sqrt{2}})", kLostGrouping},
    {"math", R"(\frac{1}{1+\sqrt{2}})", R"(-1+\sqrt{2})", kLostGrouping},
    {"math", R"(\frac{1}{1+\sqrt{2}})", R"(\sqrt{2}-1)", kLostGrouping},
    {"math", R"(\sqrt{2}-1)", R"(\frac{1}{1+\sqrt{2}})", kLostGrouping},
    {"math", R"(\sqrt[3]{2})", R"(\sqrt{2})", kLostDegree},
    {"math", R"(\sqrt{2})", R"(\sqrt[3]{2})", kLostDegree},
};

std::string golden_path() {
  const char* source = std::getenv("SLIME_SOURCE_DIR");
  REQUIRE(source != nullptr);
  return std::string(source) + "/src/reward/testdata/slime_golden.jsonl";
}

// The boxed answer of a math case's response "So the answer is $\boxed{...}$.".
std::string boxed_of(const std::string& response) { return extract_boxed_answer(response).value_or(response); }

}  // namespace

TEST_CASE("our verifiers agree with slime's Python on the golden grid", "[reward][golden]") {
  std::ifstream file(golden_path());
  REQUIRE(file.good());
  std::string line;
  std::getline(file, line);
  INFO("golden data from slime commit " << ordered_json::parse(line)["slime_commit"]);
  int total = 0, agreeing = 0;
  std::set<std::string> unexpected, expected_differences_seen;
  while (std::getline(file, line)) {
    auto record = ordered_json::parse(line);
    std::string kind = record["kind"];
    std::string response = record["response"];
    const auto& label = record["label"];
    const auto& expected = record["expected"];
    bool agree;
    std::string ours;
    if (kind == "math") {
      double reward = math_reward(response, label);
      agree = reward == expected.get<double>();
      ours = std::to_string(reward);
    } else if (kind == "deepscaler") {
      double reward = deepscaler_reward(response, label);
      agree = reward == expected.get<double>();
      ours = std::to_string(reward);
    } else if (kind == "dapo") {
      auto reward = dapo_compute_score(response, label_text(label, "dapo"));
      agree = reward == expected;
      ours = reward.dump();
    } else if (kind == "f1") {
      double reward = f1_reward(response, label);
      agree = std::abs(reward - expected.get<double>()) < 1e-12;
      ours = std::to_string(reward);
    } else if (kind == "gpqa") {
      double reward = gpqa_reward(response, label, record["metadata"]);
      agree = reward == expected.get<double>();
      ours = std::to_string(reward);
    } else {
      FAIL("unknown kind in the golden file: " << kind);
      continue;
    }
    ++total;
    std::string given = kind == "math" ? boxed_of(response) : response;
    std::string truth = label.is_string() ? label.get<std::string>() : label.dump();
    const KnownDifference* listed = nullptr;
    for (const auto& known : kKnownDifferences)
      if (kind == known.kind && given == known.given && truth == known.truth) listed = &known;
    std::string description = kind + " | " + given + " | " + truth + " | slime " + expected.dump() + " | ours " + ours;
    if (agree) {
      ++agreeing;
      if (listed) unexpected.insert("listed as a difference but agrees: " + description);
    } else if (listed) {
      expected_differences_seen.insert(description + " (" + listed->reason + ")");
    } else {
      unexpected.insert(description);
    }
  }
  for (const auto& description : unexpected) UNSCOPED_INFO(description);
  CHECK(unexpected.empty());
  CHECK(expected_differences_seen.size() == std::size(kKnownDifferences));  // each documented difference occurs
  CHECK(agreeing > 2500);                                                   // the grid is all there
  WARN("agree with slime on " << agreeing << " of " << total << " golden cases; " << expected_differences_seen.size()
                              << " documented differences");
}
