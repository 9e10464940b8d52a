#include "rollout/scheduler.h"

#include <algorithm>

#include "core/error.h"

namespace slime::rollout {

Scheduler::Scheduler(SchedulerConfig config, BlockManager& blocks) : config_(config), blocks_(blocks) {
  SLIME_CHECK(config_.max_running >= 1, "--sglang-max-running-requests must be >= 1, got ", config_.max_running);
  SLIME_CHECK(config_.max_batched_tokens >= 1, "--sglang-chunked-prefill-size must be >= 1, got ",
              config_.max_batched_tokens);
}

void Scheduler::add(Sequence* seq) {
  seq->status = SequenceStatus::Waiting;
  waiting_.push_back(seq);
}

std::vector<ScheduledChunk> Scheduler::schedule() {
  std::vector<ScheduledChunk> chunks;
  int64_t budget = config_.max_batched_tokens;
  // Prefill: running sequences with uncomputed prompt tokens first, then admissions.
  for (Sequence* seq : running_) {
    const int64_t remaining = seq->num_tokens() - seq->num_computed;
    if (remaining <= 1 && seq->num_computed > 0 && seq->num_generated() > 0) continue;  // decoding
    if (remaining <= 0 || budget == 0) continue;
    const int64_t count = std::min(remaining, budget);
    chunks.push_back({seq, seq->num_computed, count, count == remaining});
    budget -= count;
  }
  if (config_.longest_prefix_first && waiting_.size() > 1) {  // stable: arrival order among equal prefixes
    std::vector<std::pair<int64_t, Sequence*>> keyed;
    for (Sequence* seq : waiting_) keyed.emplace_back(-blocks_.cached_prefix_tokens(*seq), seq);
    std::stable_sort(keyed.begin(), keyed.end(), [](auto& a, auto& b) { return a.first < b.first; });
    for (size_t i = 0; i < keyed.size(); ++i) waiting_[i] = keyed[i].second;
  }
  for (auto it = waiting_.begin();
       it != waiting_.end() && budget > 0 && static_cast<int64_t>(running_.size()) < config_.max_running;) {
    Sequence* seq = *it;
    if (blocks_.prefix_in_flight(*seq)) {  // its prefix is being computed: share it next step
      ++it;
      continue;
    }
    if (!blocks_.can_allocate(*seq)) break;
    it = waiting_.erase(it);
    blocks_.allocate(*seq);
    seq->status = SequenceStatus::Running;
    running_.push_back(seq);
    const int64_t remaining = seq->num_tokens() - seq->num_computed;
    const int64_t count = std::min(remaining, budget);
    chunks.push_back({seq, seq->num_computed, count, count == remaining});
    budget -= count;
  }
  if (!chunks.empty()) return chunks;

  // Decode: one token per running sequence; preempt the newest when blocks run out.
  for (size_t i = 0; i < running_.size();) {
    Sequence* seq = running_[i];
    while (!blocks_.can_append(*seq)) {
      Sequence* victim = running_.back();
      preempt(victim);
      if (victim == seq) break;
    }
    if (seq->status != SequenceStatus::Running) continue;  // it was the one preempted
    blocks_.may_append(*seq);
    chunks.push_back({seq, seq->num_computed, seq->num_tokens() - seq->num_computed, true});
    ++i;
  }
  SLIME_CHECK(!chunks.empty() || waiting_.empty() || !running_.empty(),
              "KV cache too small: a waiting request of ", waiting_.front()->num_tokens(), " tokens needs ",
              waiting_.front()->num_blocks(blocks_.block_size()), " blocks, the cache has ", blocks_.num_blocks(),
              " (raise --sglang-max-total-tokens or --sglang-mem-fraction-static)");
  return chunks;
}

void Scheduler::preempt(Sequence* seq) {
  running_.erase(std::find(running_.begin(), running_.end(), seq));
  blocks_.deallocate(*seq);
  seq->status = SequenceStatus::Waiting;
  ++seq->preemptions;
  ++preemptions_;
  waiting_.push_front(seq);
}

void Scheduler::after_step(const std::vector<ScheduledChunk>& chunks) {
  for (const ScheduledChunk& c : chunks) {
    c.seq->num_computed = c.start + c.count;
    blocks_.commit_computed(*c.seq);  // finished ones too: their prefix stays reusable after they leave
  }
  for (auto it = running_.begin(); it != running_.end();) {
    if ((*it)->status == SequenceStatus::Finished) {
      blocks_.deallocate(**it);
      it = running_.erase(it);
    } else {
      ++it;
    }
  }
}

void Scheduler::remove(Sequence* seq) {
  auto w = std::find(waiting_.begin(), waiting_.end(), seq);
  if (w != waiting_.end()) waiting_.erase(w);
  auto r = std::find(running_.begin(), running_.end(), seq);
  if (r != running_.end()) {
    blocks_.deallocate(*seq);
    running_.erase(r);
  }
}

}  // namespace slime::rollout
