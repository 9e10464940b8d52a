// UTF-8 and Unicode helpers for the tokenizer: code point iteration, validation, lossy decoding with U+FFFD
// (the "maximal subpart" rule shared by Rust's from_utf8_lossy and Python's errors="replace"), the character
// classes HF tokenizers relies on (White_Space, \w, is_numeric), and GPT-2's byte <-> printable-char table.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace slime::tokenizer {

// Decodes the code point starting at text[pos] of a string already known to be valid UTF-8; returns its length.
size_t utf8_decode(std::string_view text, size_t pos, uint32_t& code_point);
void utf8_append(std::string& out, uint32_t code_point);
// Byte offset of the first invalid UTF-8 sequence, or std::string_view::npos when the text is valid.
size_t utf8_first_invalid(std::string_view bytes);
// Decodes arbitrary bytes, replacing each maximal invalid subsequence with U+FFFD.
std::string utf8_lossy(std::string_view bytes);
bool is_ascii(std::string_view text);

// Unicode White_Space (what Rust's char::is_whitespace, regex \s and Oniguruma's \s match).
bool is_white_space(uint32_t code_point);
// Rust regex's Unicode \w: letters, marks, decimal digits, connector punctuation, joiners.
bool is_word_char(uint32_t code_point);
// Rust's char::is_numeric: general categories Nd, Nl, No.
bool is_numeric_char(uint32_t code_point);

// GPT-2's bytes_to_unicode: every byte maps to one printable code point (as UTF-8), and back.
const std::string& byte_to_unicode(uint8_t byte);
// The byte a byte-level code point stands for, or -1 when the code point is not in the table.
int unicode_to_byte(uint32_t code_point);

}  // namespace slime::tokenizer
