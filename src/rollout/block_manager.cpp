#include "rollout/block_manager.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"

namespace slime::rollout {

BlockManager::BlockManager(int64_t num_blocks, int64_t block_size, bool prefix_caching)
    : block_size_(block_size), prefix_caching_(prefix_caching) {
  SLIME_CHECK(num_blocks > 0 && block_size > 0, "KV cache: ", num_blocks, " blocks of ", block_size,
              " tokens is not a cache");
  blocks_.resize(num_blocks);
  is_free_.assign(num_blocks, 1);
  for (int32_t i = 0; i < num_blocks; ++i) free_.push_back(i);
}

uint64_t BlockManager::chain_hash(uint64_t previous, const int64_t* tokens, int64_t count) {
  uint64_t h = previous ^ 0x9E3779B97F4A7C15ull;
  for (int64_t i = 0; i < count; ++i) {
    h ^= static_cast<uint64_t>(tokens[i]) + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
    h *= 0xBF58476D1CE4E5B9ull;
  }
  return h == 0 ? 1 : h;  // 0 means "no hash"
}

int64_t BlockManager::reusable_blocks(const Sequence& seq) const {
  if (!prefix_caching_) return 0;
  // Full blocks that end strictly before the last token: the last token's logits must be computed.
  return (seq.num_tokens() - 1) / block_size_;
}

int32_t BlockManager::find_cached(uint64_t hash, const int64_t* tokens) const {
  auto it = hash_to_block_.find(hash);
  if (it == hash_to_block_.end()) return -1;
  const Block& b = blocks_[it->second];
  if (b.hash != hash || std::memcmp(b.tokens.data(), tokens, block_size_ * sizeof(int64_t)) != 0) return -1;
  return it->second;
}

int64_t BlockManager::cached_prefix_tokens(const Sequence& seq) const {
  uint64_t h = 0;
  int64_t hits = 0;
  for (int64_t b = 0; b < reusable_blocks(seq); ++b) {
    h = chain_hash(h, seq.tokens.data() + b * block_size_, block_size_);
    if (find_cached(h, seq.tokens.data() + b * block_size_) < 0) break;
    ++hits;
  }
  return hits * block_size_;
}

bool BlockManager::is_pending(uint64_t hash, const int64_t* tokens) const {
  auto it = pending_.find(hash);
  if (it == pending_.end()) return false;
  const Block& b = blocks_[it->second];
  return b.pending_hash == hash && std::memcmp(b.tokens.data(), tokens, block_size_ * sizeof(int64_t)) == 0;
}

void BlockManager::clear_pending(int32_t id) {
  Block& b = blocks_[id];
  if (b.pending_hash == 0) return;
  auto it = pending_.find(b.pending_hash);
  if (it != pending_.end() && it->second == id) pending_.erase(it);
  b.pending_hash = 0;
  if (b.hash == 0) b.tokens.clear();
}

bool BlockManager::prefix_in_flight(const Sequence& seq) const {
  uint64_t h = 0;
  for (int64_t b = 0; b < reusable_blocks(seq); ++b) {
    const int64_t* tokens = seq.tokens.data() + b * block_size_;
    h = chain_hash(h, tokens, block_size_);
    if (find_cached(h, tokens) >= 0) continue;
    return is_pending(h, tokens);
  }
  return false;
}

bool BlockManager::can_allocate(const Sequence& seq) const {
  int64_t needed = seq.num_blocks(block_size_);
  uint64_t h = 0;
  const int64_t reusable = reusable_blocks(seq);
  for (int64_t b = 0; b < reusable; ++b) {
    h = chain_hash(h, seq.tokens.data() + b * block_size_, block_size_);
    const int32_t hit = find_cached(h, seq.tokens.data() + b * block_size_);
    if (hit < 0) break;
    if (blocks_[hit].ref_count > 0) --needed;  // shared with a live sequence: no free block needed
  }
  return needed <= num_free_blocks();
}

int32_t BlockManager::take_free_block() {
  SLIME_ASSERT(!free_.empty(), "KV cache: no free block (scheduler should have checked)");
  const int32_t id = free_.front();
  free_.pop_front();
  is_free_[id] = 0;
  Block& b = blocks_[id];
  if (b.hash != 0) {  // the block is reused for new content: forget what it cached
    auto it = hash_to_block_.find(b.hash);
    if (it != hash_to_block_.end() && it->second == id) hash_to_block_.erase(it);
    b.hash = 0;
    b.tokens.clear();
  }
  b.ref_count = 1;
  return id;
}

void BlockManager::take_specific_block(int32_t id) {
  if (is_free_[id]) {
    free_.erase(std::find(free_.begin(), free_.end(), id));
    is_free_[id] = 0;
    blocks_[id].ref_count = 1;
  } else {
    ++blocks_[id].ref_count;
  }
}

void BlockManager::register_hash(int32_t id, uint64_t hash, const int64_t* tokens) {
  if (!prefix_caching_) return;
  Block& b = blocks_[id];
  b.hash = hash;
  b.tokens.assign(tokens, tokens + block_size_);
  hash_to_block_[hash] = id;
}

void BlockManager::allocate(Sequence& seq) {
  SLIME_ASSERT(seq.block_table.empty(), "allocate: sequence ", seq.id, " already owns blocks");
  const int64_t total = seq.num_blocks(block_size_), reusable = reusable_blocks(seq);
  uint64_t h = 0;
  bool hits = true;
  seq.num_computed = 0;
  for (int64_t b = 0; b < total; ++b) {
    const int64_t* tokens = seq.tokens.data() + b * block_size_;
    const bool full = (b + 1) * block_size_ <= seq.num_tokens();
    if (full) h = chain_hash(h, tokens, block_size_);
    int32_t id = -1;
    if (hits && b < reusable) {
      id = find_cached(h, tokens);
      if (id >= 0) {
        take_specific_block(id);
        seq.num_computed += block_size_;
      } else {
        hits = false;
      }
    }
    if (id < 0) {
      id = take_free_block();
      // A full prefix block to be computed by this sequence: announce it, so that identical prompts wait for it.
      if (prefix_caching_ && b < reusable && pending_.find(h) == pending_.end()) {
        blocks_[id].pending_hash = h;
        blocks_[id].tokens.assign(tokens, tokens + block_size_);
        pending_[h] = id;
      }
    }
    seq.block_table.push_back(id);
  }
  seq.num_cached_prefix = seq.num_computed;
  seq.prefix_hash = 0;
  seq.hashed_blocks = 0;
  commit_computed(seq);  // the reused blocks are already registered; this advances the sequence's hash chain
}

void BlockManager::forget_cached_prefixes() {
  for (Block& b : blocks_) {
    b.hash = 0;
    b.pending_hash = 0;
    b.tokens.clear();
  }
  hash_to_block_.clear();
  pending_.clear();
}

void BlockManager::commit_computed(Sequence& seq) {
  const int64_t computed_blocks = seq.num_computed / block_size_;
  while (seq.hashed_blocks < computed_blocks) {
    const int64_t b = seq.hashed_blocks;
    const int64_t* tokens = seq.tokens.data() + b * block_size_;
    seq.prefix_hash = chain_hash(seq.prefix_hash, tokens, block_size_);
    const int32_t id = seq.block_table[b];
    clear_pending(id);
    if (!seq.stale_kv && blocks_[id].hash == 0 && find_cached(seq.prefix_hash, tokens) < 0)
      register_hash(id, seq.prefix_hash, tokens);
    ++seq.hashed_blocks;
  }
}

void BlockManager::deallocate(Sequence& seq) {
  for (auto it = seq.block_table.rbegin(); it != seq.block_table.rend(); ++it) {
    Block& b = blocks_[*it];
    SLIME_ASSERT(b.ref_count > 0, "deallocate: block ", *it, " is not in use");
    if (--b.ref_count == 0) {
      clear_pending(*it);  // never computed (preempted or aborted mid-prefill)
      free_.push_back(*it);
      is_free_[*it] = 1;
    }
  }
  seq.block_table.clear();
  seq.num_computed = 0;
  seq.prefix_hash = 0;
  seq.hashed_blocks = 0;
  seq.stale_kv = false;
}

bool BlockManager::can_append(const Sequence& seq) const {
  // The token at position num_tokens() - 1 needs a block when it starts one.
  const bool needs_block = seq.num_blocks(block_size_) > static_cast<int64_t>(seq.block_table.size());
  return !needs_block || num_free_blocks() > 0;
}

void BlockManager::may_append(Sequence& seq) {
  if (seq.num_blocks(block_size_) > static_cast<int64_t>(seq.block_table.size()))
    seq.block_table.push_back(take_free_block());
}

}  // namespace slime::rollout
