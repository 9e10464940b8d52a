// Added-token split (see added_vocabulary.h); follows HF tokenizers' added_vocabulary.rs find_matches.
#include "tokenizer/added_vocabulary.h"

#include <algorithm>

#include "tokenizer/unicode_text.h"

namespace slime::tokenizer {

namespace {

// Start of the code point that ends just before byte `end` (text valid UTF-8, end > 0).
size_t previous_char_start(std::string_view text, size_t end) {
  size_t start = end - 1;
  while (start > 0 && (static_cast<uint8_t>(text[start]) & 0xC0) == 0x80) --start;
  return start;
}

uint32_t code_point_before(std::string_view text, size_t end) {
  uint32_t cp;
  utf8_decode(text, previous_char_start(text, end), cp);
  return cp;
}

}  // namespace

void TokenTrie::insert(std::string_view content, int32_t token_index) {
  int32_t node = 0;
  for (char c : content) {
    const uint8_t byte = static_cast<uint8_t>(c);
    auto& children = nodes_[node].children;
    auto it = std::find_if(children.begin(), children.end(), [&](const auto& child) { return child.first == byte; });
    if (it == children.end()) {
      const int32_t created = static_cast<int32_t>(nodes_.size());
      nodes_[node].children.emplace_back(byte, created);
      if (node == 0) root_child_[byte] = created;
      nodes_.emplace_back();
      node = created;
    } else {
      node = it->second;
    }
  }
  nodes_[node].token_index = token_index;
}

int32_t TokenTrie::find(std::string_view text, size_t from, size_t& begin, size_t& end) const {
  if (empty()) return -1;
  for (size_t start = from; start < text.size(); ++start) {
    int32_t node = root_child_[static_cast<uint8_t>(text[start])];
    int32_t best = -1;
    size_t pos = start + 1;
    while (node >= 0) {
      if (nodes_[node].token_index >= 0) {
        best = nodes_[node].token_index;
        end = pos;
      }
      if (pos == text.size()) break;
      const uint8_t byte = static_cast<uint8_t>(text[pos]);
      int32_t next = -1;
      for (const auto& [child_byte, child] : nodes_[node].children)
        if (child_byte == byte) next = child;
      node = next;
      ++pos;
    }
    if (best >= 0) {
      begin = start;
      return best;
    }
  }
  return -1;
}

AddedVocabulary::AddedVocabulary(std::vector<AddedToken> tokens, const std::vector<std::string>& normalized_contents)
    : tokens_(std::move(tokens)) {
  for (size_t i = 0; i < tokens_.size(); ++i) {
    if (tokens_[i].content.empty()) continue;
    if (tokens_[i].normalized) {
      normalized_trie_.insert(normalized_contents[i], static_cast<int32_t>(i));
    } else {
      raw_trie_.insert(tokens_[i].content, static_cast<int32_t>(i));
    }
  }
}

void AddedVocabulary::split_with(const TokenTrie& trie, const std::string& text, std::vector<Segment>& out) const {
  size_t piece_start = 0;  // start of the text not yet emitted
  size_t search_from = 0;  // the automaton resumes after the raw end of its previous match
  size_t begin = 0, end = 0;
  int32_t index;
  while ((index = trie.find(text, search_from, begin, end)) >= 0) {
    search_from = end;
    const AddedToken& token = tokens_[index];
    size_t start = begin, stop = end;
    if (token.single_word) {
      const bool space_before = start == 0 || !is_word_char(code_point_before(text, start));
      uint32_t next_cp = 0;
      const bool space_after = stop == text.size() || (utf8_decode(text, stop, next_cp), !is_word_char(next_cp));
      if (!space_before || !space_after) continue;
    }
    if (token.lstrip) {
      size_t new_start = start;
      while (new_start > 0 && is_white_space(code_point_before(text, new_start)))
        new_start = previous_char_start(text, new_start);
      start = std::max(new_start, piece_start);
    }
    if (token.rstrip) {
      while (stop < text.size()) {
        uint32_t cp;
        const size_t length = utf8_decode(text, stop, cp);
        if (!is_white_space(cp)) break;
        stop += length;
      }
    }
    if (piece_start < start) out.push_back({text.substr(piece_start, start - piece_start), -1});
    out.push_back({text.substr(start, stop - start), token.id});
    piece_start = stop;
  }
  if (piece_start < text.size()) out.push_back({text.substr(piece_start), -1});
}

std::vector<Segment> AddedVocabulary::split(const std::string& text,
                                            const std::function<void(std::string&)>& normalize) const {
  std::vector<Segment> raw_split;
  split_with(raw_trie_, text, raw_split);
  std::vector<Segment> result;
  result.reserve(raw_split.size());
  for (Segment& segment : raw_split) {
    if (segment.added_id >= 0) {
      result.push_back(std::move(segment));
      continue;
    }
    normalize(segment.text);
    if (segment.text.empty()) continue;
    if (normalized_trie_.empty()) {
      result.push_back(std::move(segment));
    } else {
      split_with(normalized_trie_, segment.text, result);
    }
  }
  return result;
}

}  // namespace slime::tokenizer
