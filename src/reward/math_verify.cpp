// Math verifiers `math` and `deepscaler` (see math_verify.h): boxed extraction, Hendrycks MATH normalisation, the
// sympy-path normalisation of slime's math_utils.py, and exact equivalence through exact_expr.h.
#include "reward/math_verify.h"

#include <cmath>
#include <regex>
#include <set>

#include "core/error.h"
#include "reward/exact_expr.h"
#include "reward/text_util.h"

namespace slime::reward {

using text::contains;
using text::ends_with;
using text::replace_all;
using text::starts_with;

// ============================================================================================================
// Boxed answers
// ============================================================================================================

namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// From the '{' at `open`, the index of its matching '}' (nullopt if it never closes).
std::optional<size_t> matching_brace(std::string_view text, size_t open) {
  int depth = 0;
  for (size_t i = open; i < text.size(); ++i) {
    if (text[i] == '{') ++depth;
    if (text[i] == '}') {
      --depth;
      if (depth == 0) return i;
    }
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::string> last_boxed_only_string(std::string_view text) {
  std::string_view command = "\\boxed";
  size_t index = text.rfind(command);
  if (index == std::string_view::npos) {
    command = "\\fbox";
    index = text.rfind(command);
    if (index == std::string_view::npos) return std::nullopt;
  }
  size_t after = index + command.size();
  size_t next = after;
  while (next < text.size() && is_space(text[next])) ++next;
  if (next < text.size() && text[next] == '{') {
    auto close = matching_brace(text, next);
    if (!close) return std::nullopt;
    return std::string(command) + std::string(text.substr(next, *close + 1 - next));
  }
  // `\boxed 5`: the box of the next run of non-space characters (up to a '$').
  if (next == after) return std::nullopt;  // "\boxedx" is another macro, not a box
  size_t end = next;
  while (end < text.size() && !is_space(text[end]) && text[end] != '$') ++end;
  if (end == next) return std::nullopt;
  return std::string(command) + " " + std::string(text.substr(next, end - next));
}

std::optional<std::string> remove_boxed(std::string_view boxed) {
  if (starts_with(boxed, "\\boxed{") && ends_with(boxed, "}") && boxed.size() >= 8)
    return std::string(boxed.substr(7, boxed.size() - 8));
  if (starts_with(boxed, "\\boxed ") && boxed.size() > 7) return std::string(boxed.substr(7));
  return std::nullopt;
}

std::optional<std::string> extract_boxed_answer(std::string_view text) {
  if (!contains(text, "\\boxed")) return std::nullopt;
  auto boxed = last_boxed_only_string(text);
  if (!boxed) return std::nullopt;
  return remove_boxed(*boxed);
}

// ============================================================================================================
// Hendrycks MATH normalisation (_strip_string)
// ============================================================================================================

namespace {

// Python indexes code points: the first "character" of a UTF-8 string.
std::string first_char(std::string_view s) { return std::string(s.substr(0, text::utf8_char_length(s[0]))); }

// \frac12 -> \frac{1}{2}, \frac1{72} -> \frac{1}{72}. nullopt where slime's Python raises (a trailing "\frac").
std::optional<std::string> fix_fracs(const std::string& input) {
  auto pieces = text::split(input, "\\frac");
  std::string out = pieces[0];
  for (size_t i = 1; i < pieces.size(); ++i) {
    const std::string& piece = pieces[i];
    out += "\\frac";
    if (piece.empty()) return std::nullopt;  // substr[0] raises IndexError
    if (piece[0] == '{') {
      out += piece;
      continue;
    }
    std::string a = first_char(piece);
    if (piece.size() <= a.size()) return input;  // fewer than 2 characters: give up on the whole string
    std::string_view rest = std::string_view(piece).substr(a.size());
    std::string b = first_char(rest);
    std::string post(rest.substr(b.size()));
    if (b != "{")
      out += "{" + a + "}{" + b + "}" + post;
    else
      out += "{" + a + "}" + b + post;
  }
  return out;
}

// Python's str(int(s)) == s: "0" or an optional minus and digits without a leading zero.
bool is_canonical_int(const std::string& s) {
  size_t i = s.size() > 0 && s[0] == '-' ? 1 : 0;
  if (i == s.size()) return false;
  for (size_t j = i; j < s.size(); ++j)
    if (s[j] < '0' || s[j] > '9') return false;
  if (s[i] == '0') return s == "0";
  return true;
}

std::string fix_a_slash_b(const std::string& s) {
  auto parts = text::split(s, "/");
  if (parts.size() != 2 || !is_canonical_int(parts[0]) || !is_canonical_int(parts[1])) return s;
  return "\\frac{" + parts[0] + "}{" + parts[1] + "}";
}

// "\text{ " only marks units on the right; two of them make slime's Python raise.
std::optional<std::string> remove_right_units(const std::string& s) {
  if (!contains(s, "\\text{ ")) return s;
  auto pieces = text::split(s, "\\text{ ");
  if (pieces.size() != 2) return std::nullopt;
  return pieces[0];
}

std::optional<std::string> fix_sqrt(const std::string& s) {
  if (!contains(s, "\\sqrt")) return s;
  auto pieces = text::split(s, "\\sqrt");
  std::string out = pieces[0];
  for (size_t i = 1; i < pieces.size(); ++i) {
    const std::string& piece = pieces[i];
    if (piece.empty()) return std::nullopt;  // split[0] raises IndexError
    if (piece[0] != '{') {
      std::string a = first_char(piece);
      out += "\\sqrt{" + a + "}" + piece.substr(a.size());
    } else {
      out += "\\sqrt" + piece;
    }
  }
  return out;
}

}  // namespace

std::optional<std::string> strip_string(std::string_view answer) {
  std::string s = replace_all(answer, "\n", "");
  s = replace_all(s, "\\!", "");
  s = replace_all(s, "\\\\", "\\");
  s = replace_all(s, "tfrac", "frac");
  s = replace_all(s, "dfrac", "frac");
  s = replace_all(s, "\\left", "");
  s = replace_all(s, "\\right", "");
  s = replace_all(s, "^{\\circ}", "");
  s = replace_all(s, "^\\circ", "");
  s = replace_all(s, "\\$", "");
  auto without_units = remove_right_units(s);
  if (!without_units) return std::nullopt;
  s = replace_all(*without_units, "\\%", "");
  s = replace_all(s, " .", " 0.");
  s = replace_all(s, "{.", "{0.");
  if (s.empty()) return s;
  if (s[0] == '.') s = "0" + s;
  auto sides = text::split(s, "=");
  if (sides.size() == 2 && sides[0].size() <= 2) s = sides[1];  // "x = 5", "k=5"
  auto with_sqrt = fix_sqrt(s);
  if (!with_sqrt) return std::nullopt;
  s = replace_all(*with_sqrt, " ", "");
  auto with_fracs = fix_fracs(s);
  if (!with_fracs) return std::nullopt;
  s = *with_fracs;
  if (s == "0.5") s = "\\frac{1}{2}";
  return fix_a_slash_b(s);
}

namespace {
// Python's re.search(r"^\\text\{(?P<text>.+?)\}$", s): the whole string is one \text{...} (no newline inside).
std::optional<std::string> enclosing_text_content(std::string_view s) {
  if (!starts_with(s, "\\text{") || !ends_with(s, "}") || s.size() < 8) return std::nullopt;
  std::string_view inner = s.substr(6, s.size() - 7);
  if (contains(inner, "\n")) return std::nullopt;
  return std::string(inner);
}
}  // namespace

std::string mathd_normalize_answer(std::string_view raw) {
  std::string answer = text::strip(raw);
  if (auto inner = enclosing_text_content(answer)) answer = text::strip(*inner);
  auto stripped = strip_string(answer);
  return stripped ? *stripped : answer;
}

bool grade_answer_mathd(std::string_view given, std::string_view truth) {
  return mathd_normalize_answer(truth) == mathd_normalize_answer(given);
}

// ============================================================================================================
// Expression normalisation (slime's _normalize) and exact equivalence (instead of sympy)
// ============================================================================================================

namespace {

// re.sub(rf"{unit}(es)?(s)? *(\^[0-9]+)?", "", expr)
std::string remove_unit(const std::string& expr, std::string_view unit) {
  std::string out;
  size_t pos = 0;
  while (true) {
    size_t hit = expr.find(unit, pos);
    if (hit == std::string::npos) break;
    out.append(expr, pos, hit - pos);
    size_t j = hit + unit.size();
    if (expr.compare(j, 2, "es") == 0) j += 2;
    if (j < expr.size() && expr[j] == 's') ++j;
    while (j < expr.size() && expr[j] == ' ') ++j;
    if (j + 1 < expr.size() && expr[j] == '^' && std::isdigit(static_cast<unsigned char>(expr[j + 1]))) {
      ++j;
      while (j < expr.size() && std::isdigit(static_cast<unsigned char>(expr[j]))) ++j;
    }
    pos = j;
  }
  out.append(expr, pos, std::string::npos);
  return out;
}

// Remove `<first> *<rest>` (e.g. "^ *\circ", ",\! *" handled by callers with their own shapes).
std::string remove_caret_circ(const std::string& expr) {
  std::string out;
  size_t i = 0;
  while (i < expr.size()) {
    if (expr[i] == '^') {
      size_t j = i + 1;
      while (j < expr.size() && expr[j] == ' ') ++j;
      if (expr.compare(j, 5, "\\circ") == 0) {
        i = j + 5;
        continue;
      }
    }
    out.push_back(expr[i++]);
  }
  return out;
}

std::string remove_comma_thin_space(const std::string& expr) {  // re.sub(",\\\\! *", "", expr)
  std::string out;
  size_t i = 0;
  while (i < expr.size()) {
    if (expr.compare(i, 3, ",\\!") == 0) {
      i += 3;
      while (i < expr.size() && expr[i] == ' ') ++i;
      continue;
    }
    out.push_back(expr[i++]);
  }
  return out;
}

// ---- LaTeX to plain text (the role of pylatexenc's latex2text in slime) ----
class LatexToPlain {
 public:
  struct TooDeep {};  // braces nested deeper than kMaxDepth
  explicit LatexToPlain(std::string_view source) : s_(source) {}
  std::string convert() { return sequence(false); }

 private:
  static constexpr int kMaxDepth = 200;
  std::string_view s_;
  size_t pos_ = 0;
  int depth_ = 0;

  static bool is_letter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

  std::string sequence(bool inside_group) {
    if (++depth_ > kMaxDepth) throw TooDeep{};
    struct Leave {
      int& depth;
      ~Leave() { --depth; }
    } leave{depth_};
    std::string out;
    while (pos_ < s_.size()) {
      char c = s_[pos_];
      if (c == '}') {
        ++pos_;
        if (inside_group) return out;
        continue;  // stray closing brace
      }
      if (c == '{') {
        ++pos_;
        out += sequence(true);
        continue;
      }
      if (c == '\\') {
        out += macro();
        continue;
      }
      out.push_back(c);
      ++pos_;
    }
    return out;
  }

  // One argument: a {group}, a macro, or a single character.
  std::string argument() {
    while (pos_ < s_.size() && s_[pos_] == ' ') ++pos_;
    if (pos_ >= s_.size()) return "";
    if (s_[pos_] == '{') {
      ++pos_;
      return sequence(true);
    }
    if (s_[pos_] == '\\') return macro();
    size_t length = text::utf8_char_length(static_cast<unsigned char>(s_[pos_]));
    std::string out(s_.substr(pos_, length));
    pos_ += length;
    return out;
  }

  static bool simple_operand(const std::string& s) {
    if (s.empty()) return false;
    for (char c : s)
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.') return false;
    return true;
  }

  std::string macro() {
    ++pos_;  // the backslash
    size_t start = pos_;
    while (pos_ < s_.size() && is_letter(s_[pos_])) ++pos_;
    std::string name(s_.substr(start, pos_ - start));
    if (name.empty() && pos_ < s_.size()) name = std::string(1, s_[pos_++]);  // \, \! \{ \\ ...
    if (name == "frac" || name == "dfrac" || name == "tfrac") {
      std::string numerator = argument();
      std::string denominator = argument();
      if (simple_operand(numerator) && simple_operand(denominator)) return numerator + "/" + denominator;
      return "(" + numerator + ")/(" + denominator + ")";
    }
    if (name == "sqrt") {
      while (pos_ < s_.size() && s_[pos_] == ' ') ++pos_;
      if (pos_ < s_.size() && s_[pos_] == '[') {
        size_t close = s_.find(']', pos_);
        std::string degree(s_.substr(pos_ + 1, close == std::string_view::npos ? 0 : close - pos_ - 1));
        pos_ = close == std::string_view::npos ? s_.size() : close + 1;
        return "root[" + degree + "](" + argument() + ")";  // not evaluable on purpose
      }
      return "sqrt(" + argument() + ")";
    }
    static const std::set<std::string> kKeepArgument = {"text",   "textbf", "textit", "textrm", "mathrm",
                                                        "mathbf", "mathit", "mbox",   "hbox",   "operatorname",
                                                        "boxed",  "mathsf", "mathtt", "emph"};
    if (kKeepArgument.count(name)) return argument();
    static const std::set<std::string> kDrop = {"left", "right", "displaystyle", "textstyle", "big", "Big",
                                                "bigl", "bigr",  "Bigl",         "Bigr",      "!"};
    if (kDrop.count(name)) return "";
    static const std::set<std::string> kSpace = {",", ";", ":", " ", "quad", "qquad", "\\"};
    if (kSpace.count(name)) return " ";
    if (name == "pi") return "pi";
    if (name == "infty") return "inf";
    if (name == "cdot" || name == "times") return "*";
    if (name == "div") return "/";
    if (name == "cup") return "U";
    if (name == "{" || name == "}" || name == "%" || name == "$" || name == "&" || name == "#" || name == "_")
      return name;
    return name;  // unknown macro: its name, which keeps it from ever comparing equal to a number
  }
};

std::string latex_to_plain(std::string expr) {
  expr = replace_all(expr, "\\tfrac", "\\frac");
  expr = replace_all(expr, "\\dfrac", "\\frac");
  expr = replace_all(expr, "\\frac", " \\frac");  // mixed numbers: 3\frac12 -> "3 1/2" -> 3+1/2
  try {
    return text::strip(LatexToPlain(expr).convert());
  } catch (const LatexToPlain::TooDeep&) {
    return expr;  // as slime, whose latex parsing failures leave the expression as it was
  }
}

// re.sub("- *", "-", expr)
std::string tighten_minus(const std::string& expr) {
  std::string out;
  for (size_t i = 0; i < expr.size(); ++i) {
    out.push_back(expr[i]);
    if (expr[i] == '-')
      while (i + 1 < expr.size() && expr[i + 1] == ' ') ++i;
  }
  return out;
}

// re.compile("([0-9]) +([0-9])").sub("\\1+\\2", step): "7 3/4" -> "7+3/4" (matches do not overlap).
std::string inject_implicit_mixed_number(const std::string& expr) {
  std::string out;
  size_t i = 0;
  auto digit = [&](size_t k) { return k < expr.size() && expr[k] >= '0' && expr[k] <= '9'; };
  while (i < expr.size()) {
    if (digit(i)) {
      size_t j = i + 1;
      while (j < expr.size() && expr[j] == ' ') ++j;
      if (j > i + 1 && digit(j)) {
        out.push_back(expr[i]);
        out.push_back('+');
        out.push_back(expr[j]);
        i = j + 1;
        continue;
      }
    }
    out.push_back(expr[i++]);
  }
  return out;
}

// (\d)(,)(\d\d\d)($|\D) -> \1\3\4 until nothing changes: "1,234,567" -> "1234567", "(1,2)" untouched.
std::string strip_properly_formatted_commas(std::string expr) {
  static const std::regex kPattern(R"((\d)(,)(\d\d\d)($|\D))");
  while (true) {
    std::string next = std::regex_replace(expr, kPattern, "$1$3$4");
    if (next == expr) return next;
    expr = next;
  }
}

bool is_int_value(double x) { return std::isfinite(x) && std::fabs(x - std::nearbyint(x)) <= 1e-7; }

bool str_is_int(const std::string& x) {
  auto value = text::python_float(strip_properly_formatted_commas(x));
  return value && is_int_value(*value);
}

std::string str_to_int(const std::string& x) {
  auto value = text::python_float(replace_all(x, ",", ""));
  SLIME_ASSERT(value.has_value(), "str_to_int on a non-number: ", x);
  return text::python_int_string(*value);
}

// ^-?[0-9]+.?/0*[1-9][0-9]*.?$  ('.' is any character, as in slime's regex)
bool is_frac(const std::string& expr) {
  static const std::regex kPattern(R"(^-?[0-9]+.?/0*[1-9][0-9]*.?$)");
  return std::regex_match(expr, kPattern);
}

bool should_allow_eval(const std::string& expr) {
  std::string letters_only = replace_all(replace_all(expr, "sqrt", ""), "frac", "");
  std::set<char> letters;
  for (char c : letters_only)
    if (std::isalpha(static_cast<unsigned char>(c))) letters.insert(c);
  if (letters.size() > 2) return false;
  if (contains(expr, "^{") || contains(expr, "^(")) return false;
  static const std::regex kBad1(R"(\^[0-9]+\^)");
  static const std::regex kBad2(R"(\^[0-9][0-9]+)");
  return !std::regex_search(expr, kBad1) && !std::regex_search(expr, kBad2);
}

bool are_equal_exactly(const std::string& truth, const std::string& given) {
  std::string difference = "(" + truth + ")-(" + given + ")";
  if (!should_allow_eval(difference)) return false;
  return expressions_equal(truth, given).value_or(false);
}

std::vector<std::string> split_tuple(const std::string& raw) {
  std::string expr = strip_properly_formatted_commas(raw);
  if (expr.empty()) return {};
  auto is_tuple_char = [](char c) { return c == '(' || c == ')' || c == '[' || c == ']'; };
  bool interior_clean = true;
  for (size_t i = 1; i + 1 < expr.size(); ++i)
    if (is_tuple_char(expr[i])) interior_clean = false;
  if (expr.size() > 2 && is_tuple_char(expr.front()) && is_tuple_char(expr.back()) && interior_clean) {
    std::vector<std::string> elements;
    for (const auto& piece : text::split(std::string_view(expr).substr(1, expr.size() - 2), ","))
      elements.push_back(text::strip(piece));
    return elements;
  }
  return {expr};
}

}  // namespace

std::string normalize_answer_expression(std::string_view answer) {
  std::string expr(answer);
  if (auto inner = enclosing_text_content(expr)) expr = *inner;
  expr = replace_all(expr, "\\%", "%");
  expr = replace_all(expr, "\\$", "$");
  expr = replace_all(expr, "$", "");
  expr = replace_all(expr, "%", "");
  expr = replace_all(expr, " or ", " , ");
  expr = replace_all(expr, " and ", " , ");
  expr = replace_all(expr, "million", "*10^6");
  expr = replace_all(expr, "billion", "*10^9");
  expr = replace_all(expr, "trillion", "*10^12");
  for (const char* unit : {"degree", "cm", "centimeter", "meter", "mile", "second", "minute", "hour", "day", "week",
                           "month", "year", "foot", "feet", "inch", "yard"})
    expr = remove_unit(expr, unit);
  expr = remove_caret_circ(expr);
  if (!expr.empty() && expr.front() == '{' && expr.back() == '}') expr = expr.substr(1, expr.size() - 2);
  expr = remove_comma_thin_space(expr);
  if (auto value = text::python_float(expr); value && is_int_value(*value))
    expr = text::python_int_string(std::nearbyint(*value));
  if (contains(expr, "\\")) expr = latex_to_plain(expr);
  expr = tighten_minus(expr);
  expr = inject_implicit_mixed_number(expr);
  expr = replace_all(expr, " ", "");
  expr = replace_all(expr, "{", "");
  expr = replace_all(expr, "}", "");
  expr = text::lower(expr);
  if (str_is_int(expr)) expr = str_to_int(expr);
  return expr;
}

bool grade_answer_equivalent(std::string_view given, std::string_view truth) {
  // Very long answers are judged by the mathd string rules alone: slime's comma stripping is quadratic and its
  // regexes (like std::regex) recurse per character.
  if (given.size() > kMaxEquivalenceLength || truth.size() > kMaxEquivalenceLength) return false;
  std::string truth_normalized = normalize_answer_expression(truth);
  std::string given_normalized = normalize_answer_expression(given);
  if (truth_normalized == given_normalized) return true;
  if (given_normalized.empty()) return false;
  auto truth_elements = split_tuple(truth_normalized);
  auto given_elements = split_tuple(given_normalized);
  if (truth_elements.size() > 1 &&
      (truth_normalized.front() != given_normalized.front() || truth_normalized.back() != given_normalized.back()))
    return false;  // "(1,2)" is not "[1,2]"
  if (truth_elements.size() != given_elements.size()) return false;
  for (size_t i = 0; i < truth_elements.size(); ++i) {
    const std::string& t = truth_elements[i];
    const std::string& g = given_elements[i];
    bool equal;
    if (is_frac(t) && is_frac(g))
      equal = t == g;  // unreduced fractions are not accepted as equal
    else if (str_is_int(t) != str_is_int(g))
      equal = false;  // an integer answer needs an integer
    else
      equal = are_equal_exactly(t, g);
    if (!equal) return false;
  }
  return true;
}

bool grade_answer_verl(std::string_view response, std::string_view truth_raw) {
  if (truth_raw.empty()) return false;
  std::string truth(truth_raw);
  if (contains(truth, "\\boxed")) {
    auto inner = extract_boxed_answer(truth);
    if (!inner) return false;
    truth = *inner;
  }
  auto given = extract_boxed_answer(response);
  if (!given) return false;
  return grade_answer_mathd(*given, truth) || grade_answer_equivalent(*given, truth);
}

std::string label_text(const nlohmann::ordered_json& label, std::string_view rm_type) {
  if (label.is_string()) return label.get<std::string>();
  if (label.is_number_integer() || label.is_number_unsigned() || label.is_number_float()) return label.dump();
  SLIME_FAIL("rm_type ", rm_type, ": the label must be a string or a number, got ", label.type_name(), " ",
             label.dump());
}

double math_reward(std::string_view response, const nlohmann::ordered_json& label) {
  if (label.is_null()) return 0;
  return grade_answer_verl(response, label_text(label, "math")) ? 1 : 0;
}

double deepscaler_reward(std::string_view response, const nlohmann::ordered_json& label) {
  std::string solution;
  if (contains(response, "</think>")) {
    solution = text::split(response, "</think>").back();
  } else if (contains(response, "###Response")) {
    solution = text::split(response, "###Response")[1];
  } else {
    return 0;
  }
  auto answer = extract_boxed_answer(solution);
  if (!answer) return 0;
  if (label.is_null()) return 0;
  std::string truth = label_text(label, "deepscaler");
  if (truth.empty()) return 0;
  if (contains(truth, "\\boxed")) {
    auto inner = extract_boxed_answer(truth);
    if (!inner) return 0;
    truth = *inner;
  }
  return grade_answer_mathd(*answer, truth) || grade_answer_equivalent(*answer, truth) ? 1 : 0;
}

}  // namespace slime::reward
