// One request inside the engine: its tokens (prompt + generated), where their KV lives (block table), how many are
// already in the cache, and how it ended.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "rollout/sampling_params.h"

namespace slime::rollout {

enum class SequenceStatus { Waiting, Running, Finished };

struct Sequence {
  int64_t id = 0;
  std::vector<int64_t> tokens;          // prompt + generated so far
  int64_t prompt_length = 0;
  int64_t num_computed = 0;             // leading tokens whose K/V are in the cache (prefix hits included)
  int64_t num_cached_prefix = 0;        // of those, how many came from the prefix cache at admission
  std::vector<int32_t> block_table;
  std::vector<float> logprobs;          // one per generated token
  SamplingParams params;
  std::string session_id;
  SequenceStatus status = SequenceStatus::Waiting;
  std::string finish_reason;            // "stop" | "length" | "abort"
  std::string matched_stop;             // the stop string that ended it, if any
  int64_t preemptions = 0;
  // Prefix-cache bookkeeping (BlockManager): the chained hash of the first `hashed_blocks` full blocks.
  uint64_t prefix_hash = 0;
  int64_t hashed_blocks = 0;
  // The weights changed while this sequence held K/V (Engine::weights_changed): its blocks are never offered for
  // prefix sharing. Cleared when it gives its blocks back (a preempted sequence recomputes under the new weights).
  bool stale_kv = false;

  int64_t num_tokens() const { return static_cast<int64_t>(tokens.size()); }
  int64_t num_generated() const { return num_tokens() - prompt_length; }
  int64_t num_blocks(int64_t block_size) const { return (num_tokens() + block_size - 1) / block_size; }
};

}  // namespace slime::rollout
