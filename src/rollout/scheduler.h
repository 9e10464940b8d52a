// Continuous batching: which sequences run in the next model step, and how many of their tokens.
//
// Each step is either a prefill step or a decode step (nano-vllm's policy). Prefill: sequences whose tokens are not
// all in the cache get a chunk of them (chunked prefill: at most max_batched_tokens tokens in the step), running
// ones first, then new ones admitted from the waiting queue while there are free slots (max_running) and cache
// blocks. Decode: every running sequence computes its one new token; when the cache is out of blocks, the most
// recently admitted sequence is preempted (its blocks freed, back to the front of the waiting queue) and is
// recomputed from its tokens when readmitted.
#pragma once

#include <cstdint>
#include <deque>
#include <vector>

#include "rollout/block_manager.h"
#include "rollout/sequence.h"

namespace slime::rollout {

struct SchedulerConfig {
  int64_t max_running = 256;         // --sglang-max-running-requests
  int64_t max_batched_tokens = 512;  // tokens per step (--sglang-chunked-prefill-size)
  bool longest_prefix_first = false; // --sglang-schedule-policy lpm: admit the longest cached prefix first
};

// Tokens [start, start + count) of `seq` run in this step; `samples` when the chunk reaches the end of the
// sequence's tokens (its logits give the next token).
struct ScheduledChunk {
  Sequence* seq;
  int64_t start;
  int64_t count;
  bool samples;
};

class Scheduler {
 public:
  Scheduler(SchedulerConfig config, BlockManager& blocks);

  void add(Sequence* seq);  // to the back of the waiting queue
  // The next step's chunks (empty when nothing can run). Updates queues and block allocation.
  std::vector<ScheduledChunk> schedule();
  // After the step ran: chunks' tokens are now computed; finished sequences leave and free their blocks.
  void after_step(const std::vector<ScheduledChunk>& chunks);
  // Removes a sequence wherever it is (abort), freeing its blocks.
  void remove(Sequence* seq);

  bool empty() const { return waiting_.empty() && running_.empty(); }
  int64_t num_waiting() const { return static_cast<int64_t>(waiting_.size()); }
  int64_t num_running() const { return static_cast<int64_t>(running_.size()); }
  int64_t preemptions() const { return preemptions_; }

 private:
  void preempt(Sequence* seq);

  SchedulerConfig config_;
  BlockManager& blocks_;
  std::deque<Sequence*> waiting_;
  std::deque<Sequence*> running_;  // in admission order
  int64_t preemptions_ = 0;
};

}  // namespace slime::rollout
