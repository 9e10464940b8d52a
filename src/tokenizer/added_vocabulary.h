// Added tokens of HF tokenizer.json ("added_tokens"): the first stage of encode. The input is split on added-token
// occurrences (leftmost-longest, like HF's AddedVocabulary with its Aho-Corasick automaton): tokens with
// normalized=false are matched in the raw text, the rest is normalized, then tokens with normalized=true are matched
// in the normalized text. lstrip / rstrip widen a match over adjacent whitespace; single_word rejects matches
// glued to word characters.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace slime::tokenizer {

struct AddedToken {
  int32_t id = -1;
  std::string content;
  bool special = false;
  bool lstrip = false;
  bool rstrip = false;
  bool single_word = false;
  bool normalized = true;
};

// A piece of the input after the added-token split: an added token (added_id >= 0) or text for the model.
struct Segment {
  std::string text;
  int32_t added_id = -1;
};

// Byte trie over token contents; finds the leftmost, then longest, occurrence.
class TokenTrie {
 public:
  TokenTrie() { root_child_.fill(-1); }
  void insert(std::string_view content, int32_t token_index);
  bool empty() const { return nodes_.size() <= 1; }
  // First match starting at or after `from`: sets begin/end and returns the token index, or -1.
  int32_t find(std::string_view text, size_t from, size_t& begin, size_t& end) const;

 private:
  struct Node {
    int32_t token_index = -1;
    std::vector<std::pair<uint8_t, int32_t>> children;
  };
  std::vector<Node> nodes_{Node{}};
  std::array<int32_t, 256> root_child_;  // the root's children by byte: every input byte is looked up there
};

class AddedVocabulary {
 public:
  // `normalized_contents[i]` is tokens[i].content after the normalizer (used for normalized=true tokens).
  AddedVocabulary(std::vector<AddedToken> tokens, const std::vector<std::string>& normalized_contents);
  AddedVocabulary() = default;

  // Splits `text` (valid UTF-8) into segments; `normalize` is applied to every non-token piece of the raw text.
  std::vector<Segment> split(const std::string& text, const std::function<void(std::string&)>& normalize) const;
  const std::vector<AddedToken>& tokens() const { return tokens_; }

 private:
  void split_with(const TokenTrie& trie, const std::string& text, std::vector<Segment>& out) const;

  std::vector<AddedToken> tokens_;
  TokenTrie raw_trie_;         // normalized=false tokens, matched before normalization
  TokenTrie normalized_trie_;  // normalized=true tokens, matched in normalized text
};

}  // namespace slime::tokenizer
