// `countdown` and `arithmetic` verifiers (see countdown.h): a small exact expression evaluator plus answer
// extraction.
#include "reward/countdown.h"

#include <algorithm>
#include <cctype>
#include <regex>

#include "core/error.h"
#include "reward/math_verify.h"
#include "reward/text_util.h"

namespace slime::reward {

namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Recursive descent over  expr := term (('+'|'-') term)* ; term := unary (('*'|'/') unary)* ;
// unary := ('-'|'+') unary | primary ; primary := integer | '(' expr ')'.
class IntegerExpressionParser {
 public:
  explicit IntegerExpressionParser(std::string_view text) : text_(text) {}

  EvaluatedExpression run() {
    EvaluatedExpression out;
    bool ok = true;
    std::optional<Rational> value = expression(ok);
    skip_spaces();
    if (ok && pos_ == text_.size() && value) out.value = value;
    out.literals = literals_;
    return out;
  }

 private:
  static constexpr int kMaxDepth = 200;
  std::string_view text_;
  size_t pos_ = 0;
  int depth_ = 0;
  std::vector<int128> literals_;

  void skip_spaces() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t' || text_[pos_] == '\n')) ++pos_;
  }
  char peek() {
    skip_spaces();
    return pos_ < text_.size() ? text_[pos_] : '\0';
  }

  // `ok` turns false on a syntax error; a nullopt value with ok == true is an arithmetic failure (x/0, overflow)
  // that still lets the parser read on, so `literals` is complete either way.
  std::optional<Rational> expression(bool& ok) {
    auto value = term(ok);
    while (ok && (peek() == '+' || peek() == '-')) {
      char op = text_[pos_++];
      auto rhs = term(ok);
      value = (value && rhs) ? (op == '+' ? checked_add(*value, *rhs) : checked_sub(*value, *rhs)) : std::nullopt;
    }
    return value;
  }

  std::optional<Rational> term(bool& ok) {
    auto value = unary(ok);
    while (ok && (peek() == '*' || peek() == '/')) {
      char op = text_[pos_++];
      auto rhs = unary(ok);
      value = (value && rhs) ? (op == '*' ? checked_mul(*value, *rhs) : checked_div(*value, *rhs)) : std::nullopt;
    }
    return value;
  }

  std::optional<Rational> unary(bool& ok) {
    // Every level of nesting (parentheses, signs) passes here: bound the recursion.
    if (++depth_ > kMaxDepth) ok = false;
    struct Leave {
      int& depth;
      ~Leave() { --depth; }
    } leave{depth_};
    if (!ok) return std::nullopt;
    if (peek() == '-') {
      ++pos_;
      auto value = unary(ok);
      return value ? checked_neg(*value) : std::nullopt;
    }
    if (peek() == '+') {
      ++pos_;
      return unary(ok);
    }
    return primary(ok);
  }

  std::optional<Rational> primary(bool& ok) {
    char c = peek();
    if (c == '(') {
      ++pos_;
      auto value = expression(ok);
      if (peek() != ')') {
        ok = false;
        return std::nullopt;
      }
      ++pos_;
      return value;
    }
    if (is_digit(c)) {
      int128 number = 0;
      bool overflow = false;
      while (pos_ < text_.size() && is_digit(text_[pos_])) {
        if (__builtin_mul_overflow(number, 10, &number) || __builtin_add_overflow(number, text_[pos_] - '0', &number))
          overflow = true;
        ++pos_;
      }
      if (pos_ < text_.size() && text_[pos_] == '.') {  // decimals are not Countdown numbers
        ok = false;
        return std::nullopt;
      }
      if (overflow) {
        ok = false;
        return std::nullopt;
      }
      literals_.push_back(number);
      return make_rational(number);
    }
    ok = false;
    return std::nullopt;
  }
};

const nlohmann::ordered_json* field(const nlohmann::ordered_json& object, const char* key) {
  if (!object.is_object() || !object.contains(key) || object[key].is_null()) return nullptr;
  return &object[key];
}

std::optional<Rational> json_number_exact(const nlohmann::ordered_json& value) {
  if (value.is_number()) return parse_decimal(value.dump());
  if (value.is_string()) return parse_decimal(text::strip(value.get<std::string>()));
  return std::nullopt;
}

// The last complete <answer>...</answer>, if any.
std::optional<std::string> last_answer_tag(std::string_view response) {
  size_t open = response.rfind("<answer>");
  while (open != std::string_view::npos) {
    size_t close = response.find("</answer>", open);
    if (close != std::string_view::npos) return std::string(response.substr(open + 8, close - open - 8));
    if (open == 0) break;
    open = response.rfind("<answer>", open - 1);
  }
  return std::nullopt;
}

// A text that is exactly one number: "42", "-3/4", "1,234", "2.5" (surrounding spaces allowed).
std::optional<Rational> parse_number_text(std::string_view raw) {
  std::string number = text::replace_all(text::strip(raw), "\xE2\x88\x92", "-");
  static const std::regex kThousands(R"(^[-+]?\d{1,3}(,\d{3})+(\.\d+)?$)");
  if (std::regex_match(number, kThousands)) number = text::replace_all(number, ",", "");
  size_t slash = number.find('/');
  if (slash == std::string::npos) return parse_decimal(number);
  auto numerator = parse_decimal(number.substr(0, slash));
  auto denominator = parse_decimal(number.substr(slash + 1));
  if (!numerator || !denominator) return std::nullopt;
  return checked_div(*numerator, *denominator);
}

}  // namespace

EvaluatedExpression evaluate_integer_expression(std::string_view expression) {
  return IntegerExpressionParser(expression).run();
}

CountdownProblem countdown_problem(const nlohmann::ordered_json& label, const nlohmann::ordered_json& metadata) {
  CountdownProblem problem;
  const nlohmann::ordered_json* numbers = field(label, "numbers");
  if (!numbers) numbers = field(metadata, "numbers");
  SLIME_CHECK(numbers, "rm_type countdown: no 'numbers' in the label (", label.dump(), ") or in the metadata");
  SLIME_CHECK(numbers->is_array() && !numbers->empty(),
              "rm_type countdown: field 'numbers': expected a non-empty list of integers, got ", numbers->dump());
  for (const auto& number : *numbers) {
    auto value = json_number_exact(number);
    SLIME_CHECK(value && value->is_integer() && value->num >= 0,
                "rm_type countdown: field 'numbers': expected non-negative integers, got ", number.dump());
    problem.numbers.push_back(value->num);
  }
  const nlohmann::ordered_json* target = field(label, "target");
  if (!target && (label.is_number() || (label.is_string() && !text::strip(label.get<std::string>()).empty())))
    target = &label;
  if (!target) target = field(metadata, "target");
  SLIME_CHECK(target, "rm_type countdown: no 'target' in the label (", label.dump(), ") or in the metadata");
  auto target_value = json_number_exact(*target);
  SLIME_CHECK(target_value, "rm_type countdown: field 'target': expected a number, got ", target->dump());
  problem.target = *target_value;
  return problem;
}

std::string countdown_extract_equation(std::string_view response) {
  std::string equation;
  if (auto tagged = last_answer_tag(response)) {
    equation = *tagged;
  } else {
    for (const auto& line : text::split(response, "\n"))
      if (!text::strip(line).empty()) equation = line;
  }
  size_t equals = equation.find('=');
  if (equals != std::string::npos) equation = equation.substr(0, equals);  // "(1+2)*8 = 24" -> "(1+2)*8"
  return text::strip(equation);
}

double countdown_reward(std::string_view response, const nlohmann::ordered_json& label,
                        const nlohmann::ordered_json& metadata) {
  CountdownProblem problem = countdown_problem(label, metadata);
  EvaluatedExpression evaluated = evaluate_integer_expression(countdown_extract_equation(response));
  if (!evaluated.value) return 0;  // not an expression, x/0, or overflow
  std::vector<int128> used = evaluated.literals;
  std::vector<int128> given = problem.numbers;
  std::sort(used.begin(), used.end());
  std::sort(given.begin(), given.end());
  if (used != given) return 0;  // a number missing, reused, or not given
  return *evaluated.value == problem.target ? 1 : 0;
}

std::optional<Rational> final_number(std::string_view text) {
  std::optional<Rational> last;
  size_t i = 0;
  while (i < text.size()) {
    if (!is_digit(text[i]) && !(text[i] == '.' && i + 1 < text.size() && is_digit(text[i + 1]))) {
      ++i;
      continue;
    }
    size_t start = i;
    // A sign belongs to the number unless it reads as a binary minus ("10-3").
    bool negative = false;
    auto sign_before = [&](size_t at) {
      if (at >= 1 && text[at - 1] == '-') return at - 1;
      if (at >= 3 && text.substr(at - 3, 3) == "\xE2\x88\x92") return at - 3;  // U+2212 minus sign
      return std::string_view::npos;
    };
    size_t sign = sign_before(start);
    if (sign != std::string_view::npos) {
      char before = sign > 0 ? text[sign - 1] : ' ';
      negative = !(std::isalnum(static_cast<unsigned char>(before)) || before == ')' || before == ']');
    }
    auto digit_at = [&](size_t k) { return k < text.size() && is_digit(text[k]); };
    std::string digits;
    while (true) {
      while (i < text.size() && is_digit(text[i])) digits.push_back(text[i++]);
      // thousands separators: ",ddd" not followed by another digit
      if (i < text.size() && text[i] == ',' && digit_at(i + 1) && digit_at(i + 2) && digit_at(i + 3) &&
          !digit_at(i + 4)) {
        digits.append(text.substr(i + 1, 3));
        i += 4;
        continue;
      }
      break;
    }
    if (i + 1 < text.size() && text[i] == '.' && is_digit(text[i + 1])) {
      digits.push_back(text[i++]);
      while (i < text.size() && is_digit(text[i])) digits.push_back(text[i++]);
    }
    auto value = parse_decimal(digits);
    if (value && i + 1 < text.size() && text[i] == '/' && is_digit(text[i + 1])) {
      std::string denominator;
      ++i;
      while (i < text.size() && is_digit(text[i])) denominator.push_back(text[i++]);
      auto den = parse_decimal(denominator);
      value = den ? checked_div(*value, *den) : std::nullopt;
    }
    if (value && negative) value = checked_neg(*value);
    last = value;
  }
  return last;
}

double arithmetic_reward(std::string_view response, const nlohmann::ordered_json& label) {
  std::optional<Rational> expected;
  if (label.is_number()) {
    expected = parse_decimal(label.dump());
  } else if (label.is_string()) {
    std::string label_string = label.get<std::string>();
    size_t hashes = label_string.rfind("####");  // a GSM8K solution: the answer follows the last "####"
    expected = parse_number_text(hashes == std::string::npos ? label_string : label_string.substr(hashes + 4));
  }
  SLIME_CHECK(expected, "rm_type arithmetic: the label must be a number or a numeric string, got ", label.dump());
  std::string answer_part;
  if (auto boxed = extract_boxed_answer(response)) {
    answer_part = *boxed;
  } else if (auto tagged = last_answer_tag(response)) {
    answer_part = *tagged;
  } else {
    answer_part = std::string(response);
  }
  auto given = final_number(answer_part);
  return given && *given == *expected ? 1 : 0;
}

}  // namespace slime::reward
