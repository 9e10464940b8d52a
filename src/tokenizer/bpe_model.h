// The BPE model of HF tokenizer.json ("model" with type BPE): vocab, ranked merges, unk / byte_fallback,
// continuing_subword_prefix / end_of_word_suffix, ignore_merges, and a cache of merged words.
// Merging follows HF's Word::merge_all: a min-heap of (rank, position) over a linked list of symbols, so a word of
// n characters costs O(n log n), not O(n^2) rescans.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/io.h"

namespace slime::tokenizer {

class BpeModel {
 public:
  // Reads the "model" object; `where` names it ("tokenizer.json: model"). Errors name the field and entry.
  static BpeModel from_json(const json& model, const std::string& where);

  // Appends the ids of one pre-tokenized piece (already byte-level mapped when the pipeline asks for it).
  void tokenize(std::string_view piece, std::vector<int32_t>& ids) const;

  std::optional<int32_t> token_to_id(std::string_view token) const;
  // The token string of `id`, or nullptr when the vocab has no such id.
  const std::string* id_to_token(int32_t id) const;
  size_t vocab_entries() const { return vocab_.size(); }  // HF's get_vocab_size: the number of entries
  int32_t max_id() const { return static_cast<int32_t>(id_to_token_.size()) - 1; }

  BpeModel() = default;
  BpeModel(BpeModel&& other) noexcept;
  BpeModel& operator=(BpeModel&& other) noexcept;

 private:
  struct MergeTarget {
    uint32_t rank;
    int32_t new_id;
  };
  static uint64_t pair_key(int32_t left, int32_t right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
  }
  void merge_word(std::string_view word, std::vector<int32_t>& ids) const;

  std::unordered_map<std::string, int32_t> vocab_;
  std::vector<std::string> id_to_token_;   // [max_id + 1]; empty string where the vocab has no id
  std::vector<uint8_t> id_present_;        // [max_id + 1]
  std::unordered_map<uint64_t, MergeTarget> merges_;
  std::optional<std::string> unk_token_;
  bool fuse_unk_ = false;
  bool byte_fallback_ = false;
  bool ignore_merges_ = false;
  std::string continuing_subword_prefix_;
  std::string end_of_word_suffix_;

  // Words already merged (HF caches up to 10,000 words shorter than 256 bytes and then stops inserting).
  static constexpr size_t kCacheCapacity = 50000;
  static constexpr size_t kCacheMaxWordBytes = 256;
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache_;
};

}  // namespace slime::tokenizer
