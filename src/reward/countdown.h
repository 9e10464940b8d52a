// Arithmetic verifiers: `countdown` (the TinyZero Countdown task: combine the given numbers with + - * / and
// parentheses to reach a target) and `arithmetic` (the final number of the response equals the label). Both are
// exact: numbers are rationals (rational.h), never floats.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "reward/rational.h"

namespace slime::reward {

// An arithmetic expression over integer literals: + - * / parentheses, unary minus, spaces. `value` is nullopt
// when the text is not such an expression, divides by zero, or overflows; `literals` are the integers it uses
// (without signs), in order.
struct EvaluatedExpression {
  std::optional<Rational> value;
  std::vector<int128> literals;
};
EvaluatedExpression evaluate_integer_expression(std::string_view expression);

struct CountdownProblem {
  Rational target;
  std::vector<int128> numbers;  // each must be used exactly once
};
// From a TinyZero-style label {"target": 24, "numbers": [..]}, or a numeric label (the target) with
// metadata {"numbers": [..]}, or metadata {"target", "numbers"}. Errors name the missing or malformed field.
CountdownProblem countdown_problem(const nlohmann::ordered_json& label, const nlohmann::ordered_json& metadata);
// The content of the last complete <answer>...</answer>, else the last non-empty line; an "= ..." tail is dropped.
std::string countdown_extract_equation(std::string_view response);
// 1 when the equation uses every given number exactly once and equals the target exactly, else 0.
double countdown_reward(std::string_view response, const nlohmann::ordered_json& label,
                        const nlohmann::ordered_json& metadata);

// The last number written in `text` ("42", "-3", "1,234", "2.5", "3/4"); nullopt if none.
std::optional<Rational> final_number(std::string_view text);
// `arithmetic` reward: 1 when the final number of the answer part of the response (the last \boxed{} content,
// else the last <answer>...</answer>, else the whole response) equals the label's number exactly. The label is a
// number, a numeric string ("-3/4", "1,234", "2.5") or a GSM8K solution ending in "#### <number>".
double arithmetic_reward(std::string_view response, const nlohmann::ordered_json& label);

}  // namespace slime::reward
