// Exact rational numbers on 128-bit integers, for comparing answers and evaluating arithmetic expressions.
// Every operation checks for overflow and division by zero and returns nullopt instead of a wrong value, so a
// verifier can only say "equal" when the numbers are equal.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace slime::reward {

using int128 = __int128;

struct Rational {
  int128 num = 0;
  int128 den = 1;  // always > 0, gcd(num, den) == 1

  bool is_integer() const { return den == 1; }
  bool is_zero() const { return num == 0; }
};

bool operator==(const Rational& a, const Rational& b);
inline bool operator!=(const Rational& a, const Rational& b) { return !(a == b); }
bool operator<(const Rational& a, const Rational& b);  // exact (cross-multiplied in 256-bit-safe steps)

// num/den reduced with a positive denominator; nullopt when den == 0 or a value does not fit.
std::optional<Rational> make_rational(int128 num, int128 den = 1);
std::optional<Rational> checked_add(const Rational& a, const Rational& b);
std::optional<Rational> checked_sub(const Rational& a, const Rational& b);
std::optional<Rational> checked_mul(const Rational& a, const Rational& b);
std::optional<Rational> checked_div(const Rational& a, const Rational& b);  // nullopt when b == 0
std::optional<Rational> checked_neg(const Rational& a);
// a^exponent for an integer exponent (negative inverts); nullopt on overflow or 0^negative.
std::optional<Rational> checked_pow(const Rational& a, long exponent);

// Decimal literal: optional sign, digits with an optional fraction ("12", "-3.25", ".5", "7."), and an
// optional exponent ("1e3", "2.5e-2"). No thousands separators, no spaces. nullopt for anything else.
std::optional<Rational> parse_decimal(std::string_view text);

std::string to_string(const Rational& value);  // "3", "-7/2"
std::string int128_to_string(int128 value);

}  // namespace slime::reward
