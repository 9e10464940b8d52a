// RmaRing implementation: reserve with MPI_Fetch_and_op, write with MPI_Put, commit with an atomic stamp, consume
// in reservation order. See rma_ring.h for the protocol and docs/buffer.md for the window layout.
#include "buffer/rma_ring.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <exception>
#include <thread>

#include "comm/mpi_utils.h"
#include "core/error.h"
#include "core/log.h"

namespace slime::buffer {

namespace {

// Ring header words (byte displacements in the window).
constexpr MPI_Aint kReserveDisp = 0;   // int64: bytes reserved by producers (fetch-and-add)
constexpr MPI_Aint kHeadDisp = 8;      // int64: bytes consumed (written by the owner only)
constexpr MPI_Aint kCapacityDisp = 16; // int64: capacity of the window (for debugging dumps)

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Sleeps for the current backoff and doubles it, from 50 us up to 2 ms: oversubscribed ranks (several per core)
// must leave the core to the rank they wait for.
class Backoff {
 public:
  void wait() {
    std::this_thread::sleep_for(std::chrono::microseconds(micros_));
    micros_ = std::min<int64_t>(micros_ * 2, 2000);
  }

 private:
  int64_t micros_ = 50;
};

int64_t round_up8(int64_t n) { return (n + 7) & ~int64_t{7}; }

}  // namespace

RmaRing::RmaRing(MPI_Comm comm, std::vector<int> consumer_ranks, int64_t capacity_bytes)
    : comm_(comm), consumer_ranks_(std::move(consumer_ranks)), capacity_(capacity_bytes & ~int64_t{7}) {
  mpiCheck(MPI_Comm_rank(comm_, &rank_));
  mpiCheck(MPI_Comm_size(comm_, &size_));
  SLIME_CHECK(!consumer_ranks_.empty(), "RmaRing: consumer_ranks is empty");
  SLIME_CHECK(capacity_ >= kHeaderBytes + kRecordHeaderBytes + 8, "RmaRing: capacity_bytes ", capacity_bytes,
              " is too small (needs at least ", kHeaderBytes + kRecordHeaderBytes + 8, ": a ", kHeaderBytes,
              "-byte header and one record)");
  SLIME_CHECK(capacity_ <= INT32_MAX, "RmaRing: capacity_bytes ", capacity_bytes, " exceeds ", INT32_MAX,
              " (MPI counts are int)");
  is_consumer_rank_.assign(size_, 0);
  for (int r : consumer_ranks_) {
    SLIME_CHECK(r >= 0 && r < size_, "RmaRing: consumer rank ", r, " is not a rank of a communicator of ", size_);
    SLIME_CHECK(!is_consumer_rank_[r], "RmaRing: consumer rank ", r, " listed twice");
    is_consumer_rank_[r] = 1;
  }
  is_consumer_ = is_consumer_rank_[rank_];

  // Every rank must have passed the same capacity (a mismatch would make producers misjudge free space).
  int64_t bounds[2] = {capacity_, -capacity_};
  mpiCheck(MPI_Allreduce(MPI_IN_PLACE, bounds, 2, MPI_INT64_T, MPI_MIN, comm_));
  SLIME_CHECK(bounds[0] == capacity_ && -bounds[1] == capacity_, "RmaRing: ranks disagree on capacity_bytes: ",
              "this rank (", rank_, ") has ", capacity_, ", others range from ", bounds[0], " to ", -bounds[1]);

  mpiCheck(MPI_Comm_dup(comm_, &progress_comm_));
  const MPI_Aint window_bytes = is_consumer_ ? capacity_ : 0;
  void* base = nullptr;
  mpiCheck(MPI_Win_allocate(window_bytes, 1, MPI_INFO_NULL, comm_, &base, &win_));
  int* model = nullptr;
  int found = 0;
  mpiCheck(MPI_Win_get_attr(win_, MPI_WIN_MODEL, &model, &found));
  memory_model_ = found && model ? *model : MPI_WIN_SEPARATE;

  // Zero the ring (MPI_Win_allocate does not) with local stores, then make them public with MPI_Win_sync before any
  // other rank can touch the window (the barrier). From here on every access is an RMA call.
  if (is_consumer_) {
    std::memset(base, 0, capacity_);
    std::memcpy(static_cast<char*>(base) + kCapacityDisp, &capacity_, sizeof(capacity_));
  }
  mpiCheck(MPI_Win_lock_all(MPI_MODE_NOCHECK, win_));
  mpiCheck(MPI_Win_sync(win_));
  mpiCheck(MPI_Barrier(comm_));
  zeros_.assign(std::min<int64_t>(data_capacity_bytes(), 1 << 16), 0);
}

RmaRing::~RmaRing() {
  if (win_ == MPI_WIN_NULL) return;
  if (std::uncaught_exceptions() > 0) {
    // Freeing is collective: during unwinding the other ranks may never arrive. Leak the window instead.
    SLIME_WARN("RmaRing: not freeing the window while an exception unwinds (free() is collective)");
    return;
  }
  try {
    free();
  } catch (const std::exception& e) {
    SLIME_WARN("RmaRing: freeing the window failed: ", e.what());
  }
}

void RmaRing::free() {
  if (win_ == MPI_WIN_NULL) return;
  int finalized = 0;
  MPI_Finalized(&finalized);
  SLIME_CHECK(!finalized, "RmaRing::free: MPI is already finalized");
  mpiCheck(MPI_Win_unlock_all(win_));
  mpiCheck(MPI_Win_free(&win_));
  win_ = MPI_WIN_NULL;
  mpiCheck(MPI_Comm_free(&progress_comm_));
}

int64_t RmaRing::record_bytes(int64_t payload_bytes) const {
  return kRecordHeaderBytes + round_up8(payload_bytes);
}

void RmaRing::check_put(int consumer, int64_t bytes) const {
  SLIME_CHECK(win_ != MPI_WIN_NULL, "RmaRing::put: the ring was freed");
  SLIME_CHECK(consumer >= 0 && consumer < size_ && is_consumer_rank_[consumer], "RmaRing::put: rank ", consumer,
              " hosts no ring (consumer ranks are the ", consumer_ranks_.size(), " listed at construction)");
  SLIME_CHECK(bytes >= 0, "RmaRing::put: negative message size ", bytes);
  SLIME_CHECK(bytes <= max_message_bytes(), "RmaRing::put: a message of ", bytes,
              " bytes does not fit a ring of capacity ", capacity_, " bytes (at most ", max_message_bytes(),
              " bytes per message: ", kHeaderBytes, " bytes of ring header and ", kRecordHeaderBytes,
              " of record header); raise the buffer capacity");
}

void RmaRing::progress() {
  if (progress_comm_ == MPI_COMM_NULL) return;
  int flag = 0;
  mpiCheck(MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, progress_comm_, &flag, MPI_STATUS_IGNORE));
}

int64_t RmaRing::fetch_counter(int target, int64_t displacement) {
  int64_t unused = 0, value = 0;
  mpiCheck(MPI_Fetch_and_op(&unused, &value, MPI_INT64_T, target, displacement, MPI_NO_OP, win_));
  mpiCheck(MPI_Win_flush(target, win_));
  return value;
}

RingCounters RmaRing::counters(int consumer) {
  SLIME_CHECK(consumer >= 0 && consumer < size_ && is_consumer_rank_[consumer], "RmaRing::counters: rank ",
              consumer, " hosts no ring");
  RingCounters c;
  c.reserve = fetch_counter(consumer, kReserveDisp);
  c.head = fetch_counter(consumer, kHeadDisp);
  return c;
}

void RmaRing::put_wrapped(int target, int64_t position, const void* data, int64_t bytes) {
  const int64_t ring = data_capacity_bytes();
  const char* src = static_cast<const char*>(data);
  while (bytes > 0) {
    const int64_t offset = position % ring;
    const int64_t piece = std::min(bytes, ring - offset);
    mpiCheck(MPI_Put(src, static_cast<int>(piece), MPI_BYTE, target, kHeaderBytes + offset, static_cast<int>(piece),
                     MPI_BYTE, win_));
    src += piece;
    position += piece;
    bytes -= piece;
  }
}

void RmaRing::get_wrapped(int target, int64_t position, void* data, int64_t bytes) {
  const int64_t ring = data_capacity_bytes();
  char* dst = static_cast<char*>(data);
  while (bytes > 0) {
    const int64_t offset = position % ring;
    const int64_t piece = std::min(bytes, ring - offset);
    mpiCheck(MPI_Get(dst, static_cast<int>(piece), MPI_BYTE, target, kHeaderBytes + offset, static_cast<int>(piece),
                     MPI_BYTE, win_));
    dst += piece;
    position += piece;
    bytes -= piece;
  }
}

void RmaRing::write_record(int consumer, int64_t start, const void* data, int64_t bytes) {
  // Length word and payload first; the stamp only once they are complete at the target (flush), so a consumer
  // that sees the stamp sees the whole record. Padding stays zero (the consumer zeroed it).
  put_wrapped(consumer, start + 8, &bytes, 8);
  if (bytes > 0) put_wrapped(consumer, start + kRecordHeaderBytes, data, bytes);
  mpiCheck(MPI_Win_flush(consumer, win_));
  const int64_t stamp = start + 1;
  mpiCheck(MPI_Accumulate(&stamp, 1, MPI_INT64_T, consumer, kHeaderBytes + start % data_capacity_bytes(), 1,
                          MPI_INT64_T, MPI_REPLACE, win_));
  mpiCheck(MPI_Win_flush(consumer, win_));
  stats_.messages_put += 1;
  stats_.bytes_put += bytes;
}

void RmaRing::put(int consumer, const void* data, int64_t bytes, double timeout_seconds) {
  check_put(consumer, bytes);
  const int64_t record = record_bytes(bytes);
  int64_t start = 0;
  mpiCheck(MPI_Fetch_and_op(&record, &start, MPI_INT64_T, consumer, kReserveDisp, MPI_SUM, win_));
  mpiCheck(MPI_Win_flush(consumer, win_));

  // Wait until the consumer has freed [start, start + record): everything before start + record - capacity.
  int64_t head = fetch_counter(consumer, kHeadDisp);
  if (start + record - head > data_capacity_bytes()) {
    const auto began = Clock::now();
    Backoff backoff;
    stats_.full_waits += 1;
    while (start + record - head > data_capacity_bytes()) {
      if (timeout_seconds >= 0 && seconds_since(began) > timeout_seconds) {
        // The reservation cannot be taken back: the ring is unusable for this consumer from here on.
        SLIME_FAIL("RmaRing::put: rank ", rank_, " waited ", seconds_since(began), " s (timeout ", timeout_seconds,
                   " s) for space in rank ", consumer, "'s ring: record of ", record, " bytes at position ", start,
                   ", head ", head, ", capacity ", data_capacity_bytes(), " bytes of data");
      }
      progress();
      backoff.wait();
      head = fetch_counter(consumer, kHeadDisp);
    }
    stats_.full_wait_seconds += seconds_since(began);
  }
  write_record(consumer, start, data, bytes);
}

bool RmaRing::try_put(int consumer, const void* data, int64_t bytes) {
  check_put(consumer, bytes);
  progress();
  const int64_t record = record_bytes(bytes);
  int64_t reserve = fetch_counter(consumer, kReserveDisp);
  for (;;) {
    const int64_t head = fetch_counter(consumer, kHeadDisp);
    if (reserve + record - head > data_capacity_bytes()) {
      stats_.try_put_refusals += 1;
      return false;
    }
    const int64_t desired = reserve + record;
    int64_t found = 0;
    mpiCheck(MPI_Compare_and_swap(&desired, &reserve, &found, MPI_INT64_T, consumer, kReserveDisp, win_));
    mpiCheck(MPI_Win_flush(consumer, win_));
    if (found == reserve) break;  // reserved [reserve, reserve + record)
    reserve = found;              // another producer got there first: judge the space again
  }
  write_record(consumer, reserve, data, bytes);
  return true;
}

std::optional<std::vector<char>> RmaRing::try_pop() {
  SLIME_CHECK(win_ != MPI_WIN_NULL, "RmaRing::try_pop: the ring was freed");
  SLIME_CHECK(is_consumer_, "RmaRing::try_pop: rank ", rank_, " hosts no ring");
  progress();
  const int64_t ring = data_capacity_bytes();
  const int64_t stamp = fetch_counter(rank_, kHeaderBytes + head_ % ring);
  if (stamp == 0) return std::nullopt;
  SLIME_ASSERT(stamp == head_ + 1, "rank ", rank_, "'s ring holds stamp ", stamp, " at head ", head_,
               " (expected 0 or ", head_ + 1, ")");
  int64_t bytes = 0;
  get_wrapped(rank_, head_ + 8, &bytes, 8);
  mpiCheck(MPI_Win_flush(rank_, win_));
  SLIME_ASSERT(bytes >= 0 && bytes <= max_message_bytes(), "rank ", rank_, "'s ring: record at ", head_,
               " claims ", bytes, " bytes");
  std::vector<char> message(bytes);
  get_wrapped(rank_, head_ + kRecordHeaderBytes, message.data(), bytes);
  mpiCheck(MPI_Win_flush(rank_, win_));

  // Zero the whole record, so no word of it can pass for the stamp of a later record, then give the space back.
  const int64_t record = record_bytes(bytes);
  for (int64_t done = 0; done < record;) {
    const int64_t piece = std::min<int64_t>(record - done, static_cast<int64_t>(zeros_.size()));
    put_wrapped(rank_, head_ + done, zeros_.data(), piece);
    done += piece;
  }
  mpiCheck(MPI_Win_flush(rank_, win_));
  head_ += record;
  mpiCheck(MPI_Accumulate(&head_, 1, MPI_INT64_T, rank_, kHeadDisp, 1, MPI_INT64_T, MPI_REPLACE, win_));
  mpiCheck(MPI_Win_flush(rank_, win_));
  stats_.messages_popped += 1;
  stats_.bytes_popped += bytes;
  return message;
}

std::vector<char> RmaRing::pop(double timeout_seconds) {
  const auto began = Clock::now();
  Backoff backoff;
  for (;;) {
    if (auto message = try_pop()) return std::move(*message);
    if (timeout_seconds >= 0 && seconds_since(began) > timeout_seconds) {
      const RingCounters c = counters(rank_);
      SLIME_FAIL("RmaRing::pop: rank ", rank_, " waited ", seconds_since(began), " s (timeout ", timeout_seconds,
                 " s) for a message: head ", c.head, ", reserved ", c.reserve, " (",
                 c.reserve - c.head, " bytes reserved and not yet consumed), ", stats_.messages_popped,
                 " messages / ", stats_.bytes_popped, " bytes popped so far, capacity ", data_capacity_bytes(),
                 " bytes of data");
    }
    backoff.wait();
  }
}

}  // namespace slime::buffer
