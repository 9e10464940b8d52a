// String helpers shared by the reward verifiers: Python-compatible replace/strip/float parsing and UTF-8 aware
// slicing, so that ports of slime's Python verifiers behave the same on the same bytes.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace slime::reward::text {

// str.replace(from, to): every non-overlapping occurrence, left to right.
std::string replace_all(std::string_view text, std::string_view from, std::string_view to);
// str.split(sep) with a non-empty separator: always at least one piece.
std::vector<std::string> split(std::string_view text, std::string_view sep);
// str.split() with no argument: runs of ASCII whitespace separate, no empty pieces.
std::vector<std::string> split_whitespace(std::string_view text);
// str.strip(): ASCII whitespace on both ends.
std::string strip(std::string_view text);
// ASCII lower-casing (Python lowers non-ASCII letters too; the verifiers only rely on ASCII).
std::string lower(std::string_view text);
bool contains(std::string_view text, std::string_view needle);
bool starts_with(std::string_view text, std::string_view prefix);
bool ends_with(std::string_view text, std::string_view suffix);

// The last `count` code points of a UTF-8 string (Python's text[-count:]).
std::string utf8_tail(std::string_view text, size_t count);
// Byte length of the UTF-8 sequence starting with `lead` (1 for ASCII and for stray continuation bytes).
size_t utf8_char_length(unsigned char lead);

// Invalid UTF-8 sequences replaced by U+FFFD, so that the text can go into JSON.
std::string sanitize_utf8(std::string_view text);

// Python's float(text): surrounding whitespace allowed, "1_000", "1e5", ".5", "inf", "nan"; nullopt otherwise.
std::optional<double> python_float(std::string_view text);
// Python's str(int(x)) for a finite double: truncation toward zero, exact decimal digits even above 2^63.
std::string python_int_string(double value);

}  // namespace slime::reward::text
