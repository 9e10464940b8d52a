// Exact rationals with overflow checks (see rational.h).
#include "reward/rational.h"

#include <algorithm>

namespace slime::reward {

namespace {

int128 abs128(int128 x) { return x < 0 ? -x : x; }

int128 gcd128(int128 a, int128 b) {
  a = abs128(a);
  b = abs128(b);
  while (b != 0) {
    int128 t = a % b;
    a = b;
    b = t;
  }
  return a;
}

// Keeps every magnitude well inside int128 so that negation never overflows.
constexpr int128 kLimit = (static_cast<int128>(1) << 125);

bool fits(int128 x) { return x > -kLimit && x < kLimit; }

std::optional<int128> mul128(int128 a, int128 b) {
  int128 out;
  if (__builtin_mul_overflow(a, b, &out) || !fits(out)) return std::nullopt;
  return out;
}

std::optional<int128> add128(int128 a, int128 b) {
  int128 out;
  if (__builtin_add_overflow(a, b, &out) || !fits(out)) return std::nullopt;
  return out;
}

}  // namespace

bool operator==(const Rational& a, const Rational& b) { return a.num == b.num && a.den == b.den; }

bool operator<(const Rational& a, const Rational& b) {
  auto difference = checked_sub(a, b);
  if (difference) return difference->num < 0;
  // Too large to subtract exactly: compare through long double (only reached for astronomically large values).
  return static_cast<long double>(a.num) / static_cast<long double>(a.den) <
         static_cast<long double>(b.num) / static_cast<long double>(b.den);
}

std::optional<Rational> make_rational(int128 num, int128 den) {
  if (den == 0 || !fits(num) || !fits(den)) return std::nullopt;
  if (den < 0) {
    num = -num;
    den = -den;
  }
  int128 g = gcd128(num, den);
  if (g > 1) {
    num /= g;
    den /= g;
  }
  if (num == 0) den = 1;
  return Rational{num, den};
}

std::optional<Rational> checked_add(const Rational& a, const Rational& b) {
  int128 g = gcd128(a.den, b.den);
  auto left = mul128(a.num, b.den / g);
  auto right = mul128(b.num, a.den / g);
  auto den = mul128(a.den / g, b.den);
  if (!left || !right || !den) return std::nullopt;
  auto num = add128(*left, *right);
  if (!num) return std::nullopt;
  return make_rational(*num, *den);
}

std::optional<Rational> checked_neg(const Rational& a) { return Rational{-a.num, a.den}; }

std::optional<Rational> checked_sub(const Rational& a, const Rational& b) { return checked_add(a, *checked_neg(b)); }

std::optional<Rational> checked_mul(const Rational& a, const Rational& b) {
  // Cross-reduce first to keep intermediates small.
  int128 g1 = gcd128(a.num, b.den);
  int128 g2 = gcd128(b.num, a.den);
  if (g1 == 0) g1 = 1;
  if (g2 == 0) g2 = 1;
  auto num = mul128(a.num / g1, b.num / g2);
  auto den = mul128(a.den / g2, b.den / g1);
  if (!num || !den) return std::nullopt;
  return make_rational(*num, *den);
}

std::optional<Rational> checked_div(const Rational& a, const Rational& b) {
  if (b.num == 0) return std::nullopt;
  return checked_mul(a, Rational{b.den, b.num} /* unreduced sign is fixed by make_rational */);
}

std::optional<Rational> checked_pow(const Rational& a, long exponent) {
  Rational base = a;
  if (exponent < 0) {
    if (a.num == 0) return std::nullopt;
    auto inverse = make_rational(a.den, a.num);
    if (!inverse) return std::nullopt;
    base = *inverse;
    exponent = -exponent;
  }
  Rational result{1, 1};
  while (exponent > 0) {
    if (exponent & 1) {
      auto next = checked_mul(result, base);
      if (!next) return std::nullopt;
      result = *next;
    }
    exponent >>= 1;
    if (exponent > 0) {
      auto squared = checked_mul(base, base);
      if (!squared) return std::nullopt;
      base = *squared;
    }
  }
  return result;
}

std::optional<Rational> parse_decimal(std::string_view text) {
  size_t i = 0;
  bool negative = false;
  if (i < text.size() && (text[i] == '+' || text[i] == '-')) negative = text[i++] == '-';
  int128 num = 0;
  int128 den = 1;
  size_t digit_count = 0;
  auto push_digit = [&](char c) {
    auto scaled = mul128(num, 10);
    if (!scaled) return false;
    auto added = add128(*scaled, c - '0');
    if (!added) return false;
    num = *added;
    ++digit_count;
    return true;
  };
  while (i < text.size() && text[i] >= '0' && text[i] <= '9')
    if (!push_digit(text[i++])) return std::nullopt;
  if (i < text.size() && text[i] == '.') {
    ++i;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
      if (!push_digit(text[i++])) return std::nullopt;
      auto scaled = mul128(den, 10);
      if (!scaled) return std::nullopt;
      den = *scaled;
    }
  }
  if (digit_count == 0) return std::nullopt;
  long exponent = 0;
  if (i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
    ++i;
    bool exponent_negative = false;
    if (i < text.size() && (text[i] == '+' || text[i] == '-')) exponent_negative = text[i++] == '-';
    size_t start = i;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
      exponent = exponent * 10 + (text[i++] - '0');
      if (exponent > 60) return std::nullopt;
    }
    if (i == start) return std::nullopt;
    if (exponent_negative) exponent = -exponent;
  }
  if (i != text.size()) return std::nullopt;
  auto value = make_rational(negative ? -num : num, den);
  if (!value || exponent == 0) return value;
  auto scale = checked_pow(Rational{10, 1}, exponent);
  if (!scale) return std::nullopt;
  return checked_mul(*value, *scale);
}

std::string int128_to_string(int128 value) {
  if (value == 0) return "0";
  bool negative = value < 0;
  // kLimit keeps |value| representable, so negation is safe for every value these helpers produce.
  unsigned __int128 magnitude =
      negative ? static_cast<unsigned __int128>(-(value + 1)) + 1 : static_cast<unsigned __int128>(value);
  std::string digits;
  while (magnitude > 0) {
    digits.push_back(static_cast<char>('0' + static_cast<int>(magnitude % 10)));
    magnitude /= 10;
  }
  if (negative) digits.push_back('-');
  std::reverse(digits.begin(), digits.end());
  return digits;
}

std::string to_string(const Rational& value) {
  if (value.den == 1) return int128_to_string(value.num);
  return int128_to_string(value.num) + "/" + int128_to_string(value.den);
}

}  // namespace slime::reward
