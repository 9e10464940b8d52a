// Exact equivalence of two math answers without a computer algebra system (slime asks sympy.simplify(a - b) == 0).
//
// An answer such as "x+1", "3/2", "sqrt(8)/2", "2pi" or "1/(1+sqrt(2))" is evaluated into a rational function
// whose coefficients live in Q(sqrt 2, sqrt 3, ...): each term is a rational times sqrt(r) (r square-free) times a
// monomial in the letters a..z and pi. The square roots of distinct square-free integers are linearly independent
// over Q and pi is transcendental, so two answers are equal exactly when a.num * b.den - b.num * a.den has no
// terms: the test is exact, with no floating point. Anything outside that grammar (functions, roots of
// expressions, huge numbers) is "cannot tell", never "equal".
#pragma once

#include <optional>
#include <string_view>

namespace slime::reward {

// Grammar (the text is already normalised: lower case, no spaces): numbers ("12", "0.5"), letters (variables;
// "pi" and "sqrt" are names; function names such as ln, sin, log are refused), + - * / ^ ** ! ( ), implicit
// multiplication ("2x", "3sqrt(2)", "(1)(2)").
// true: equal; false: provably different; nullopt: could not evaluate one side.
std::optional<bool> expressions_equal(std::string_view left, std::string_view right);

}  // namespace slime::reward
