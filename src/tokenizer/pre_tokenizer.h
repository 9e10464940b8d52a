// Pre-tokenizers of HF tokenizer.json ("pre_tokenizer" field): Sequence, Split (regex or literal pattern, all five
// delimiter behaviors, invert), ByteLevel (add_prefix_space, use_regex with the GPT-2 regex, byte -> char
// mapping) and Digits. A pre-tokenizer turns one text segment into the pieces the BPE model sees.
#pragma once

#include <string>
#include <vector>

#include "core/io.h"
#include "tokenizer/pcre_regex.h"

namespace slime::tokenizer {

enum class SplitBehavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };

struct PreTokenizer {
  enum class Kind { Sequence, Split, ByteLevel, Digits };
  Kind kind = Kind::Sequence;
  PcreRegex pattern;                             // Split
  SplitBehavior behavior = SplitBehavior::Isolated;
  bool invert = false;
  bool add_prefix_space = false;                 // ByteLevel
  bool use_regex = true;
  bool individual_digits = false;                // Digits
  std::vector<PreTokenizer> children;            // Sequence
};

// `where` names the document and field, e.g. "tokenizer.json: pre_tokenizer".
PreTokenizer parse_pre_tokenizer(const json& config, const std::string& where);
// Replaces `pieces` by their pre-tokenized pieces, dropping empty ones (as HF's PreTokenizedString does).
void pre_tokenize(const PreTokenizer& pre_tokenizer, std::vector<std::string>& pieces);

}  // namespace slime::tokenizer
