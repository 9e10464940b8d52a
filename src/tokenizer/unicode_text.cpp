// UTF-8 and Unicode helpers (see unicode_text.h). Character categories come from libutf8proc.
#include "tokenizer/unicode_text.h"

#include <utf8proc.h>

#include <array>

namespace slime::tokenizer {

size_t utf8_decode(std::string_view text, size_t pos, uint32_t& code_point) {
  const auto byte = [&](size_t i) { return static_cast<uint32_t>(static_cast<uint8_t>(text[pos + i])); };
  const uint32_t lead = byte(0);
  if (lead < 0x80) {
    code_point = lead;
    return 1;
  }
  if (lead < 0xE0) {
    code_point = ((lead & 0x1F) << 6) | (byte(1) & 0x3F);
    return 2;
  }
  if (lead < 0xF0) {
    code_point = ((lead & 0x0F) << 12) | ((byte(1) & 0x3F) << 6) | (byte(2) & 0x3F);
    return 3;
  }
  code_point = ((lead & 0x07) << 18) | ((byte(1) & 0x3F) << 12) | ((byte(2) & 0x3F) << 6) | (byte(3) & 0x3F);
  return 4;
}

void utf8_append(std::string& out, uint32_t code_point) {
  if (code_point < 0x80) {
    out += static_cast<char>(code_point);
  } else if (code_point < 0x800) {
    out += static_cast<char>(0xC0 | (code_point >> 6));
    out += static_cast<char>(0x80 | (code_point & 0x3F));
  } else if (code_point < 0x10000) {
    out += static_cast<char>(0xE0 | (code_point >> 12));
    out += static_cast<char>(0x80 | ((code_point >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (code_point & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (code_point >> 18));
    out += static_cast<char>(0x80 | ((code_point >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((code_point >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (code_point & 0x3F));
  }
}

namespace {

// Length of the well-formed UTF-8 sequence at bytes[pos] (1..4), or 0 with `invalid_length` set to the
// length of the maximal subpart to replace (Unicode 15, section 3.9, "U+FFFD substitution of maximal subparts").
size_t well_formed_length(std::string_view bytes, size_t pos, size_t& invalid_length) {
  const auto at = [&](size_t i) -> int { return pos + i < bytes.size() ? static_cast<uint8_t>(bytes[pos + i]) : -1; };
  const int lead = at(0);
  invalid_length = 1;
  if (lead < 0x80) return 1;
  int second_low = 0x80, second_high = 0xBF;
  size_t length;
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    if (lead == 0xE0) second_low = 0xA0;
    if (lead == 0xED) second_high = 0x9F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    if (lead == 0xF0) second_low = 0x90;
    if (lead == 0xF4) second_high = 0x8F;
  } else {
    return 0;  // continuation byte or a byte that never starts a sequence
  }
  for (size_t i = 1; i < length; ++i) {
    const int b = at(i);
    const int low = i == 1 ? second_low : 0x80;
    const int high = i == 1 ? second_high : 0xBF;
    if (b < low || b > high) {
      invalid_length = i;
      return 0;
    }
  }
  return length;
}

}  // namespace

size_t utf8_first_invalid(std::string_view bytes) {
  size_t pos = 0, invalid_length = 0;
  while (pos < bytes.size()) {
    if (static_cast<uint8_t>(bytes[pos]) < 0x80) {
      ++pos;
      continue;
    }
    const size_t length = well_formed_length(bytes, pos, invalid_length);
    if (length == 0) return pos;
    pos += length;
  }
  return std::string_view::npos;
}

std::string utf8_lossy(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  size_t pos = 0, invalid_length = 0;
  while (pos < bytes.size()) {
    const size_t length = well_formed_length(bytes, pos, invalid_length);
    if (length == 0) {
      out += "\xEF\xBF\xBD";  // U+FFFD
      pos += invalid_length;
    } else {
      out.append(bytes.data() + pos, length);
      pos += length;
    }
  }
  return out;
}

bool is_ascii(std::string_view text) {
  for (char c : text)
    if (static_cast<uint8_t>(c) >= 0x80) return false;
  return true;
}

bool is_white_space(uint32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F ||
         cp == 0x3000;
}

bool is_word_char(uint32_t cp) {
  if (cp < 0x80) return (cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') || cp == '_';
  if (cp == 0x200C || cp == 0x200D) return true;  // Join_Control
  // Other_Alphabetic symbols (circled and squared letters) count as Alphabetic.
  if ((cp >= 0x24B6 && cp <= 0x24E9) || (cp >= 0x1F130 && cp <= 0x1F149) || (cp >= 0x1F150 && cp <= 0x1F169) ||
      (cp >= 0x1F170 && cp <= 0x1F189))
    return true;
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(cp))) {
    case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT: case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO: case UTF8PROC_CATEGORY_NL: case UTF8PROC_CATEGORY_MN: case UTF8PROC_CATEGORY_MC:
    case UTF8PROC_CATEGORY_ME: case UTF8PROC_CATEGORY_ND: case UTF8PROC_CATEGORY_PC:
      return true;
    default:
      return false;
  }
}

bool is_numeric_char(uint32_t cp) {
  const auto category = utf8proc_category(static_cast<utf8proc_int32_t>(cp));
  return category == UTF8PROC_CATEGORY_ND || category == UTF8PROC_CATEGORY_NL || category == UTF8PROC_CATEGORY_NO;
}

namespace {

struct ByteLevelTable {
  std::array<std::string, 256> byte_to_char;
  std::array<int16_t, 324> char_to_byte;  // code points of the table are all below 256 + 68
  ByteLevelTable() {
    char_to_byte.fill(-1);
    uint32_t next_extra = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      const uint32_t cp = printable ? static_cast<uint32_t>(b) : next_extra++;
      utf8_append(byte_to_char[b], cp);
      char_to_byte[cp] = static_cast<int16_t>(b);
    }
  }
};

const ByteLevelTable& byte_level_table() {
  static const ByteLevelTable table;
  return table;
}

}  // namespace

const std::string& byte_to_unicode(uint8_t byte) { return byte_level_table().byte_to_char[byte]; }

int unicode_to_byte(uint32_t code_point) {
  const auto& table = byte_level_table().char_to_byte;
  return code_point < table.size() ? table[code_point] : -1;
}

}  // namespace slime::tokenizer
