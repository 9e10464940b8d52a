// BPE model (see bpe_model.h). Semantics follow HF tokenizers' models/bpe (model.rs, word.rs): characters missing
// from the vocab become byte-fallback tokens <0xNN>, else the unk token (fused when fuse_unk), else they are dropped
// exactly as HF drops them; a merge entry whose pair no longer matches its position is skipped as stale.
#include "tokenizer/bpe_model.h"

#include <cstdio>
#include <queue>

#include "core/error.h"
#include "tokenizer/unicode_text.h"

namespace slime::tokenizer {

BpeModel::BpeModel(BpeModel&& other) noexcept { *this = std::move(other); }

BpeModel& BpeModel::operator=(BpeModel&& other) noexcept {
  vocab_ = std::move(other.vocab_);
  id_to_token_ = std::move(other.id_to_token_);
  id_present_ = std::move(other.id_present_);
  merges_ = std::move(other.merges_);
  unk_token_ = std::move(other.unk_token_);
  fuse_unk_ = other.fuse_unk_;
  byte_fallback_ = other.byte_fallback_;
  ignore_merges_ = other.ignore_merges_;
  continuing_subword_prefix_ = std::move(other.continuing_subword_prefix_);
  end_of_word_suffix_ = std::move(other.end_of_word_suffix_);
  cache_.clear();
  return *this;
}

namespace {

std::string optional_string(const json& object, const char* key, const std::string& where) {
  if (!json_has(object, key) || object[key].is_null()) return "";
  return json_string(object, key, where);
}

}  // namespace

BpeModel BpeModel::from_json(const json& model, const std::string& where) {
  SLIME_CHECK(model.is_object(), where, ": expected an object, got ", model.type_name());
  if (json_has(model, "type")) {
    const std::string type = json_string(model, "type", where);
    SLIME_CHECK(type == "BPE", where, ": unsupported model type '", type, "' (slime-hpc supports BPE only)");
  }
  SLIME_CHECK(json_has(model, "vocab") && model["vocab"].is_object(), where, ": field 'vocab': expected an object");
  SLIME_CHECK(json_has(model, "merges") && model["merges"].is_array(), where, ": field 'merges': expected an array");
  if (json_has(model, "dropout") && !model["dropout"].is_null()) {
    const double dropout = json_number(model, "dropout", where);
    SLIME_CHECK(dropout == 0.0, where, ": field 'dropout': ", dropout,
                " is not supported (BPE dropout is random; slime-hpc tokenizes deterministically)");
  }

  BpeModel bpe;
  const json& vocab = model["vocab"];
  bpe.vocab_.reserve(vocab.size());
  int32_t max_id = -1;
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    SLIME_CHECK(it.value().is_number_integer(), where, ".vocab['", it.key(), "']: expected an integer id, got ",
                it.value().type_name());
    const int64_t id = it.value().get<int64_t>();
    SLIME_CHECK(id >= 0 && id < (int64_t{1} << 31), where, ".vocab['", it.key(), "']: id ", id, " out of range");
    bpe.vocab_.emplace(it.key(), static_cast<int32_t>(id));
    max_id = std::max(max_id, static_cast<int32_t>(id));
  }
  bpe.id_to_token_.resize(static_cast<size_t>(max_id + 1));
  bpe.id_present_.assign(static_cast<size_t>(max_id + 1), 0);
  for (const auto& [token, id] : bpe.vocab_) {
    bpe.id_to_token_[id] = token;
    bpe.id_present_[id] = 1;
  }

  if (json_has(model, "unk_token") && !model["unk_token"].is_null())
    bpe.unk_token_ = json_string(model, "unk_token", where);
  bpe.fuse_unk_ = json_bool_or(model, "fuse_unk", false, where);
  bpe.byte_fallback_ = json_bool_or(model, "byte_fallback", false, where);
  bpe.ignore_merges_ = json_bool_or(model, "ignore_merges", false, where);
  bpe.continuing_subword_prefix_ = optional_string(model, "continuing_subword_prefix", where);
  bpe.end_of_word_suffix_ = optional_string(model, "end_of_word_suffix", where);

  const json& merges = model["merges"];
  bpe.merges_.reserve(merges.size());
  const size_t prefix_length = bpe.continuing_subword_prefix_.size();
  std::string left, right;
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const json& merge = merges[rank];
    if (merge.is_string()) {  // legacy "a b"
      const std::string& line = merge.get_ref<const std::string&>();
      const size_t space = line.find(' ');
      SLIME_CHECK(space != std::string::npos && line.find(' ', space + 1) == std::string::npos, where,
                  ".merges[", rank, "]: expected two tokens separated by one space, got '", line, "'");
      left.assign(line, 0, space);
      right.assign(line, space + 1, std::string::npos);
    } else {
      SLIME_CHECK(merge.is_array() && merge.size() == 2 && merge[0].is_string() && merge[1].is_string(), where,
                  ".merges[", rank, "]: expected \"a b\" or [\"a\", \"b\"], got ", merge.dump());
      left = merge[0].get<std::string>();
      right = merge[1].get<std::string>();
    }
    const auto left_id = bpe.vocab_.find(left);
    SLIME_CHECK(left_id != bpe.vocab_.end(), where, ".merges[", rank, "]: token '", left, "' is not in the vocab");
    const auto right_id = bpe.vocab_.find(right);
    SLIME_CHECK(right_id != bpe.vocab_.end(), where, ".merges[", rank, "]: token '", right, "' is not in the vocab");
    SLIME_CHECK(right.size() >= prefix_length, where, ".merges[", rank, "]: token '", right,
                "' is shorter than continuing_subword_prefix '", bpe.continuing_subword_prefix_, "'");
    const std::string merged = left + right.substr(prefix_length);
    const auto merged_id = bpe.vocab_.find(merged);
    SLIME_CHECK(merged_id != bpe.vocab_.end(), where, ".merges[", rank, "]: merged token '", merged,
                "' is not in the vocab");
    // A repeated pair keeps its last rank, as HF's map collection does.
    bpe.merges_[pair_key(left_id->second, right_id->second)] = {static_cast<uint32_t>(rank), merged_id->second};
  }
  if (bpe.unk_token_)
    SLIME_CHECK(bpe.vocab_.count(*bpe.unk_token_), where, ": field 'unk_token': '", *bpe.unk_token_,
                "' is not in the vocab");
  return bpe;
}

std::optional<int32_t> BpeModel::token_to_id(std::string_view token) const {
  const auto it = vocab_.find(std::string(token));
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

const std::string* BpeModel::id_to_token(int32_t id) const {
  if (id < 0 || id >= static_cast<int32_t>(id_present_.size()) || !id_present_[id]) return nullptr;
  return &id_to_token_[id];
}

void BpeModel::tokenize(std::string_view piece, std::vector<int32_t>& ids) const {
  if (piece.empty()) return;
  if (ignore_merges_) {
    const auto it = vocab_.find(std::string(piece));
    if (it != vocab_.end()) {
      ids.push_back(it->second);
      return;
    }
  }
  const bool cacheable = piece.size() < kCacheMaxWordBytes;
  std::string key;
  if (cacheable) {
    key.assign(piece);
    std::lock_guard<std::mutex> lock(cache_mutex_);
    const auto hit = cache_.find(key);
    if (hit != cache_.end()) {
      ids.insert(ids.end(), hit->second.begin(), hit->second.end());
      return;
    }
  }
  const size_t first = ids.size();
  merge_word(piece, ids);
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    if (cache_.size() < kCacheCapacity)
      cache_.emplace(std::move(key), std::vector<int32_t>(ids.begin() + first, ids.end()));
  }
}

void BpeModel::merge_word(std::string_view word, std::vector<int32_t>& ids) const {
  struct Symbol {
    int32_t id;
    int32_t prev;   // index of the previous live symbol, -1 at the start
    int32_t next;   // index of the next live symbol, -1 at the end
    bool alive;
  };
  std::vector<Symbol> symbols;
  symbols.reserve(word.size());
  const auto add = [&](int32_t id) {
    const int32_t index = static_cast<int32_t>(symbols.size());
    if (index > 0) symbols.back().next = index;
    symbols.push_back({id, index - 1, -1, true});
  };

  int32_t pending_unk = -1;  // an unk symbol not yet added (fuse_unk merges consecutive ones); -1 when none
  std::string lookup;
  for (size_t pos = 0; pos < word.size();) {
    uint32_t cp;
    const size_t length = utf8_decode(word, pos, cp);
    const bool is_first = pos == 0, is_last = pos + length == word.size();
    lookup.clear();
    if (!is_first) lookup += continuing_subword_prefix_;
    lookup.append(word.data() + pos, length);
    if (is_last) lookup += end_of_word_suffix_;
    pos += length;

    const auto found = vocab_.find(lookup);
    if (found != vocab_.end()) {
      if (pending_unk >= 0) add(pending_unk);
      pending_unk = -1;
      add(found->second);
      continue;
    }
    if (byte_fallback_) {
      std::vector<int32_t> byte_ids;
      for (char c : lookup) {
        char name[8];
        std::snprintf(name, sizeof(name), "<0x%02X>", static_cast<unsigned>(static_cast<uint8_t>(c)));
        const auto byte_token = vocab_.find(name);
        if (byte_token == vocab_.end()) break;
        byte_ids.push_back(byte_token->second);
      }
      if (byte_ids.size() == lookup.size()) {
        // HF adds byte-fallback tokens without flushing a pending unk first; keep its order.
        for (int32_t id : byte_ids) add(id);
        continue;
      }
    }
    if (unk_token_) {
      const int32_t unk_id = vocab_.at(*unk_token_);
      if (pending_unk >= 0 && !fuse_unk_) add(pending_unk);
      pending_unk = unk_id;
    }
  }
  if (pending_unk >= 0) add(pending_unk);

  struct Candidate {
    uint32_t rank;
    int32_t position;
    int32_t new_id;
    bool operator>(const Candidate& other) const {
      return rank != other.rank ? rank > other.rank : position > other.position;
    }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> queue;
  const auto push_pair = [&](int32_t position) {
    const int32_t next = symbols[position].next;
    if (next < 0) return;
    const auto merge = merges_.find(pair_key(symbols[position].id, symbols[next].id));
    if (merge != merges_.end()) queue.push({merge->second.rank, position, merge->second.new_id});
  };
  for (int32_t i = 0; i + 1 < static_cast<int32_t>(symbols.size()); ++i) push_pair(i);

  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    Symbol& left = symbols[top.position];
    if (!left.alive || left.next < 0) continue;
    const int32_t right_index = left.next;
    const auto merge = merges_.find(pair_key(left.id, symbols[right_index].id));
    if (merge == merges_.end() || merge->second.new_id != top.new_id) continue;  // stale entry
    left.id = top.new_id;
    left.next = symbols[right_index].next;
    symbols[right_index].alive = false;
    if (left.next >= 0) symbols[left.next].prev = top.position;
    if (left.prev >= 0) push_pair(left.prev);
    push_pair(top.position);
  }
  for (const Symbol& symbol : symbols)
    if (symbol.alive) ids.push_back(symbol.id);
}

}  // namespace slime::tokenizer
