// Math answer verifiers, ported from slime's rm_hub: `math` (math_utils.py::grade_answer_verl), `deepscaler`
// (deepscaler.py) and `dapo` (math_dapo_utils.py). Where slime calls sympy, we decide equivalence exactly with
// exact_expr.h (rational functions over Q(square roots)); everything else follows slime's string rules step by step.
//
// Deliberate differences from slime (all documented in math_verify_test.cpp):
//   - `\boxed 5` and `\boxed {5}` are read as the box of "5" (slime's math_utils returns nothing for them).
//   - a numeric label 0 is the answer "0" (slime's `if not ground_truth` treats it as a missing label).
//   - decimals are exact: "0.1+0.2" equals "0.3" (sympy's floats do not).
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace slime::reward {

// ---- boxed answers (math_utils.py) ----
// The last `\boxed{...}` (braces balanced, nested braces kept) or, when there is none, the last `\fbox{...}`;
// `\boxed 5` gives "\boxed 5". nullopt when there is no box or its braces never close.
std::optional<std::string> last_boxed_only_string(std::string_view text);
// "\boxed{x}" -> "x", "\boxed 5" -> "5"; nullopt for anything else (including "\fbox{...}", as slime).
std::optional<std::string> remove_boxed(std::string_view boxed);
// slime's extract_answer: the content of the last box, nullopt when the text has no "\boxed".
std::optional<std::string> extract_boxed_answer(std::string_view text);

// ---- Hendrycks MATH normalisation (mathd) ----
// _strip_string: drops \left \right \! spaces units ^\circ \$ \%, dfrac/tfrac -> frac, \frac12 -> \frac{1}{2},
// \sqrt3 -> \sqrt{3}, ".5" -> "0.5", "0.5" -> "\frac{1}{2}", "3/4" -> "\frac{3}{4}", "x = 5" -> "5".
// Where slime's Python would raise (e.g. a trailing "\frac"), returns nullopt.
std::optional<std::string> strip_string(std::string_view answer);
// mathd_normalize_answer: strip, unwrap an enclosing \text{...}, then strip_string (its input when that fails).
std::string mathd_normalize_answer(std::string_view answer);
bool grade_answer_mathd(std::string_view given, std::string_view truth);

// ---- equivalence (slime's grade_answer_sympy with an exact evaluator instead of sympy) ----
// slime's _normalize: \text{} unwrapped, units/percent/dollars dropped, LaTeX turned into plain expressions
// (\frac{a}{b} -> a/b, \sqrt{n} -> sqrt(n), mixed numbers "7 3/4" -> 7+3/4), lower case, integers canonical.
// Meant for answers: like slime's, its comma stripping is quadratic in the length of the text.
std::string normalize_answer_expression(std::string_view answer);
// Tuples/intervals compared element-wise; unreduced fractions must match literally and an integer truth needs an
// integer answer (both as slime); other elements are compared exactly with exact_expr.h. Answers longer than
// kMaxEquivalenceLength characters are not compared here (false): only grade_answer_mathd judges them.
constexpr size_t kMaxEquivalenceLength = 1000;
bool grade_answer_equivalent(std::string_view given, std::string_view truth);

// grade_answer_verl: last \boxed{} of the response vs the label (its own box content if it has one).
bool grade_answer_verl(std::string_view response, std::string_view truth);

// The label as the text slime would compare: a string as is, an integer in decimal, a float as Python's str()
// (42.0 -> "42.0"). Other JSON types are an error naming `rm_type`.
std::string label_text(const nlohmann::ordered_json& label, std::string_view rm_type);

// `math` reward: 1 or 0. A null or empty-string label scores 0, as slime.
double math_reward(std::string_view response, const nlohmann::ordered_json& label);
// `deepscaler` reward: 1 or 0; the response must contain "</think>" (the text after the last one is graded) or
// "###Response" (the text after the first one, up to a second one).
double deepscaler_reward(std::string_view response, const nlohmann::ordered_json& label);

// ---- dapo (Minerva-style "Answer:" extraction) ----
std::string dapo_normalize_final_answer(std::string_view answer);
struct DapoVerdict {
  bool correct = false;
  std::optional<std::string> prediction;  // normalised extracted answer; nullopt only in strict-box mode
};
// Last "Answer: X" line (case-insensitive) normalised, against the label cast like int(float(label)); a label
// that is not a number is an error (slime raises too).
DapoVerdict dapo_is_correct_minerva(std::string_view solution, std::string_view truth);
// Strict box: the last \boxed{} in the last 100 characters must equal the label exactly.
DapoVerdict dapo_is_correct_strict_box(std::string_view solution, std::string_view truth);
// {"score": 1.0 or -1.0, "acc": bool, "pred": string or null}, judged on the last 300 characters.
nlohmann::ordered_json dapo_compute_score(std::string_view response, std::string_view truth,
                                          bool strict_box_verify = false);

}  // namespace slime::reward
