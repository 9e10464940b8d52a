// PCRE2 wrapper (see pcre_regex.h). Matching uses PCRE2_NO_UTF_CHECK: callers validate UTF-8 once per encode,
// and without the flag PCRE2 would re-scan the whole subject on every call (quadratic on long texts).
#define PCRE2_CODE_UNIT_WIDTH 8
#include "tokenizer/pcre_regex.h"

#include <pcre2.h>

#include "core/error.h"
#include "tokenizer/unicode_text.h"

namespace slime::tokenizer {

namespace {

std::string pcre2_message(int error_code) {
  PCRE2_UCHAR buffer[256];
  pcre2_get_error_message(error_code, buffer, sizeof(buffer));
  return reinterpret_cast<const char*>(buffer);
}

// One JIT stack per thread, grown on demand: a long run of spaces under `\s+(?!\S)` needs more than the default.
pcre2_jit_stack* thread_jit_stack(void*) {
  struct Holder {
    pcre2_jit_stack* stack = pcre2_jit_stack_create(32 * 1024, 64 * 1024 * 1024, nullptr);
    ~Holder() { pcre2_jit_stack_free(stack); }
  };
  thread_local Holder holder;
  return holder.stack;
}

}  // namespace

struct PcreRegex::Compiled {
  pcre2_code* code = nullptr;
  pcre2_match_context* match_context = nullptr;
  bool jit = false;
  ~Compiled() {
    pcre2_match_context_free(match_context);
    pcre2_code_free(code);
  }
};

std::string rewrite_whitespace_classes(const std::string& pattern) {
  std::string out;
  out.reserve(pattern.size() + 32);
  bool quoted = false;  // inside \Q...\E everything is literal
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c != '\\' || i + 1 == pattern.size()) {
      out += c;
      continue;
    }
    const char next = pattern[i + 1];
    if (quoted) {
      if (next == 'E') quoted = false;
      out += c;
      out += next;
    } else if (next == 's') {
      out += "\\p{White_Space}";
    } else if (next == 'S') {
      out += "\\P{White_Space}";
    } else {
      if (next == 'Q') quoted = true;
      out += c;
      out += next;
    }
    ++i;
  }
  return out;
}

PcreRegex::PcreRegex(const std::string& pattern, bool literal, const std::string& where) : pattern_(pattern) {
  const std::string source = literal ? pattern : rewrite_whitespace_classes(pattern);
  uint32_t options = PCRE2_UTF | PCRE2_UCP;
  if (literal) options = PCRE2_UTF | PCRE2_LITERAL;
  SLIME_CHECK(utf8_first_invalid(source) == std::string::npos, where, ": pattern is not valid UTF-8");
  int error_code = 0;
  PCRE2_SIZE error_offset = 0;
  auto compiled = std::make_shared<Compiled>();
  compiled->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(source.data()), source.size(), options, &error_code,
                                 &error_offset, nullptr);
  SLIME_CHECK(compiled->code != nullptr, where, ": cannot compile regex '", pattern, "': ",
              pcre2_message(error_code), " (at offset ", error_offset, " of '", source, "')");
  uint32_t have_jit = 0;
  pcre2_config(PCRE2_CONFIG_JIT, &have_jit);
  compiled->jit = have_jit && pcre2_jit_compile(compiled->code, PCRE2_JIT_COMPLETE) == 0;
  compiled->match_context = pcre2_match_context_create(nullptr);
  SLIME_ASSERT(compiled->match_context != nullptr, "pcre2_match_context_create failed");
  if (compiled->jit) pcre2_jit_stack_assign(compiled->match_context, thread_jit_stack, nullptr);
  code_ = std::move(compiled);
}

std::vector<MatchSpan> PcreRegex::find_all(std::string_view text) const {
  SLIME_ASSERT(code_ != nullptr, "find_all on an empty PcreRegex");
  std::vector<MatchSpan> matches;
  std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)> match_data(
      pcre2_match_data_create_from_pattern(code_->code, nullptr), &pcre2_match_data_free);
  const auto subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t search_from = 0;
  bool have_previous = false;
  size_t previous_end = 0;
  while (search_from <= text.size()) {
    const int rc = pcre2_match(code_->code, subject, text.size(), search_from, PCRE2_NO_UTF_CHECK,
                               match_data.get(), code_->match_context);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    SLIME_CHECK(rc >= 0, "regex '", pattern_, "' failed on a text of ", text.size(), " bytes: ", pcre2_message(rc));
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(match_data.get());
    const size_t begin = ovector[0], end = ovector[1];
    if (begin == end && have_previous && search_from == previous_end) {
      // Oniguruma's find_iter: no empty match right where the previous one ended; step one character.
      if (search_from == text.size()) break;
      uint32_t code_point;
      search_from += utf8_decode(text, search_from, code_point);
      continue;
    }
    matches.push_back({begin, end});
    have_previous = true;
    previous_end = end;
    search_from = end;
    if (begin == end && end == text.size()) break;
  }
  return matches;
}

}  // namespace slime::tokenizer
