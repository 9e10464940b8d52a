// UTF-8 text helpers with Python's str semantics (see jinja_text.h).
#include "tokenizer/jinja_text.h"

#include <utf8proc.h>

#include <algorithm>

#include "core/error.h"

namespace slime::jinja::text {

std::vector<char32_t> decode(const std::string& s) {
  std::vector<char32_t> out;
  out.reserve(s.size());
  const auto* bytes = reinterpret_cast<const utf8proc_uint8_t*>(s.data());
  utf8proc_ssize_t pos = 0, size = static_cast<utf8proc_ssize_t>(s.size());
  while (pos < size) {
    utf8proc_int32_t cp = 0;
    utf8proc_ssize_t n = utf8proc_iterate(bytes + pos, size - pos, &cp);
    if (n <= 0) {  // invalid byte: keep going, one byte at a time
      out.push_back(0xFFFD);
      pos += 1;
    } else {
      out.push_back(static_cast<char32_t>(cp));
      pos += n;
    }
  }
  return out;
}

char32_t decode_at(const std::string& s, size_t pos, size_t* length) {
  utf8proc_int32_t cp = 0;
  utf8proc_ssize_t n = utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(s.data()) + pos,
                                        static_cast<utf8proc_ssize_t>(s.size() - pos), &cp);
  if (n <= 0) {
    *length = 1;
    return 0xFFFD;
  }
  *length = static_cast<size_t>(n);
  return static_cast<char32_t>(cp);
}

void append_utf8(std::string& out, char32_t cp) {
  utf8proc_uint8_t buf[4];
  utf8proc_ssize_t n = utf8proc_encode_char(static_cast<utf8proc_int32_t>(cp), buf);
  if (n <= 0) n = utf8proc_encode_char(0xFFFD, buf);
  out.append(reinterpret_cast<const char*>(buf), static_cast<size_t>(n));
}

std::string encode(const std::vector<char32_t>& cps) {
  std::string out;
  out.reserve(cps.size());
  for (char32_t c : cps) append_utf8(out, c);
  return out;
}

int64_t length(const std::string& s) {
  int64_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;  // count lead bytes
  return n;
}

bool is_space(char32_t c) {
  switch (c) {
    case '\t': case '\n': case 0x0B: case 0x0C: case '\r': case 0x1C: case 0x1D: case 0x1E: case 0x1F: case ' ':
    case 0x85: case 0xA0: case 0x1680: case 0x2028: case 0x2029: case 0x202F: case 0x205F: case 0x3000:
      return true;
    default:
      return c >= 0x2000 && c <= 0x200A;
  }
}

bool is_line_break(char32_t c) {
  switch (c) {
    case '\n': case '\r': case 0x0B: case 0x0C: case 0x1C: case 0x1D: case 0x1E: case 0x85: case 0x2028: case 0x2029:
      return true;
    default:
      return false;
  }
}

static utf8proc_category_t category(char32_t c) {
  return utf8proc_category(static_cast<utf8proc_int32_t>(c));
}

bool is_printable(char32_t c) {
  if (c == ' ') return true;
  switch (category(c)) {
    case UTF8PROC_CATEGORY_CC: case UTF8PROC_CATEGORY_CF: case UTF8PROC_CATEGORY_CS: case UTF8PROC_CATEGORY_CO:
    case UTF8PROC_CATEGORY_CN: case UTF8PROC_CATEGORY_ZL: case UTF8PROC_CATEGORY_ZP: case UTF8PROC_CATEGORY_ZS:
      return false;
    default:
      return true;
  }
}

bool is_cased_letter(char32_t c) {
  auto cat = category(c);
  return cat == UTF8PROC_CATEGORY_LU || cat == UTF8PROC_CATEGORY_LL || cat == UTF8PROC_CATEGORY_LT;
}

bool is_alpha(char32_t c) {
  auto cat = category(c);
  return cat == UTF8PROC_CATEGORY_LU || cat == UTF8PROC_CATEGORY_LL || cat == UTF8PROC_CATEGORY_LT ||
         cat == UTF8PROC_CATEGORY_LM || cat == UTF8PROC_CATEGORY_LO;
}

bool is_digit(char32_t c) { return category(c) == UTF8PROC_CATEGORY_ND; }
bool is_upper(char32_t c) { return category(c) == UTF8PROC_CATEGORY_LU || category(c) == UTF8PROC_CATEGORY_LT; }
bool is_lower(char32_t c) { return category(c) == UTF8PROC_CATEGORY_LL; }
char32_t to_upper(char32_t c) { return static_cast<char32_t>(utf8proc_toupper(static_cast<utf8proc_int32_t>(c))); }
char32_t to_lower(char32_t c) { return static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(c))); }
char32_t to_title(char32_t c) { return static_cast<char32_t>(utf8proc_totitle(static_cast<utf8proc_int32_t>(c))); }

std::string upper(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char32_t c : decode(s)) append_utf8(out, to_upper(c));
  return out;
}

std::string lower(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char32_t c : decode(s)) append_utf8(out, to_lower(c));
  return out;
}

std::string python_title(const std::string& s) {
  std::string out;
  bool previous_is_cased = false;
  for (char32_t c : decode(s)) {
    append_utf8(out, previous_is_cased ? to_lower(c) : to_title(c));
    previous_is_cased = is_cased_letter(c);
  }
  return out;
}

std::string capitalize(const std::string& s) {
  std::string out;
  bool first = true;
  for (char32_t c : decode(s)) {
    append_utf8(out, first ? to_title(c) : to_lower(c));
    first = false;
  }
  return out;
}

// Works on the UTF-8 bytes, decoding only the code points at the two ends (chat messages can be long).
std::string strip(const std::string& s, const std::string* chars, bool left, bool right) {
  std::vector<char32_t> set;
  if (chars) set = decode(*chars);
  auto strippable = [&](char32_t c) {
    return chars ? std::find(set.begin(), set.end(), c) != set.end() : is_space(c);
  };
  size_t begin = 0, end = s.size(), n = 0;
  if (left)
    while (begin < end && strippable(decode_at(s, begin, &n))) begin += n;
  if (right) {
    while (end > begin) {
      size_t start = end - 1;
      while (start > begin && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
      char32_t c = decode_at(s, start, &n);
      if (start + n != end || !strippable(c)) break;
      end = start;
    }
  }
  return s.substr(begin, end - begin);
}

std::vector<std::string> split(const std::string& s, const std::string* sep, int64_t maxsplit, bool from_right) {
  std::vector<std::string> pieces;
  if (sep) {
    SLIME_CHECK(!sep->empty(), "ValueError: empty separator");
    if (!from_right) {
      size_t start = 0;
      while (maxsplit < 0 || static_cast<int64_t>(pieces.size()) < maxsplit) {
        size_t hit = s.find(*sep, start);
        if (hit == std::string::npos) break;
        pieces.push_back(s.substr(start, hit - start));
        start = hit + sep->size();
      }
      pieces.push_back(s.substr(start));
    } else {
      size_t end = s.size();
      int64_t splits = 0;
      while (maxsplit < 0 || splits < maxsplit) {
        if (end < sep->size()) break;
        size_t hit = s.rfind(*sep, end - sep->size());
        if (hit == std::string::npos) break;
        pieces.push_back(s.substr(hit + sep->size(), end - hit - sep->size()));
        end = hit;
        ++splits;
      }
      pieces.push_back(s.substr(0, end));
      std::reverse(pieces.begin(), pieces.end());
    }
    return pieces;
  }
  // Whitespace splitting: runs of whitespace separate, leading/trailing whitespace gives no empty piece.
  std::vector<char32_t> cps = decode(s);
  if (!from_right) {
    size_t i = 0, n = cps.size();
    while (true) {
      while (i < n && is_space(cps[i])) ++i;
      if (i >= n) break;
      if (maxsplit >= 0 && static_cast<int64_t>(pieces.size()) >= maxsplit) {
        size_t end = n;
        while (end > i && is_space(cps[end - 1])) --end;
        pieces.push_back(encode(std::vector<char32_t>(cps.begin() + i, cps.begin() + end)));
        break;
      }
      size_t j = i;
      while (j < n && !is_space(cps[j])) ++j;
      pieces.push_back(encode(std::vector<char32_t>(cps.begin() + i, cps.begin() + j)));
      i = j;
    }
  } else {
    size_t end = cps.size();
    while (true) {
      while (end > 0 && is_space(cps[end - 1])) --end;
      if (end == 0) break;
      if (maxsplit >= 0 && static_cast<int64_t>(pieces.size()) >= maxsplit) {
        size_t begin = 0;
        while (begin < end && is_space(cps[begin])) ++begin;
        pieces.push_back(encode(std::vector<char32_t>(cps.begin() + begin, cps.begin() + end)));
        break;
      }
      size_t begin = end;
      while (begin > 0 && !is_space(cps[begin - 1])) --begin;
      pieces.push_back(encode(std::vector<char32_t>(cps.begin() + begin, cps.begin() + end)));
      end = begin;
    }
    std::reverse(pieces.begin(), pieces.end());
  }
  return pieces;
}

std::vector<std::string> splitlines(const std::string& s, bool keepends) {
  std::vector<std::string> lines;
  std::vector<char32_t> cps = decode(s);
  size_t start = 0, i = 0, n = cps.size();
  while (i < n) {
    if (!is_line_break(cps[i])) {
      ++i;
      continue;
    }
    size_t eol = i + 1;
    if (cps[i] == '\r' && eol < n && cps[eol] == '\n') ++eol;
    size_t end = keepends ? eol : i;
    lines.push_back(encode(std::vector<char32_t>(cps.begin() + start, cps.begin() + end)));
    start = i = eol;
  }
  if (start < n) lines.push_back(encode(std::vector<char32_t>(cps.begin() + start, cps.end())));
  return lines;
}

std::string replace(const std::string& s, const std::string& old, const std::string& replacement, int64_t count) {
  std::string out;
  if (old.empty()) {  // Python inserts the replacement between every code point (and at both ends)
    std::vector<char32_t> cps = decode(s);
    int64_t done = 0;
    for (size_t i = 0; i <= cps.size(); ++i) {
      if (count < 0 || done < count) {
        out += replacement;
        ++done;
      }
      if (i < cps.size()) append_utf8(out, cps[i]);
    }
    return out;
  }
  size_t start = 0;
  int64_t done = 0;
  while (count < 0 || done < count) {
    size_t hit = s.find(old, start);
    if (hit == std::string::npos) break;
    out.append(s, start, hit - start);
    out += replacement;
    start = hit + old.size();
    ++done;
  }
  out.append(s, start, std::string::npos);
  return out;
}

int64_t count(const std::string& s, const std::string& sub) {
  if (sub.empty()) return length(s) + 1;
  int64_t n = 0;
  for (size_t pos = s.find(sub); pos != std::string::npos; pos = s.find(sub, pos + sub.size())) ++n;
  return n;
}

int64_t find(const std::string& s, const std::string& sub, bool from_right) {
  size_t hit = from_right ? s.rfind(sub) : s.find(sub);
  if (hit == std::string::npos) return -1;
  return length(s.substr(0, hit));
}

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.size() >= prefix.size() && s.compare(0, prefix.size(), prefix) == 0;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace slime::jinja::text
