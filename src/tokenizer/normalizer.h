// Normalizers of HF tokenizer.json ("normalizer" field): NFC, NFD, NFKC, NFKD (libutf8proc), Lowercase, Prepend,
// Replace (literal or regex), Strip and Sequence. Any other type is an error naming the document and the type.
#pragma once

#include <string>
#include <vector>

#include "core/io.h"
#include "tokenizer/pcre_regex.h"

namespace slime::tokenizer {

struct Normalizer {
  enum class Kind { NFC, NFD, NFKC, NFKD, Lowercase, Prepend, Replace, Strip, Sequence };
  Kind kind = Kind::Sequence;
  std::string text;            // Prepend: the prefix; Replace: the replacement
  PcreRegex pattern;           // Replace: what to replace
  bool strip_left = false;     // Strip
  bool strip_right = false;
  std::vector<Normalizer> children;  // Sequence
};

// `where` names the document and field, e.g. "tokenizer.json: normalizer".
Normalizer parse_normalizer(const json& config, const std::string& where);
// Applies the normalizer in place; `text` must be valid UTF-8 and stays so.
void normalize(const Normalizer& normalizer, std::string& text);

}  // namespace slime::tokenizer
