// Pre-tokenizers (see pre_tokenizer.h). Each step follows HF tokenizers' NormalizedString::split: find the
// pattern's matches, label every span match / non-match, combine spans by the delimiter behavior, drop empties.
#include "tokenizer/pre_tokenizer.h"

#include <algorithm>
#include <functional>

#include "core/error.h"
#include "tokenizer/unicode_text.h"

namespace slime::tokenizer {

namespace {

// GPT-2's regex, applied by ByteLevel when use_regex is true.
const char* kGpt2Pattern = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

const PcreRegex& gpt2_regex() {
  static const PcreRegex regex(kGpt2Pattern, false, "ByteLevel pre-tokenizer");
  return regex;
}

struct Span {
  size_t begin, end;
  bool is_match;
};

// Covers the whole text with contiguous spans, each a match or the text between matches.
std::vector<Span> label_spans(const std::string& text, const std::vector<MatchSpan>& matches) {
  std::vector<Span> spans;
  size_t previous = 0;
  for (const MatchSpan& match : matches) {
    if (previous != match.begin) spans.push_back({previous, match.begin, false});
    spans.push_back({match.begin, match.end, true});
    previous = match.end;
  }
  if (previous != text.size()) spans.push_back({previous, text.size(), false});
  return spans;
}

// Each numeric character is its own match (HF's Fn(char) -> bool pattern).
std::vector<MatchSpan> numeric_matches(const std::string& text) {
  std::vector<MatchSpan> matches;
  for (size_t pos = 0; pos < text.size();) {
    uint32_t cp;
    const size_t length = utf8_decode(text, pos, cp);
    if (is_numeric_char(cp)) matches.push_back({pos, pos + length});
    pos += length;
  }
  return matches;
}

// Applies the delimiter behavior; returns the spans to keep (already in order).
std::vector<MatchSpan> combine(const std::vector<Span>& spans, SplitBehavior behavior) {
  std::vector<MatchSpan> kept;
  switch (behavior) {
    case SplitBehavior::Isolated:
      for (const Span& s : spans) kept.push_back({s.begin, s.end});
      break;
    case SplitBehavior::Removed:
      for (const Span& s : spans)
        if (!s.is_match) kept.push_back({s.begin, s.end});
      break;
    case SplitBehavior::Contiguous: {
      bool previous_match = false;
      for (const Span& s : spans) {
        if (s.is_match == previous_match && !kept.empty()) {
          kept.back().end = s.end;
        } else {
          kept.push_back({s.begin, s.end});
        }
        previous_match = s.is_match;
      }
      break;
    }
    case SplitBehavior::MergedWithPrevious: {
      bool previous_match = false;
      for (const Span& s : spans) {
        if (s.is_match && !previous_match && !kept.empty()) {
          kept.back().end = s.end;
        } else {
          kept.push_back({s.begin, s.end});
        }
        previous_match = s.is_match;
      }
      break;
    }
    case SplitBehavior::MergedWithNext: {
      bool previous_match = false;
      for (auto it = spans.rbegin(); it != spans.rend(); ++it) {
        if (it->is_match && !previous_match && !kept.empty()) {
          kept.back().begin = it->begin;
        } else {
          kept.push_back({it->begin, it->end});
        }
        previous_match = it->is_match;
      }
      std::reverse(kept.begin(), kept.end());
      break;
    }
  }
  return kept;
}

void split_pieces(std::vector<std::string>& pieces, SplitBehavior behavior, bool invert,
                  const std::function<std::vector<MatchSpan>(const std::string&)>& find) {
  std::vector<std::string> out;
  out.reserve(pieces.size() * 4);
  for (const std::string& piece : pieces) {
    std::vector<Span> spans = label_spans(piece, find(piece));
    if (invert)
      for (Span& s : spans) s.is_match = !s.is_match;
    for (const MatchSpan& kept : combine(spans, behavior))
      if (kept.end > kept.begin) out.emplace_back(piece, kept.begin, kept.end - kept.begin);
  }
  pieces = std::move(out);
}

std::string to_byte_level(const std::string& piece) {
  std::string out;
  out.reserve(piece.size() * 2);
  for (char c : piece) out += byte_to_unicode(static_cast<uint8_t>(c));
  return out;
}

SplitBehavior parse_behavior(const std::string& name, const std::string& where) {
  if (name == "Removed") return SplitBehavior::Removed;
  if (name == "Isolated") return SplitBehavior::Isolated;
  if (name == "MergedWithPrevious") return SplitBehavior::MergedWithPrevious;
  if (name == "MergedWithNext") return SplitBehavior::MergedWithNext;
  if (name == "Contiguous") return SplitBehavior::Contiguous;
  SLIME_FAIL(where, ": field 'behavior': unknown value '", name,
             "' (expected Removed, Isolated, MergedWithPrevious, MergedWithNext or Contiguous)");
}

}  // namespace

PreTokenizer parse_pre_tokenizer(const json& config, const std::string& where) {
  SLIME_CHECK(config.is_object(), where, ": expected an object, got ", config.type_name());
  const std::string type = json_string(config, "type", where);
  PreTokenizer pre;
  if (type == "Sequence") {
    pre.kind = PreTokenizer::Kind::Sequence;
    SLIME_CHECK(json_has(config, "pretokenizers") && config["pretokenizers"].is_array(), where,
                ": field 'pretokenizers': expected an array");
    const json& children = config["pretokenizers"];
    for (size_t i = 0; i < children.size(); ++i)
      pre.children.push_back(parse_pre_tokenizer(children[i], cat(where, ".pretokenizers[", i, "]")));
  } else if (type == "Split") {
    pre.kind = PreTokenizer::Kind::Split;
    SLIME_CHECK(json_has(config, "pattern") && config["pattern"].is_object(), where,
                ": field 'pattern': expected {\"String\": ...} or {\"Regex\": ...}");
    const json& pattern = config["pattern"];
    if (json_has(pattern, "String")) {
      pre.pattern = PcreRegex(json_string(pattern, "String", where + ".pattern"), true, where + ".pattern");
    } else {
      pre.pattern = PcreRegex(json_string(pattern, "Regex", where + ".pattern"), false, where + ".pattern");
    }
    pre.behavior = parse_behavior(json_string(config, "behavior", where), where);
    pre.invert = json_bool_or(config, "invert", false, where);
  } else if (type == "ByteLevel") {
    pre.kind = PreTokenizer::Kind::ByteLevel;
    pre.add_prefix_space = json_bool_or(config, "add_prefix_space", true, where);
    pre.use_regex = json_bool_or(config, "use_regex", true, where);
    if (pre.use_regex) gpt2_regex();  // compile now, not on the first encode
  } else if (type == "Digits") {
    pre.kind = PreTokenizer::Kind::Digits;
    pre.individual_digits = json_bool_or(config, "individual_digits", false, where);
  } else {
    SLIME_FAIL(where, ": unsupported pre_tokenizer type '", type,
               "' (supported: Sequence, Split, ByteLevel, Digits)");
  }
  return pre;
}

void pre_tokenize(const PreTokenizer& pre, std::vector<std::string>& pieces) {
  switch (pre.kind) {
    case PreTokenizer::Kind::Sequence:
      for (const PreTokenizer& child : pre.children) pre_tokenize(child, pieces);
      break;
    case PreTokenizer::Kind::Split:
      split_pieces(pieces, pre.behavior, pre.invert,
                   [&](const std::string& piece) { return pre.pattern.find_all(piece); });
      break;
    case PreTokenizer::Kind::Digits:
      split_pieces(pieces, pre.individual_digits ? SplitBehavior::Isolated : SplitBehavior::Contiguous, false,
                   numeric_matches);
      break;
    case PreTokenizer::Kind::ByteLevel:
      // HF prepends the space to every piece that reaches this step, not only the first one.
      if (pre.add_prefix_space)
        for (std::string& piece : pieces)
          if (piece.empty() || piece[0] != ' ') piece.insert(0, " ");
      if (pre.use_regex)
        split_pieces(pieces, SplitBehavior::Isolated, false,
                     [](const std::string& piece) { return gpt2_regex().find_all(piece); });
      for (std::string& piece : pieces) piece = to_byte_level(piece);
      break;
  }
}

}  // namespace slime::tokenizer
