// RmaRing: a multi-producer, single-consumer byte ring per consumer rank, in one MPI RMA window (passive target).
// Rollout ranks put encoded samples into a trainer rank's ring without the trainer taking part; the trainer pops
// them in reservation order. Protocol (docs/buffer.md):
//   reserve  MPI_Fetch_and_op(SUM) on the ring's `reserve` counter gives the record's absolute start position;
//   wait     until start + record - head <= capacity (never overwrite unread data: a full ring stalls producers);
//   write    MPI_Put of [length][payload] after the stamp word (split in two where it wraps), MPI_Win_flush;
//   commit   MPI_Accumulate(REPLACE) of stamp = start + 1 into the record's first word, MPI_Win_flush.
// The consumer waits for stamp == head + 1 at its head, copies the record out, zeroes it (so a stale word can never
// pass for a later record's stamp) and advances `head`. Every access, the owner's included, goes through MPI RMA
// calls, so the protocol holds under both the separate and the unified memory model.
// Progress: where the transport has no hardware atomics (Open MPI 4.1's osc/ucx over TCP, for one), a remote atomic
// completes only when the target runs MPI's progress engine, which RMA calls to oneself and MPI_Win_sync do not
// do. Every polling step therefore also calls progress() (an MPI_Iprobe on a private communicator); a rank busy
// elsewhere for long (a trainer in its step) should call progress() now and then, or producers stall until it pops.
// Not thread-safe: one thread per rank uses a ring.
#pragma once

#include <mpi.h>

#include <cstdint>
#include <optional>
#include <vector>

namespace slime::buffer {

// Local counters of this rank's traffic, for logs.
struct RingStats {
  int64_t messages_put = 0;
  int64_t bytes_put = 0;          // payload bytes
  int64_t messages_popped = 0;
  int64_t bytes_popped = 0;       // payload bytes
  int64_t full_waits = 0;         // puts that found the target ring full and had to wait
  double full_wait_seconds = 0;   // time spent in those waits
  int64_t try_put_refusals = 0;   // try_put calls that returned false because the ring was full
};

// The shared counters of one consumer's ring (absolute byte positions; they only grow).
struct RingCounters {
  int64_t reserve = 0;  // bytes reserved by producers (records, headers and padding included)
  int64_t head = 0;     // bytes consumed and given back to producers
};

class RmaRing {
 public:
  static constexpr int64_t kHeaderBytes = 64;        // ring header at the start of each window
  static constexpr int64_t kRecordHeaderBytes = 16;  // [stamp int64][payload length int64] before each payload

  // Collective over `comm`. Ranks in `consumer_ranks` (ranks of comm, no duplicates) host a ring of
  // `capacity_bytes` (header included, rounded down to a multiple of 8); the others expose 0 bytes.
  RmaRing(MPI_Comm comm, std::vector<int> consumer_ranks, int64_t capacity_bytes);
  ~RmaRing();  // frees the window (collective) unless free() was called or an exception is unwinding
  RmaRing(const RmaRing&) = delete;
  RmaRing& operator=(const RmaRing&) = delete;

  // Collective: unlocks and frees the window. Idempotent.
  void free();

  // Producer side. `consumer` is a rank of comm listed in consumer_ranks (this rank included). Blocks while the
  // ring is full, polling with backoff (50 us growing to 2 ms); timeout_seconds < 0 waits forever, otherwise a
  // wait longer than that is an error. A message larger than max_message_bytes() is an immediate error.
  void put(int consumer, const void* data, int64_t bytes, double timeout_seconds = -1);
  // Non-blocking put: reserves with MPI_Compare_and_swap only when the record fits now; false (and nothing
  // reserved) when the ring is full. Ranks that both produce and consume (--colocate) use it to drain their own
  // ring between attempts instead of blocking in a cycle.
  bool try_put(int consumer, const void* data, int64_t bytes);

  // Consumer side (only on a rank in consumer_ranks): the next message in reservation order, or nothing when
  // that message is not committed yet (even if later ones are).
  std::optional<std::vector<char>> try_pop();
  // Waits (same backoff) for the next message; timeout_seconds < 0 waits forever, otherwise a longer wait is an
  // error naming how long it waited and the ring's counters.
  std::vector<char> pop(double timeout_seconds = -1);

  // Drives MPI's progress engine (MPI_Iprobe on a private duplicate of comm) so that other ranks' atomics on this
  // rank's ring complete. Cheap; called by every put / pop polling step.
  void progress();

  // Reads (atomically) the shared counters of `consumer`'s ring.
  RingCounters counters(int consumer);

  bool is_consumer() const { return is_consumer_; }
  int rank() const { return rank_; }
  const std::vector<int>& consumer_ranks() const { return consumer_ranks_; }
  int64_t capacity_bytes() const { return capacity_; }
  int64_t data_capacity_bytes() const { return capacity_ - kHeaderBytes; }
  int64_t max_message_bytes() const { return data_capacity_bytes() - kRecordHeaderBytes; }
  // MPI_WIN_SEPARATE or MPI_WIN_UNIFIED (informational: the protocol is correct under both).
  int memory_model() const { return memory_model_; }
  const RingStats& stats() const { return stats_; }

 private:
  int64_t record_bytes(int64_t payload_bytes) const;
  void check_put(int consumer, int64_t bytes) const;
  int64_t fetch_counter(int target, int64_t displacement);
  void write_record(int consumer, int64_t start, const void* data, int64_t bytes);
  // Puts / gets `bytes` at absolute ring position `position` of `target`'s data area, in two pieces where it wraps.
  void put_wrapped(int target, int64_t position, const void* data, int64_t bytes);
  void get_wrapped(int target, int64_t position, void* data, int64_t bytes);

  MPI_Comm comm_ = MPI_COMM_NULL;
  MPI_Comm progress_comm_ = MPI_COMM_NULL;  // private duplicate: probing it can never match a user message
  MPI_Win win_ = MPI_WIN_NULL;
  int rank_ = 0;
  int size_ = 0;
  std::vector<int> consumer_ranks_;
  std::vector<char> is_consumer_rank_;  // [size_]
  bool is_consumer_ = false;
  int64_t capacity_ = 0;
  int memory_model_ = 0;
  int64_t head_ = 0;  // consumer: this ring's head (only this rank writes it)
  std::vector<char> zeros_;
  RingStats stats_;
};

}  // namespace slime::buffer
