// Normalizers (see normalizer.h). Unicode normalization forms go through utf8proc_map with an explicit length,
// so embedded NUL characters survive; pure ASCII is invariant under all four forms and skips the call.
#include "tokenizer/normalizer.h"

#include <utf8proc.h>

#include <cstdlib>

#include "core/error.h"
#include "tokenizer/unicode_text.h"

namespace slime::tokenizer {

namespace {

// Callers skip pure ASCII, which every normalization form leaves unchanged.
std::string unicode_normalize(const std::string& text, int options) {
  utf8proc_uint8_t* result = nullptr;
  const utf8proc_ssize_t length =
      utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data()), static_cast<utf8proc_ssize_t>(text.size()),
                   &result, static_cast<utf8proc_option_t>(options | UTF8PROC_STABLE));
  SLIME_CHECK(length >= 0, "unicode normalization failed: ", utf8proc_errmsg(length));
  std::string out(reinterpret_cast<const char*>(result), static_cast<size_t>(length));
  std::free(result);
  return out;
}

// Rust's char::to_lowercase, code point by code point (no final-sigma context, as in HF's NormalizedString).
std::string lowercase(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (size_t pos = 0; pos < text.size();) {
    uint32_t cp;
    pos += utf8_decode(text, pos, cp);
    if (cp < 0x80) {
      out += static_cast<char>(cp >= 'A' && cp <= 'Z' ? cp + 32 : cp);
    } else if (cp == 0x130) {  // the one unconditional multi-character lowercase mapping
      out += "i\xCC\x87";
    } else {
      utf8_append(out, static_cast<uint32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(cp))));
    }
  }
  return out;
}

std::string strip(const std::string& text, bool left, bool right) {
  size_t begin = 0, end = text.size();
  if (left) {
    while (begin < end) {
      uint32_t cp;
      const size_t length = utf8_decode(text, begin, cp);
      if (!is_white_space(cp)) break;
      begin += length;
    }
  }
  if (right) {
    while (end > begin) {
      size_t start = end - 1;
      while (start > begin && (static_cast<uint8_t>(text[start]) & 0xC0) == 0x80) --start;
      uint32_t cp;
      utf8_decode(text, start, cp);
      if (!is_white_space(cp)) break;
      end = start;
    }
  }
  return text.substr(begin, end - begin);
}

std::string replace_all(const std::string& text, const PcreRegex& pattern, const std::string& content) {
  const auto matches = pattern.find_all(text);
  if (matches.empty()) return text;
  std::string out;
  size_t previous = 0;
  for (const MatchSpan& match : matches) {
    out.append(text, previous, match.begin - previous);
    out += content;
    previous = match.end;
  }
  out.append(text, previous, std::string::npos);
  return out;
}

}  // namespace

Normalizer parse_normalizer(const json& config, const std::string& where) {
  SLIME_CHECK(config.is_object(), where, ": expected an object, got ", config.type_name());
  const std::string type = json_string(config, "type", where);
  Normalizer normalizer;
  if (type == "NFC") {
    normalizer.kind = Normalizer::Kind::NFC;
  } else if (type == "NFD") {
    normalizer.kind = Normalizer::Kind::NFD;
  } else if (type == "NFKC") {
    normalizer.kind = Normalizer::Kind::NFKC;
  } else if (type == "NFKD") {
    normalizer.kind = Normalizer::Kind::NFKD;
  } else if (type == "Lowercase") {
    normalizer.kind = Normalizer::Kind::Lowercase;
  } else if (type == "Prepend") {
    normalizer.kind = Normalizer::Kind::Prepend;
    normalizer.text = json_string(config, "prepend", where);
  } else if (type == "Strip") {
    normalizer.kind = Normalizer::Kind::Strip;
    normalizer.strip_left = json_bool_or(config, "strip_left", true, where);
    normalizer.strip_right = json_bool_or(config, "strip_right", true, where);
  } else if (type == "Replace") {
    normalizer.kind = Normalizer::Kind::Replace;
    normalizer.text = json_string(config, "content", where);
    SLIME_CHECK(json_has(config, "pattern") && config["pattern"].is_object(), where,
                ": field 'pattern': expected {\"String\": ...} or {\"Regex\": ...}");
    const json& pattern = config["pattern"];
    if (json_has(pattern, "String")) {
      normalizer.pattern = PcreRegex(json_string(pattern, "String", where + ".pattern"), true, where + ".pattern");
    } else {
      normalizer.pattern = PcreRegex(json_string(pattern, "Regex", where + ".pattern"), false, where + ".pattern");
    }
  } else if (type == "Sequence") {
    normalizer.kind = Normalizer::Kind::Sequence;
    SLIME_CHECK(json_has(config, "normalizers") && config["normalizers"].is_array(), where,
                ": field 'normalizers': expected an array");
    const json& children = config["normalizers"];
    for (size_t i = 0; i < children.size(); ++i)
      normalizer.children.push_back(parse_normalizer(children[i], cat(where, ".normalizers[", i, "]")));
  } else {
    SLIME_FAIL(where, ": unsupported normalizer type '", type,
               "' (supported: NFC, NFD, NFKC, NFKD, Lowercase, Prepend, Replace, Strip, Sequence)");
  }
  return normalizer;
}

void normalize(const Normalizer& normalizer, std::string& text) {
  switch (normalizer.kind) {
    case Normalizer::Kind::NFC:
      if (!is_ascii(text)) text = unicode_normalize(text, UTF8PROC_COMPOSE);
      break;
    case Normalizer::Kind::NFD:
      if (!is_ascii(text)) text = unicode_normalize(text, UTF8PROC_DECOMPOSE);
      break;
    case Normalizer::Kind::NFKC:
      if (!is_ascii(text)) text = unicode_normalize(text, UTF8PROC_COMPOSE | UTF8PROC_COMPAT);
      break;
    case Normalizer::Kind::NFKD:
      if (!is_ascii(text)) text = unicode_normalize(text, UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT);
      break;
    case Normalizer::Kind::Lowercase: text = lowercase(text); break;
    case Normalizer::Kind::Prepend:
      if (!text.empty()) text.insert(0, normalizer.text);
      break;
    case Normalizer::Kind::Replace: text = replace_all(text, normalizer.pattern, normalizer.text); break;
    case Normalizer::Kind::Strip: text = strip(text, normalizer.strip_left, normalizer.strip_right); break;
    case Normalizer::Kind::Sequence:
      for (const Normalizer& child : normalizer.children) normalize(child, text);
      break;
  }
}

}  // namespace slime::tokenizer
