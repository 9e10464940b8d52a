// Exact evaluation of answer expressions into rational functions over Q(square roots) (see exact_expr.h).
#include "reward/exact_expr.h"

#include <array>
#include <cstdint>
#include <map>
#include <tuple>

#include "reward/rational.h"

namespace slime::reward {

namespace {

constexpr int kPi = 26;  // pi is the 27th indeterminate
constexpr int kVariables = 27;
constexpr size_t kMaxTerms = 2048;                   // larger expansions are "cannot tell"
constexpr int kMaxDegree = 64;                       // per variable
constexpr uint64_t kMaxRadicand = 1000000000000ULL;  // sqrt(n) is factored by trial division up to 1e6

// Thrown inside the evaluator for anything it cannot do exactly; expressions_equal turns it into nullopt.
struct Unsupported {};

struct Monomial {
  uint64_t radical = 1;  // square-free; the term is multiplied by sqrt(radical)
  std::array<uint8_t, kVariables> powers{};
  bool operator<(const Monomial& other) const {
    return std::tie(radical, powers) < std::tie(other.radical, other.powers);
  }
  bool is_one() const {
    if (radical != 1) return false;
    for (uint8_t p : powers)
      if (p != 0) return false;
    return true;
  }
};

using Polynomial = std::map<Monomial, Rational>;  // no zero coefficients stored

Rational need(std::optional<Rational> value) {
  if (!value) throw Unsupported{};
  return *value;
}

uint64_t gcd64(uint64_t a, uint64_t b) {
  while (b != 0) {
    uint64_t t = a % b;
    a = b;
    b = t;
  }
  return a;
}

void add_term(Polynomial& poly, const Monomial& monomial, const Rational& coefficient) {
  if (coefficient.is_zero()) return;
  auto [it, inserted] = poly.emplace(monomial, coefficient);
  if (!inserted) {
    it->second = need(checked_add(it->second, coefficient));
    if (it->second.is_zero()) poly.erase(it);
  }
  if (poly.size() > kMaxTerms) throw Unsupported{};
}

Polynomial constant(const Rational& value) {
  Polynomial poly;
  add_term(poly, Monomial{}, value);
  return poly;
}

std::optional<Rational> as_constant(const Polynomial& poly) {
  if (poly.empty()) return Rational{0, 1};
  if (poly.size() == 1 && poly.begin()->first.is_one()) return poly.begin()->second;
  return std::nullopt;
}

Polynomial add(const Polynomial& a, const Polynomial& b) {
  Polynomial out = a;
  for (const auto& [monomial, coefficient] : b) add_term(out, monomial, coefficient);
  return out;
}

Polynomial negate(const Polynomial& a) {
  Polynomial out;
  for (const auto& [monomial, coefficient] : a) out.emplace(monomial, need(checked_neg(coefficient)));
  return out;
}

Polynomial multiply(const Polynomial& a, const Polynomial& b) {
  Polynomial out;
  for (const auto& [ma, ca] : a) {
    for (const auto& [mb, cb] : b) {
      Monomial product;
      // sqrt(r1) * sqrt(r2) = g * sqrt(r1/g * r2/g) with g = gcd(r1, r2), both square-free.
      uint64_t g = gcd64(ma.radical, mb.radical);
      uint64_t radical;
      if (__builtin_mul_overflow(ma.radical / g, mb.radical / g, &radical)) throw Unsupported{};
      product.radical = radical;
      for (int v = 0; v < kVariables; ++v) {
        int power = ma.powers[v] + mb.powers[v];
        if (power > kMaxDegree) throw Unsupported{};
        product.powers[v] = static_cast<uint8_t>(power);
      }
      Rational coefficient = need(checked_mul(ca, cb));
      coefficient = need(checked_mul(coefficient, Rational{static_cast<int128>(g), 1}));
      add_term(out, product, coefficient);
    }
  }
  return out;
}

Polynomial scale(const Polynomial& a, const Rational& factor) { return multiply(a, constant(factor)); }

// A rational function numerator / denominator; the denominator is never the zero polynomial and is folded into
// the numerator whenever it is a plain rational.
struct Value {
  Polynomial numerator;
  Polynomial denominator;
};

Value make_value(Polynomial numerator, Polynomial denominator) {
  if (denominator.empty()) throw Unsupported{};  // division by zero
  if (auto c = as_constant(denominator)) {
    Rational inverse = need(checked_div(Rational{1, 1}, *c));
    return Value{scale(numerator, inverse), constant(Rational{1, 1})};
  }
  return Value{std::move(numerator), std::move(denominator)};
}

Value from_rational(const Rational& r) { return Value{constant(r), constant(Rational{1, 1})}; }

Value variable(int index) {
  Monomial m;
  m.powers[index] = 1;
  Polynomial p;
  add_term(p, m, Rational{1, 1});
  return Value{p, constant(Rational{1, 1})};
}

Value add(const Value& a, const Value& b) {
  return make_value(add(multiply(a.numerator, b.denominator), multiply(b.numerator, a.denominator)),
                    multiply(a.denominator, b.denominator));
}
Value negate(const Value& a) { return Value{negate(a.numerator), a.denominator}; }
Value multiply(const Value& a, const Value& b) {
  return make_value(multiply(a.numerator, b.numerator), multiply(a.denominator, b.denominator));
}
Value divide(const Value& a, const Value& b) {
  if (b.numerator.empty()) throw Unsupported{};
  return make_value(multiply(a.numerator, b.denominator), multiply(a.denominator, b.numerator));
}

std::optional<Rational> constant_of(const Value& v) {
  auto den = as_constant(v.denominator);
  auto num = as_constant(v.numerator);
  if (!den || !num) return std::nullopt;
  return checked_div(*num, *den);
}

Value power(const Value& base, const Value& exponent_value) {
  auto exponent = constant_of(exponent_value);
  if (!exponent || !exponent->is_integer()) throw Unsupported{};
  if (exponent->num > kMaxDegree || exponent->num < -kMaxDegree) throw Unsupported{};
  long e = static_cast<long>(exponent->num);
  Value b = base;
  if (e < 0) {
    b = divide(from_rational(Rational{1, 1}), base);
    e = -e;
  }
  Value result = from_rational(Rational{1, 1});
  for (long i = 0; i < e; ++i) result = multiply(result, b);
  return result;
}

Value square_root(const Value& v) {
  auto q = constant_of(v);
  if (!q || q->num < 0) throw Unsupported{};  // roots of expressions and of negative numbers are out of scope
  if (q->num == 0) return from_rational(Rational{0, 1});
  // sqrt(p/d) = sqrt(p*d) / d; write p*d = k^2 * s with s square-free.
  int128 n128;
  if (__builtin_mul_overflow(q->num, q->den, &n128) || n128 > static_cast<int128>(kMaxRadicand)) throw Unsupported{};
  uint64_t n = static_cast<uint64_t>(n128);
  uint64_t k = 1, s = 1;
  for (uint64_t f = 2; f * f <= n; ++f) {
    int count = 0;
    while (n % f == 0) {
      n /= f;
      ++count;
    }
    for (int i = 0; i < count / 2; ++i) k *= f;
    if (count % 2 == 1) s *= f;
  }
  s *= n;  // the remaining factor is 1 or a prime
  Monomial m;
  m.radical = s;
  Polynomial p;
  add_term(p, m, need(make_rational(static_cast<int128>(k), q->den)));
  return Value{p, constant(Rational{1, 1})};
}

Value factorial(const Value& v) {
  auto q = constant_of(v);
  if (!q || !q->is_integer() || q->num < 0 || q->num > 30) throw Unsupported{};
  Rational result{1, 1};
  for (int128 i = 2; i <= q->num; ++i) result = need(checked_mul(result, Rational{i, 1}));
  return from_rational(result);
}

class Parser {
 public:
  explicit Parser(std::string_view text) : text_(text) {}

  Value parse_all() {
    Value v = expression();
    if (pos_ != text_.size()) throw Unsupported{};
    return v;
  }

 private:
  static constexpr int kMaxDepth = 200;
  std::string_view text_;
  size_t pos_ = 0;
  int depth_ = 0;

  char peek(size_t ahead = 0) const { return pos_ + ahead < text_.size() ? text_[pos_ + ahead] : '\0'; }
  bool at(std::string_view word) const { return text_.substr(pos_, word.size()) == word; }
  static bool is_letter(char c) { return c >= 'a' && c <= 'z'; }
  static bool is_digit(char c) { return c >= '0' && c <= '9'; }
  bool primary_starts() const { return is_digit(peek()) || peek() == '.' || is_letter(peek()) || peek() == '('; }

  Value expression() {
    Value v = term();
    while (peek() == '+' || peek() == '-') {
      char op = text_[pos_++];
      Value rhs = term();
      v = op == '+' ? add(v, rhs) : add(v, negate(rhs));
    }
    return v;
  }

  Value term() {
    Value v = unary();
    while (true) {
      if (peek() == '*' && peek(1) != '*') {
        ++pos_;
        v = multiply(v, unary());
      } else if (peek() == '/') {
        ++pos_;
        v = divide(v, unary());
      } else if (primary_starts()) {
        v = multiply(v, unary());  // implicit multiplication: "2x", "(1)(2)", "3sqrt(2)"
      } else {
        return v;
      }
    }
  }

  Value unary() {
    // Every level of nesting (parentheses, signs, powers) passes here: bound the recursion.
    if (++depth_ > kMaxDepth) throw Unsupported{};
    struct Leave {
      int& depth;
      ~Leave() { --depth; }
    } leave{depth_};
    if (peek() == '-') {
      ++pos_;
      return negate(unary());
    }
    if (peek() == '+') {
      ++pos_;
      return unary();
    }
    return power_expression();
  }

  Value power_expression() {
    Value base = postfix();
    if (peek() == '^' || (peek() == '*' && peek(1) == '*')) {
      pos_ += peek() == '^' ? 1 : 2;
      return power(base, unary());  // right-associative; "2^-1" allowed as in Python
    }
    return base;
  }

  Value postfix() {
    Value v = primary();
    while (peek() == '!') {
      ++pos_;
      v = factorial(v);
    }
    return v;
  }

  Value primary() {
    if (peek() == '(') {
      ++pos_;
      Value v = expression();
      if (peek() != ')') throw Unsupported{};
      ++pos_;
      return v;
    }
    if (is_digit(peek()) || peek() == '.') {
      size_t start = pos_;
      while (is_digit(peek())) ++pos_;
      if (peek() == '.') {
        ++pos_;
        while (is_digit(peek())) ++pos_;
      }
      auto value = parse_decimal(text_.substr(start, pos_ - start));
      if (!value) throw Unsupported{};
      return from_rational(*value);
    }
    if (at("sqrt")) {
      pos_ += 4;
      return square_root(postfix());
    }
    // Function names would otherwise read as products of letters ("ln(2)" = l*n*2): out of scope.
    static const char* const kFunctions[] = {"ln",  "lg",  "log", "exp", "sin", "cos", "tan", "cot",   "sec", "csc",
                                             "arc", "abs", "max", "min", "gcd", "lcm", "mod", "floor", "ceil"};
    for (const char* name : kFunctions)
      if (at(name)) throw Unsupported{};
    if (at("pi")) {
      pos_ += 2;
      return variable(kPi);
    }
    if (is_letter(peek())) return variable(text_[pos_++] - 'a');
    throw Unsupported{};
  }
};

}  // namespace

std::optional<bool> expressions_equal(std::string_view left, std::string_view right) {
  try {
    Value a = Parser(left).parse_all();
    Value b = Parser(right).parse_all();
    Polynomial difference = add(multiply(a.numerator, b.denominator), negate(multiply(b.numerator, a.denominator)));
    return difference.empty();
  } catch (const Unsupported&) {
    return std::nullopt;
  }
}

}  // namespace slime::reward
