// Python-compatible string helpers for the reward verifiers (see text_util.h).
#include "reward/text_util.h"

#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace slime::reward::text {

namespace {
bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
}  // namespace

std::string replace_all(std::string_view text, std::string_view from, std::string_view to) {
  if (from.empty()) return std::string(text);
  std::string out;
  out.reserve(text.size());
  size_t pos = 0;
  while (true) {
    size_t hit = text.find(from, pos);
    if (hit == std::string_view::npos) break;
    out.append(text.substr(pos, hit - pos));
    out.append(to);
    pos = hit + from.size();
  }
  out.append(text.substr(pos));
  return out;
}

std::vector<std::string> split(std::string_view text, std::string_view sep) {
  std::vector<std::string> pieces;
  size_t pos = 0;
  while (true) {
    size_t hit = text.find(sep, pos);
    if (hit == std::string_view::npos) break;
    pieces.emplace_back(text.substr(pos, hit - pos));
    pos = hit + sep.size();
  }
  pieces.emplace_back(text.substr(pos));
  return pieces;
}

std::vector<std::string> split_whitespace(std::string_view text) {
  std::vector<std::string> pieces;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && is_space(text[i])) ++i;
    size_t start = i;
    while (i < text.size() && !is_space(text[i])) ++i;
    if (i > start) pieces.emplace_back(text.substr(start, i - start));
  }
  return pieces;
}

std::string strip(std::string_view text) {
  size_t begin = 0, end = text.size();
  while (begin < end && is_space(text[begin])) ++begin;
  while (end > begin && is_space(text[end - 1])) --end;
  return std::string(text.substr(begin, end - begin));
}

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

bool contains(std::string_view text, std::string_view needle) { return text.find(needle) != std::string_view::npos; }
bool starts_with(std::string_view text, std::string_view prefix) { return text.substr(0, prefix.size()) == prefix; }
bool ends_with(std::string_view text, std::string_view suffix) {
  return text.size() >= suffix.size() && text.substr(text.size() - suffix.size()) == suffix;
}

size_t utf8_char_length(unsigned char lead) {
  if (lead < 0xC0) return 1;  // ASCII or a stray continuation byte: count it alone
  if (lead < 0xE0) return 2;
  if (lead < 0xF0) return 3;
  return 4;
}

std::string utf8_tail(std::string_view text, size_t count) {
  // Walk back over code point starts (bytes that are not 10xxxxxx).
  size_t pos = text.size();
  size_t taken = 0;
  while (pos > 0 && taken < count) {
    --pos;
    while (pos > 0 && (static_cast<unsigned char>(text[pos]) & 0xC0) == 0x80) --pos;
    ++taken;
  }
  return std::string(text.substr(pos));
}

std::string sanitize_utf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    auto lead = static_cast<unsigned char>(text[i]);
    size_t length = lead < 0x80                     ? 1
                    : (lead >= 0xC2 && lead < 0xE0) ? 2
                    : (lead >= 0xE0 && lead < 0xF0) ? 3
                    : (lead >= 0xF0 && lead < 0xF5) ? 4
                                                    : 0;
    bool valid = length > 0 && i + length <= text.size();
    for (size_t k = 1; valid && k < length; ++k) valid = (static_cast<unsigned char>(text[i + k]) & 0xC0) == 0x80;
    if (valid && length == 3) {  // no overlong forms, no surrogates
      auto second = static_cast<unsigned char>(text[i + 1]);
      valid = !(lead == 0xE0 && second < 0xA0) && !(lead == 0xED && second >= 0xA0);
    }
    if (valid && length == 4) {
      auto second = static_cast<unsigned char>(text[i + 1]);
      valid = !(lead == 0xF0 && second < 0x90) && !(lead == 0xF4 && second >= 0x90);
    }
    if (valid) {
      out.append(text.substr(i, length));
      i += length;
    } else {
      out.append("\xEF\xBF\xBD");
      ++i;
    }
  }
  return out;
}

std::optional<double> python_float(std::string_view raw) {
  std::string text = strip(raw);
  if (text.empty()) return std::nullopt;
  size_t i = 0;
  std::string clean;
  if (text[i] == '+' || text[i] == '-') clean.push_back(text[i++]);
  std::string rest = lower(text.substr(i));
  if (rest == "inf" || rest == "infinity" || rest == "nan") {
    clean += rest == "nan" ? "nan" : "inf";
    return std::strtod(clean.c_str(), nullptr);
  }
  // digits with single underscores between digits, optional fraction, optional exponent.
  auto digits = [&](bool required) {
    size_t start = i;
    while (i < text.size()) {
      if (is_digit(text[i])) {
        clean.push_back(text[i++]);
      } else if (text[i] == '_' && i > start && is_digit(text[i - 1]) && i + 1 < text.size() && is_digit(text[i + 1])) {
        ++i;
      } else {
        break;
      }
    }
    return !required || i > start;
  };
  size_t mantissa_start = i;
  digits(false);
  bool has_int = i > mantissa_start;
  bool has_frac = false;
  if (i < text.size() && text[i] == '.') {
    clean.push_back(text[i++]);
    size_t frac_start = i;
    digits(false);
    has_frac = i > frac_start;
  }
  if (!has_int && !has_frac) return std::nullopt;
  if (i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
    clean.push_back(text[i++]);
    if (i < text.size() && (text[i] == '+' || text[i] == '-')) clean.push_back(text[i++]);
    if (!digits(true)) return std::nullopt;
  }
  if (i != text.size()) return std::nullopt;
  return std::strtod(clean.c_str(), nullptr);
}

std::string python_int_string(double value) {
  double truncated = std::trunc(value);
  if (truncated == 0) return "0";  // int(-0.5) is 0, never "-0"
  char buffer[400];
  // glibc prints the exact decimal expansion of the double, as Python's int(float) does.
  std::snprintf(buffer, sizeof(buffer), "%.0f", truncated);
  return buffer;
}

}  // namespace slime::reward::text
