// A compiled PCRE2 regex (UTF + UCP, JIT when available) with the matching semantics HF tokenizers gets from
// Oniguruma: non-overlapping matches left to right, an empty match right after the previous match skipped.
// Patterns are rewritten so that \s and \S mean Unicode White_Space like Oniguruma's (PCRE2's \s also matches
// U+180E). Immutable after construction and safe to share between threads.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace slime::tokenizer {

struct MatchSpan {
  size_t begin = 0;  // byte offsets into the searched text
  size_t end = 0;
};

class PcreRegex {
 public:
  PcreRegex() = default;
  // `literal` matches the pattern as plain text. Errors name `where` and the pattern.
  PcreRegex(const std::string& pattern, bool literal, const std::string& where);

  // All matches in `text`, which must be valid UTF-8 (not re-checked here).
  std::vector<MatchSpan> find_all(std::string_view text) const;
  const std::string& pattern() const { return pattern_; }
  bool valid() const { return code_ != nullptr; }

 private:
  struct Compiled;
  std::string pattern_;
  std::shared_ptr<const Compiled> code_;
};

// Rewrites \s and \S (outside \Q...\E) to \p{White_Space} and \P{White_Space}.
std::string rewrite_whitespace_classes(const std::string& pattern);

}  // namespace slime::tokenizer
