// Jinja lexer: splits a template into text and tag tokens exactly as jinja2's lexer.py does, including its
// whitespace control. The rules it reproduces:
//   - newlines are normalized to "\n" and one trailing newline is dropped (keep_trailing_newline=False);
//   - `{%-` / `{{-` / `{#-` strip all whitespace before the tag, `-%}` / `-}}` / `-#}` all whitespace after it;
//   - trim_blocks drops the first newline right after `%}` or `#}` (never after `}}`), unless the tag ends `+%}`;
//   - lstrip_blocks drops spaces and tabs between the start of a line and a `{%` or `{#` (never `{{`), unless the
//     tag starts `{%+`; "start of a line" includes the position right after a tag whose match ended in a newline;
//   - `{% raw %}...{% endraw %}` is text, and `%}` / `}}` inside brackets do not end a tag.
#include <cctype>
#include <cerrno>
#include <cstdlib>

#include "core/error.h"
#include "tokenizer/jinja_ast.h"
#include "tokenizer/jinja_text.h"

namespace slime::jinja {
namespace {

// End of the run of whitespace (Python's \s) that starts at `pos`.
size_t skip_whitespace(const std::string& s, size_t pos) {
  while (pos < s.size()) {
    size_t n = 0;
    if (!text::is_space(text::decode_at(s, pos, &n))) break;
    pos += n;
  }
  return pos;
}

// Python's str.rstrip() on UTF-8.
std::string rstrip_whitespace(const std::string& s) {
  size_t keep = 0, pos = 0;
  while (pos < s.size()) {
    size_t n = 0;
    char32_t c = text::decode_at(s, pos, &n);
    pos += n;
    if (!text::is_space(c)) keep = pos;
  }
  return s.substr(0, keep);
}

bool all_whitespace(const std::string& s, size_t from) { return skip_whitespace(s, from) == s.size(); }

bool is_name_start(unsigned char c) { return std::isalpha(c) || c == '_' || c >= 0x80; }
bool is_name_char(unsigned char c) { return std::isalnum(c) || c == '_' || c >= 0x80; }

// Digits with single underscores between them, as `(\d+_)*\d+`. Returns the end, or `pos` if no digit.
size_t match_digits(const std::string& s, size_t pos) {
  size_t end = pos;
  while (end < s.size() && std::isdigit(static_cast<unsigned char>(s[end]))) {
    ++end;
    if (end + 1 < s.size() && s[end] == '_' && std::isdigit(static_cast<unsigned char>(s[end + 1]))) ++end;
  }
  return end;
}

std::string without_underscores(const std::string& s) {
  std::string out;
  for (char c : s)
    if (c != '_') out += c;
  return out;
}

class Lexer {
 public:
  Lexer(const std::string& raw, const LexerOptions& options) : options_(options) {
    source_.reserve(raw.size());
    for (size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] == '\r') {
        if (i + 1 < raw.size() && raw[i + 1] == '\n') ++i;
        source_ += '\n';
      } else {
        source_ += raw[i];
      }
    }
    if (!options_.keep_trailing_newline && !source_.empty() && source_.back() == '\n') source_.pop_back();
  }

  std::vector<Token> run() {
    while (pos_ < source_.size()) {
      size_t tag = find_tag_start(pos_);
      if (tag == std::string::npos) {
        emit_data(source_.substr(pos_), line_);
        advance_to(source_.size());
        break;
      }
      lex_tag(tag);
    }
    Token eof;
    eof.type = TokenType::Eof;
    eof.line = line_;
    tokens_.push_back(eof);
    return std::move(tokens_);
  }

 private:
  enum class TagKind { Variable, Block, Comment, Raw };

  [[noreturn]] void fail(const std::string& message, int line) { throw LocatedError(line, message); }

  size_t find_tag_start(size_t from) const {
    for (size_t i = source_.find('{', from); i != std::string::npos; i = source_.find('{', i + 1)) {
      if (i + 1 < source_.size() && (source_[i + 1] == '{' || source_[i + 1] == '%' || source_[i + 1] == '#'))
        return i;
    }
    return std::string::npos;
  }

  void advance_to(size_t to) {
    for (size_t i = pos_; i < to; ++i)
      if (source_[i] == '\n') ++line_;
    pos_ = to;
  }

  void emit_data(std::string data, int line) {
    if (data.empty()) return;
    Token t;
    t.type = TokenType::Data;
    t.text = std::move(data);
    t.line = line;
    tokens_.push_back(std::move(t));
  }

  void emit(TokenType type, std::string text, int line) {
    Token t;
    t.type = type;
    t.text = std::move(text);
    t.line = line;
    tokens_.push_back(std::move(t));
  }

  // Applies `{%-` stripping or lstrip_blocks to the text that precedes a tag (jinja2's OptionalLStrip).
  std::string strip_before_tag(std::string text, char sign, bool is_variable) const {
    if (sign == '-') return rstrip_whitespace(text);
    if (sign != '+' && options_.lstrip_blocks && !is_variable) {
      size_t line_begin = text.rfind('\n');
      line_begin = line_begin == std::string::npos ? 0 : line_begin + 1;
      if ((line_begin > 0 || line_starting_) && line_begin < text.size() && all_whitespace(text, line_begin))
        text.resize(line_begin);
    }
    return text;
  }

  // `{%(-|+|)\s*raw\s*(-%}\s*|%})` at `at`; returns the end of the match or npos.
  size_t match_raw_begin(size_t at) const {
    size_t p = at + 2;
    if (p < source_.size() && (source_[p] == '-' || source_[p] == '+')) ++p;
    p = skip_whitespace(source_, p);
    if (source_.compare(p, 3, "raw") != 0) return std::string::npos;
    p = skip_whitespace(source_, p + 3);
    if (source_.compare(p, 3, "-%}") == 0) return skip_whitespace(source_, p + 3);
    if (source_.compare(p, 2, "%}") == 0) return p + 2;
    return std::string::npos;
  }

  void lex_tag(size_t at) {
    TagKind kind = source_[at + 1] == '{' ? TagKind::Variable : source_[at + 1] == '%' ? TagKind::Block
                                                                                       : TagKind::Comment;
    size_t raw_end = kind == TagKind::Block ? match_raw_begin(at) : std::string::npos;
    if (raw_end != std::string::npos) kind = TagKind::Raw;
    char sign = at + 2 < source_.size() && (source_[at + 2] == '-' || source_[at + 2] == '+') ? source_[at + 2] : 0;

    int data_line = line_;
    emit_data(strip_before_tag(source_.substr(pos_, at - pos_), sign, kind == TagKind::Variable), data_line);
    advance_to(at);
    line_starting_ = false;  // the match so far ends with the tag opener

    switch (kind) {
      case TagKind::Comment: lex_comment(at + 2 + (sign ? 1 : 0)); break;
      case TagKind::Raw: advance_to(raw_end); line_starting_ = source_[raw_end - 1] == '\n'; lex_raw_body(); break;
      case TagKind::Variable:
      case TagKind::Block: lex_tag_body(kind, at + 2 + (sign ? 1 : 0)); break;
    }
  }

  void lex_comment(size_t from) {
    int start_line = line_;
    for (size_t k = from; k + 1 < source_.size(); ++k) {
      size_t end;
      if (source_.compare(k, 3, "+#}") == 0) {
        end = k + 3;
      } else if (source_.compare(k, 3, "-#}") == 0) {
        end = skip_whitespace(source_, k + 3);
      } else if (source_.compare(k, 2, "#}") == 0) {
        end = k + 2;
        if (options_.trim_blocks && end < source_.size() && source_[end] == '\n') ++end;
      } else {
        continue;
      }
      advance_to(end);
      line_starting_ = source_[end - 1] == '\n';
      return;
    }
    fail("Missing end of comment tag", start_line);
  }

  void lex_raw_body() {
    int start_line = line_;
    for (size_t k = source_.find("{%", pos_); k != std::string::npos; k = source_.find("{%", k + 1)) {
      size_t p = k + 2;
      char sign = 0;
      if (p < source_.size() && (source_[p] == '-' || source_[p] == '+')) sign = source_[p++];
      p = skip_whitespace(source_, p);
      if (source_.compare(p, 6, "endraw") != 0) continue;
      p = skip_whitespace(source_, p + 6);
      size_t end;
      if (source_.compare(p, 3, "+%}") == 0) {
        end = p + 3;
      } else if (source_.compare(p, 3, "-%}") == 0) {
        end = skip_whitespace(source_, p + 3);
      } else if (source_.compare(p, 2, "%}") == 0) {
        end = p + 2;
        if (options_.trim_blocks && end < source_.size() && source_[end] == '\n') ++end;
      } else {
        continue;
      }
      emit_data(strip_before_tag(source_.substr(pos_, k - pos_), sign, false), line_);
      advance_to(end);
      line_starting_ = source_[end - 1] == '\n';
      return;
    }
    fail("Missing end of raw directive", start_line);
  }

  // Tokens of a `{{ ... }}` or `{% ... %}` tag up to and including its end.
  void lex_tag_body(TagKind kind, size_t from) {
    emit(kind == TagKind::Variable ? TokenType::VariableBegin : TokenType::BlockBegin, "", line_);
    advance_to(from);
    std::vector<char> brackets;  // closers expected, innermost last
    while (pos_ < source_.size()) {
      if (brackets.empty() && try_tag_end(kind)) return;
      size_t ws_end = skip_whitespace(source_, pos_);
      if (ws_end != pos_) {
        advance_to(ws_end);
        continue;
      }
      if (lex_number() || lex_name() || lex_string()) continue;
      lex_operator(brackets);
    }
    // End of template inside a tag: the parser reports what it was looking for.
  }

  bool try_tag_end(TagKind kind) {
    size_t end = std::string::npos;
    if (kind == TagKind::Block) {
      if (source_.compare(pos_, 3, "+%}") == 0) {
        end = pos_ + 3;
      } else if (source_.compare(pos_, 3, "-%}") == 0) {
        end = skip_whitespace(source_, pos_ + 3);
      } else if (source_.compare(pos_, 2, "%}") == 0) {
        end = pos_ + 2;
        if (options_.trim_blocks && end < source_.size() && source_[end] == '\n') ++end;
      }
    } else {
      if (source_.compare(pos_, 3, "-}}") == 0) end = skip_whitespace(source_, pos_ + 3);
      else if (source_.compare(pos_, 2, "}}") == 0) end = pos_ + 2;
    }
    if (end == std::string::npos) return false;
    emit(kind == TagKind::Block ? TokenType::BlockEnd : TokenType::VariableEnd, "", line_);
    advance_to(end);
    line_starting_ = source_[end - 1] == '\n';
    return true;
  }

  bool lex_number() {
    unsigned char c = static_cast<unsigned char>(source_[pos_]);
    if (!std::isdigit(c)) return false;
    int line = line_;
    // Float: digits then (fraction? exponent | fraction); not right after a '.', so `a.0.1` stays attribute access.
    bool after_dot = pos_ > 0 && source_[pos_ - 1] == '.';
    size_t int_end = match_digits(source_, pos_);
    if (!after_dot) {
      size_t p = int_end;
      bool has_fraction = false;
      if (p + 1 < source_.size() && source_[p] == '.' && std::isdigit(static_cast<unsigned char>(source_[p + 1]))) {
        p = match_digits(source_, p + 1);
        has_fraction = true;
      }
      size_t q = p;
      bool has_exponent = false;
      if (q < source_.size() && (source_[q] == 'e' || source_[q] == 'E')) {
        size_t r = q + 1;
        if (r < source_.size() && (source_[r] == '+' || source_[r] == '-')) ++r;
        size_t exp_end = match_digits(source_, r);
        if (exp_end != r) {
          q = exp_end;
          has_exponent = true;
        }
      }
      if (has_fraction || has_exponent) {
        size_t end = has_exponent ? q : p;
        Token t;
        t.type = TokenType::Float;
        t.text = source_.substr(pos_, end - pos_);
        t.number = std::strtod(without_underscores(t.text).c_str(), nullptr);
        t.line = line;
        tokens_.push_back(std::move(t));
        advance_to(end);
        return true;
      }
    }
    // Integer: 0b / 0o / 0x prefixes, a decimal without leading zeros, or zeros.
    size_t end = pos_ + 1;
    int base = 10;
    std::string digits;
    char prefix = pos_ + 1 < source_.size() ? static_cast<char>(std::tolower(source_[pos_ + 1])) : 0;
    auto valid_digit = [&](char d) {
      d = static_cast<char>(std::tolower(d));
      if (base == 2) return d == '0' || d == '1';
      if (base == 8) return d >= '0' && d <= '7';
      return std::isxdigit(static_cast<unsigned char>(d)) != 0;
    };
    if (c == '0' && (prefix == 'b' || prefix == 'o' || prefix == 'x')) {
      base = prefix == 'b' ? 2 : prefix == 'o' ? 8 : 16;
      size_t p = pos_ + 2;
      while (p < source_.size()) {
        size_t q = p;
        if (source_[q] == '_') ++q;
        if (q < source_.size() && valid_digit(source_[q])) {
          digits += source_[q];
          p = q + 1;
        } else {
          break;
        }
      }
      if (!digits.empty()) end = p;
      else base = 10;
    }
    if (base == 10) {
      if (c == '0') {
        while (end < source_.size()) {
          size_t q = end;
          if (source_[q] == '_') ++q;
          if (q < source_.size() && source_[q] == '0') end = q + 1;
          else break;
        }
        digits = "0";
      } else {
        end = int_end;
        digits = without_underscores(source_.substr(pos_, end - pos_));
      }
    }
    errno = 0;
    Token t;
    t.type = TokenType::Integer;
    t.text = source_.substr(pos_, end - pos_);
    t.integer = std::strtoll(digits.c_str(), nullptr, base);
    if (errno == ERANGE) fail("integer literal " + t.text + " does not fit in 64 bits", line);
    t.line = line;
    tokens_.push_back(std::move(t));
    advance_to(end);
    return true;
  }

  bool lex_name() {
    if (!is_name_start(static_cast<unsigned char>(source_[pos_]))) return false;
    size_t end = pos_ + 1;
    while (end < source_.size() && is_name_char(static_cast<unsigned char>(source_[end]))) ++end;
    emit(TokenType::Name, source_.substr(pos_, end - pos_), line_);
    advance_to(end);
    return true;
  }

  bool lex_string() {
    char quote = source_[pos_];
    if (quote != '\'' && quote != '"') return false;
    size_t p = pos_ + 1;
    while (p < source_.size() && source_[p] != quote) p += source_[p] == '\\' ? 2 : 1;
    if (p >= source_.size()) return false;  // unterminated: reported as an unexpected character
    Token t;
    t.type = TokenType::String;
    t.text = unescape(source_.substr(pos_ + 1, p - pos_ - 1), line_);
    t.line = line_;
    tokens_.push_back(std::move(t));
    advance_to(p + 1);
    return true;
  }

  // Python's "unicode-escape" decoding, which jinja2 applies to string literals.
  std::string unescape(const std::string& body, int line) {
    std::string out;
    for (size_t i = 0; i < body.size(); ++i) {
      if (body[i] != '\\' || i + 1 >= body.size()) {
        out += body[i];
        continue;
      }
      char e = body[++i];
      auto hex_escape = [&](size_t digits) {
        std::string hex = body.substr(i + 1, digits);
        bool ok = hex.size() == digits;
        for (char h : hex) ok = ok && std::isxdigit(static_cast<unsigned char>(h));
        if (!ok) fail("truncated \\" + std::string(1, e) + " escape in string literal", line);
        i += digits;
        unsigned long cp = std::strtoul(hex.c_str(), nullptr, 16);
        if (cp > 0x10FFFF) fail("illegal Unicode character in string literal", line);
        text::append_utf8(out, static_cast<char32_t>(cp));
      };
      switch (e) {
        case '\n': break;  // line continuation
        case '\\': out += '\\'; break;
        case '\'': out += '\''; break;
        case '"': out += '"'; break;
        case 'a': out += '\a'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'v': out += '\v'; break;
        case 'x': hex_escape(2); break;
        case 'u': hex_escape(4); break;
        case 'U': hex_escape(8); break;
        case 'N': fail("\\N{...} escapes are not supported in string literals", line);
        default:
          if (e >= '0' && e <= '7') {
            unsigned value = static_cast<unsigned>(e - '0');
            for (int k = 0; k < 2 && i + 1 < body.size() && body[i + 1] >= '0' && body[i + 1] <= '7'; ++k)
              value = value * 8 + static_cast<unsigned>(body[++i] - '0');
            text::append_utf8(out, static_cast<char32_t>(value));
          } else {  // unknown escapes keep their backslash
            out += '\\';
            out += e;
          }
      }
    }
    return out;
  }

  void lex_operator(std::vector<char>& brackets) {
    static const char* const two_char[] = {"//", "**", "==", "!=", ">=", "<="};
    for (const char* op : two_char) {
      if (source_.compare(pos_, 2, op) == 0) {
        emit(TokenType::Operator, op, line_);
        advance_to(pos_ + 2);
        return;
      }
    }
    char c = source_[pos_];
    static const std::string single = "+-/*%~[](){}><=.:|,;";
    if (single.find(c) == std::string::npos) {
      size_t n = 0;
      text::decode_at(source_, pos_, &n);
      fail("unexpected char " + repr_string(source_.substr(pos_, n)) + " at " + std::to_string(pos_), line_);
    }
    if (c == '(' || c == '[' || c == '{') {
      brackets.push_back(c == '(' ? ')' : c == '[' ? ']' : '}');
    } else if (c == ')' || c == ']' || c == '}') {
      if (brackets.empty()) fail(std::string("unexpected '") + c + "'", line_);
      char expected = brackets.back();
      brackets.pop_back();
      if (expected != c) fail(std::string("unexpected '") + c + "', expected '" + expected + "'", line_);
    }
    emit(TokenType::Operator, std::string(1, c), line_);
    advance_to(pos_ + 1);
  }

  LexerOptions options_;
  std::string source_;
  size_t pos_ = 0;
  int line_ = 1;
  bool line_starting_ = true;
  std::vector<Token> tokens_;
};

}  // namespace

std::vector<Token> tokenize(const std::string& source, const LexerOptions& options) {
  return Lexer(source, options).run();
}

}  // namespace slime::jinja
