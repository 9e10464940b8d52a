// The paged KV cache's block allocator, with prefix sharing.
//
// The cache is num_blocks blocks of block_size token slots. A sequence's block table lists its blocks in order.
// Every full block is identified by a hash of its tokens chained with the previous block's hash, so two sequences
// that start with the same tokens (the n samples of one prompt, the turns of a multi-turn session) map their
// common full blocks to the same physical blocks and compute that prefix once. Blocks are reference counted; a block
// whose count drops to zero returns to the free list but keeps its hash, so a later identical prefix can still
// claim it until it is reused for something else (nano-vllm's scheme).
#pragma once

#include <cstdint>
#include <deque>
#include <unordered_map>
#include <vector>

#include "rollout/sequence.h"

namespace slime::rollout {

class BlockManager {
 public:
  BlockManager(int64_t num_blocks, int64_t block_size, bool prefix_caching = true);

  // Whether allocate(seq) can succeed now (counting prefix hits as free).
  bool can_allocate(const Sequence& seq) const;
  // Builds the block table for all of seq's current tokens, reusing cached full blocks of its prefix; sets
  // num_computed to the tokens whose K/V are already there. At least the last token is always left to compute.
  void allocate(Sequence& seq);
  // Releases seq's blocks (reference counts); the sequence no longer owns any.
  void deallocate(Sequence& seq);
  // Whether the sequence's next token (position num_tokens() - 1 once appended) has a slot or can get one.
  bool can_append(const Sequence& seq) const;
  // After a token was appended to seq: gives it a new block when it crossed a boundary.
  void may_append(Sequence& seq);
  // After a model step: makes the full blocks whose K/V are now computed (up to num_computed) available for prefix
  // sharing. Registering only computed blocks keeps a sequence from reusing K/V that are not written yet.
  void commit_computed(Sequence& seq);

  // After a weight change: no block computed so far is found for a prefix again (every hash and pending announcement
  // goes). Blocks in use stay with their sequences.
  void forget_cached_prefixes();

  // Tokens of seq's prefix that allocate() would find in the cache now (the lpm scheduling policy).
  int64_t cached_prefix_tokens(const Sequence& seq) const;
  // Whether the first full block of seq's prefix that is not cached is being computed right now by an admitted
  // sequence (the same prompt, admitted earlier). The scheduler then holds seq back for a step so that it shares
  // those blocks instead of computing them again: the n samples of a prompt, arriving together, prefill it once
  // (SGLang's in-batch prefix caching).
  bool prefix_in_flight(const Sequence& seq) const;

  int64_t num_free_blocks() const { return static_cast<int64_t>(free_.size()); }
  int64_t num_blocks() const { return static_cast<int64_t>(blocks_.size()); }
  int64_t block_size() const { return block_size_; }

 private:
  struct Block {
    int32_t ref_count = 0;
    uint64_t hash = 0;       // 0 = no full-block hash registered
    uint64_t pending_hash = 0;    // the hash the block will get once computed (0 = none)
    std::vector<int64_t> tokens;  // the tokens of `hash` / `pending_hash` (checked on a hit: no aliasing)
  };
  static uint64_t chain_hash(uint64_t previous, const int64_t* tokens, int64_t count);
  // Full blocks eligible for prefix reuse: those ending before the sequence's last token.
  int64_t reusable_blocks(const Sequence& seq) const;
  int32_t find_cached(uint64_t hash, const int64_t* tokens) const;
  bool is_pending(uint64_t hash, const int64_t* tokens) const;
  void clear_pending(int32_t id);
  int32_t take_free_block();
  void take_specific_block(int32_t id);
  void register_hash(int32_t id, uint64_t hash, const int64_t* tokens);

  int64_t block_size_;
  bool prefix_caching_;
  std::vector<Block> blocks_;
  std::deque<int32_t> free_;
  std::vector<char> is_free_;
  std::unordered_map<uint64_t, int32_t> hash_to_block_;
  std::unordered_map<uint64_t, int32_t> pending_;  // full prefix blocks allocated, not yet computed
};

}  // namespace slime::rollout
