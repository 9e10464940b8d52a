// UTF-8 text helpers for the Jinja interpreter, with Python's str semantics: lengths and indices in code points,
// Python's notion of whitespace (str.isspace) and line breaks (str.splitlines), case mapping through utf8proc.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace slime::jinja::text {

// Decodes UTF-8 to code points; invalid bytes become U+FFFD so nothing is silently dropped.
std::vector<char32_t> decode(const std::string& s);
// The code point starting at byte `pos` and its length in bytes (an invalid byte: U+FFFD, length 1).
char32_t decode_at(const std::string& s, size_t pos, size_t* length);
std::string encode(const std::vector<char32_t>& cps);
void append_utf8(std::string& out, char32_t cp);
int64_t length(const std::string& s);  // code points

bool is_space(char32_t c);       // Python str.isspace
bool is_line_break(char32_t c);  // Python str.splitlines boundaries
bool is_printable(char32_t c);   // Python str.isprintable, used by repr
bool is_cased_letter(char32_t c);
bool is_alpha(char32_t c);
bool is_digit(char32_t c);
bool is_upper(char32_t c);
bool is_lower(char32_t c);
char32_t to_upper(char32_t c);
char32_t to_lower(char32_t c);
char32_t to_title(char32_t c);

std::string upper(const std::string& s);
std::string lower(const std::string& s);
std::string python_title(const std::string& s);  // str.title()
std::string capitalize(const std::string& s);    // str.capitalize()

// str.strip/lstrip/rstrip: chars == nullptr strips whitespace, otherwise any code point in *chars.
std::string strip(const std::string& s, const std::string* chars, bool left, bool right);
// str.split / str.rsplit. sep == nullptr splits on whitespace runs and drops empty pieces.
std::vector<std::string> split(const std::string& s, const std::string* sep, int64_t maxsplit, bool from_right);
std::vector<std::string> splitlines(const std::string& s, bool keepends);
std::string replace(const std::string& s, const std::string& old, const std::string& replacement, int64_t count);
int64_t count(const std::string& s, const std::string& sub);
// str.find / str.rfind in code points, -1 when absent.
int64_t find(const std::string& s, const std::string& sub, bool from_right);
bool starts_with(const std::string& s, const std::string& prefix);
bool ends_with(const std::string& s, const std::string& suffix);

}  // namespace slime::jinja::text
