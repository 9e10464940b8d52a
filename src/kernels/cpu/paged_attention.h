// Attention over a paged KV cache (inference): the rollout engine's decode and chunked-prefill attention.
//
// The cache of one layer holds fixed-size blocks of key/value vectors, [num_blocks, block_size, G, d]; a sequence
// owns a list of blocks (its block table), and the token at position p sits in slot
// block_table[p / block_size] * block_size + p % block_size. Each step brings new tokens for some sequences: their
// K/V are written to their slots first, then each new token attends to every cached position up to its own.
// Per (sequence, KV group) the cached keys and values are gathered into contiguous buffers once, so the scores and
// the weighted sum are GEMMs, shared by the group's query heads (GQA).
#pragma once

#include <cstdint>
#include <vector>

namespace slime::cpu {

struct PagedAttentionShape {
  int64_t tokens;      // T: new tokens of all sequences in this step
  int64_t heads;       // H query heads
  int64_t groups;      // G key/value heads
  int64_t head_dim;    // d
  int64_t block_size;  // tokens per cache block
};

struct PagedSequences {
  std::vector<int64_t> cu_seqlens;                 // [B + 1] new tokens of each sequence, back to back
  std::vector<int64_t> context_lens;               // [B] cached tokens after this step (= old + new)
  std::vector<int64_t> positions;                  // [T] position of each new token in its sequence
  std::vector<std::vector<int32_t>> block_tables;  // [B] block ids of each sequence
  int64_t slot_of(int64_t sequence, int64_t position, int64_t block_size) const {
    return static_cast<int64_t>(block_tables[sequence][position / block_size]) * block_size + position % block_size;
  }
};

// Writes the new tokens' keys/values (head-major k, v [G, T, d]) into their cache slots of one layer's
// k_cache/v_cache [num_blocks * block_size, G, d].
template <class T>
void kv_cache_write(const PagedAttentionShape& shape, const PagedSequences& seqs, const T* k, const T* v,
                    T* k_cache, T* v_cache);

// out [H, T, d] for the new tokens' queries q [H, T, d] (after RoPE), causal over each sequence's cached positions.
template <class T>
void paged_attention_forward(const PagedAttentionShape& shape, const PagedSequences& seqs, const T* q,
                             const T* k_cache, const T* v_cache, T scale, T* out);

}  // namespace slime::cpu
