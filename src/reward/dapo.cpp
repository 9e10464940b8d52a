// The `dapo` verifier (slime's math_dapo_utils.py, after Minerva / lm-evaluation-harness): the last
// "Answer: X" line of the response tail, normalised, must equal the integer label. Returns slime's dict reward.
#include <cmath>
#include <regex>

#include "core/error.h"
#include "reward/math_verify.h"
#include "reward/text_util.h"

namespace slime::reward {

namespace {

// dapo's own last_boxed_only_string: only "\boxed{" counts (no \fbox, no "\boxed 5").
std::optional<std::string> dapo_last_boxed(std::string_view text) {
  size_t index = text.rfind("\\boxed{");
  if (index == std::string_view::npos) return std::nullopt;
  int depth = 0;
  for (size_t i = index; i < text.size(); ++i) {
    if (text[i] == '{') ++depth;
    if (text[i] == '}' && --depth == 0) return std::string(text.substr(index, i + 1 - index));
  }
  return std::nullopt;
}

const std::pair<const char*, const char*> kSubstitutions[] = {
    {"an ", ""}, {"a ", ""},       {".$", "$"},           {"\\$", ""},          {"\\ ", ""},
    {" ", ""},   {"mbox", "text"}, {",\\text{and}", ","}, {"\\text{and}", ","}, {"\\text{m}", "\\text{}"},
};

// clang-format off
const char* const kRemovedExpressions[] = {
    "square", "ways", "integers", "dollars", "mph", "inches", "hours", "km", "units", "\\ldots", "sue", "points",
    "feet", "minutes", "digits", "cents", "degrees", "cm", "gm", "pounds", "meters", "meals", "edges", "students",
    "childrentickets", "multiples", "\\text{s}", "\\text{.}", "\\text{\ns}", "\\text{}^2", "\\text{}^3",
    "\\text{\n}", "\\text{}", "\\mathrm{th}", "^\\circ", "^{\\circ}", "\\;", ",\\!", "{,}", "\"", "\\dots",
    "<|im_end|>", "<|endoftext|>",
};
// clang-format on

bool all_ascii_digits(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

}  // namespace

std::string dapo_normalize_final_answer(std::string_view raw) {
  std::string answer = text::split(raw, "=").back();
  for (const auto& [before, after] : kSubstitutions) answer = text::replace_all(answer, before, after);
  for (const char* expression : kRemovedExpressions) answer = text::replace_all(answer, expression, "");

  static const std::regex kDollarMath(R"((.*?)(\$)(.*?)(\$)(.*))");
  static const std::regex kText(R"((\\text\{)(.*?)(\}))");
  static const std::regex kTextbf(R"((\\textbf\{)(.*?)(\}))");
  static const std::regex kOverline(R"((\\overline\{)(.*?)(\}))");
  static const std::regex kBoxed(R"((\\boxed\{)(.*)(\}))");
  static const std::regex kShortFrac(R"((frac)([^{])(.))");
  static const std::regex kShortSqrt(R"((sqrt)([^{]))");
  answer = std::regex_replace(answer, kDollarMath, "$$$3$$");
  answer = std::regex_replace(answer, kText, "$2");
  answer = std::regex_replace(answer, kTextbf, "$2");
  answer = std::regex_replace(answer, kOverline, "$2");
  answer = std::regex_replace(answer, kBoxed, "$2");
  answer = std::regex_replace(answer, kShortFrac, "frac{$2}{$3}");
  answer = std::regex_replace(answer, kShortSqrt, "sqrt{$2}");
  answer = text::replace_all(answer, "$", "");
  if (all_ascii_digits(text::replace_all(answer, ",", ""))) answer = text::replace_all(answer, ",", "");
  return text::strip(answer);
}

DapoVerdict dapo_is_correct_minerva(std::string_view solution, std::string_view truth) {
  static const std::regex kAnswer(R"(Answer\s*:\s*([^\n]+))", std::regex::icase);
  std::string extracted = "[INVALID]";
  std::string haystack(solution);
  for (auto it = std::sregex_iterator(haystack.begin(), haystack.end(), kAnswer); it != std::sregex_iterator(); ++it)
    extracted = (*it)[1].str();
  // dapo labels are integers; a long text cannot be one, and slime's regexes (like std::regex) recurse per character.
  SLIME_CHECK(truth.size() <= 1000, "rm_type dapo: the label (", truth.size(),
              " characters) is not a number (dapo compares integer answers)");
  std::string prediction = dapo_normalize_final_answer(extracted);
  std::string truth_normalized = dapo_normalize_final_answer(truth);
  auto truth_value = text::python_float(truth_normalized);
  SLIME_CHECK(truth_value && std::isfinite(*truth_value), "rm_type dapo: the label '", truth,
              "' is not a number (dapo compares integer answers: slime casts the label with int(float(label)))");
  return DapoVerdict{prediction == text::python_int_string(*truth_value), prediction};
}

DapoVerdict dapo_is_correct_strict_box(std::string_view solution, std::string_view truth) {
  std::string tail = text::utf8_tail(solution, 100);
  auto boxed = dapo_last_boxed(tail);
  std::optional<std::string> prediction;
  if (boxed) prediction = boxed->substr(7, boxed->size() - 8);  // a balanced "\boxed{...}" always has the wrapper
  return DapoVerdict{prediction && *prediction == truth, prediction};
}

nlohmann::ordered_json dapo_compute_score(std::string_view response, std::string_view truth, bool strict_box_verify) {
  std::string tail = text::utf8_tail(response, 300);  // the longest MATH-500 answer has 159 characters
  DapoVerdict verdict =
      strict_box_verify ? dapo_is_correct_strict_box(tail, truth) : dapo_is_correct_minerva(tail, truth);
  nlohmann::ordered_json reward;
  reward["score"] = verdict.correct ? 1.0 : -1.0;
  reward["acc"] = verdict.correct;
  reward["pred"] =
      verdict.prediction ? nlohmann::ordered_json(text::sanitize_utf8(*verdict.prediction)) : nlohmann::ordered_json();
  return reward;
}

}  // namespace slime::reward
