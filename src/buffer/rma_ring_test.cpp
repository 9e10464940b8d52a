// RmaRing under mpirun -np 4, in several role layouts: 2 producers + 2 consumers; 3 producers + 1 slow consumer
// with a tiny ring (producers must wait, nothing overwritten); every rank producing while ranks 0 and 2 also consume
// (--colocate: a rank puts into its own ring). Every producer sends a deterministic plan of variable-size messages
// (0 bytes to nearly the whole ring); each consumer regenerates the plan and checks that every message arrives
// exactly once, byte for byte, in per-producer order, and that the ring wrapped many times. Also: the oversize,
// wrong-target and pop-timeout errors, and a message of exactly the maximum size.
#include <mpi.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstring>
#include <map>
#include <set>
#include <thread>

#include "buffer/rma_ring.h"
#include "buffer/sample_codec.h"
#include "core/error.h"
#include "core/log.h"

using slime::buffer::RmaRing;
using Catch::Matchers::Contains;

namespace {

int world_rank() {
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  return rank;
}
int world_size() {
  int size = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  return size;
}

uint64_t mix(uint64_t x) {  // splitmix64
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

struct Layout {
  std::string name;
  std::vector<int> producers;
  std::vector<int> consumers;
  int64_t capacity = 0;
  int messages_per_producer = 0;
  int slow_pops = 0;       // the first slow_pops pops of every consumer sleep 1 ms first
  double min_laps = 0;     // each ring's head must pass min_laps * data capacity
  bool expect_full_waits = false;
};

struct Planned {
  int consumer;
  int64_t bytes;
};

constexpr int64_t kIdBytes = 24;  // [producer][sequence][bytes] at the front of messages that have room

// Message m of producer p: its consumer and size. Sizes: 10% empty, 10% below the id size, 10% above half the
// ring, the rest small to medium.
Planned plan(const Layout& layout, int64_t max_message, int producer, int m) {
  const uint64_t r = mix(mix(static_cast<uint64_t>(producer) * 1000003ull + m) ^ layout.capacity);
  Planned p;
  p.consumer = layout.consumers[r % layout.consumers.size()];
  const uint64_t kind = (r >> 16) % 10, x = r >> 24;
  if (kind == 0) p.bytes = 0;
  else if (kind == 1) p.bytes = 1 + static_cast<int64_t>(x % (kIdBytes - 1));
  else if (kind == 2) p.bytes = max_message / 2 + 1 + static_cast<int64_t>(x % (max_message - max_message / 2));
  else p.bytes = kIdBytes + static_cast<int64_t>(x % (max_message / 8));
  return p;
}

std::vector<char> payload(int producer, int m, int64_t bytes) {
  std::vector<char> out(bytes);
  uint64_t state = mix(static_cast<uint64_t>(producer) << 32 | static_cast<uint64_t>(m));
  for (int64_t i = 0; i < bytes; ++i) {
    if (i % 8 == 0) state = mix(state);
    out[i] = static_cast<char>(state >> (8 * (i % 8)));
  }
  if (bytes >= kIdBytes) {
    const int64_t id[3] = {producer, m, bytes};
    std::memcpy(out.data(), id, sizeof(id));
  }
  return out;
}

bool contains(const std::vector<int>& ranks, int rank) {
  return std::find(ranks.begin(), ranks.end(), rank) != ranks.end();
}

// Consumer-side bookkeeping: what is still expected, and per-producer order.
struct Expectation {
  std::map<std::pair<int, int>, int64_t> with_id;      // (producer, m) -> bytes, messages >= kIdBytes
  std::multiset<std::pair<int64_t, uint64_t>> short_;  // (bytes, checksum) of messages < kIdBytes
  std::map<int, int> last_sequence;                    // producer -> last m seen
  int64_t remaining = 0;

  void receive(const std::vector<char>& message, int rank) {
    const int64_t bytes = static_cast<int64_t>(message.size());
    REQUIRE(remaining > 0);
    remaining -= 1;
    if (bytes < kIdBytes) {
      auto it = short_.find({bytes, slime::buffer::fnv1a64(message.data(), message.size())});
      REQUIRE(it != short_.end());  // a short message that was never sent, or arrived twice, or is corrupt
      short_.erase(it);
      return;
    }
    int64_t id[3];
    std::memcpy(id, message.data(), sizeof(id));
    const int producer = static_cast<int>(id[0]), m = static_cast<int>(id[1]);
    auto it = with_id.find({producer, m});
    INFO("rank " << rank << " got producer " << producer << " message " << m << " of " << bytes << " bytes");
    REQUIRE(it != with_id.end());  // unknown or duplicated
    REQUIRE(it->second == bytes);
    REQUIRE(message == payload(producer, m, bytes));  // no byte overwritten
    with_id.erase(it);
    auto last = last_sequence.find(producer);
    if (last != last_sequence.end()) REQUIRE(m > last->second);  // per-producer order
    last_sequence[producer] = m;
  }
};

void run_layout(const Layout& layout) {
  REQUIRE(world_size() == 4);
  const int rank = world_rank();
  const auto began = std::chrono::steady_clock::now();
  RmaRing ring(MPI_COMM_WORLD, layout.consumers, layout.capacity);
  const int64_t max_message = ring.max_message_bytes();
  const bool producer = contains(layout.producers, rank);
  const bool consumer = ring.is_consumer();

  Expectation expect;
  if (consumer) {
    for (int p : layout.producers)
      for (int m = 0; m < layout.messages_per_producer; ++m) {
        const Planned planned = plan(layout, max_message, p, m);
        if (planned.consumer != rank) continue;
        expect.remaining += 1;
        if (planned.bytes >= kIdBytes) {
          expect.with_id[{p, m}] = planned.bytes;
        } else {
          const std::vector<char> bytes = payload(p, m, planned.bytes);
          expect.short_.insert({planned.bytes, slime::buffer::fnv1a64(bytes.data(), bytes.size())});
        }
      }
  }
  int pops = 0;
  auto consume = [&](std::vector<char> message) {
    expect.receive(message, rank);
    pops += 1;
  };
  auto slow_down = [&] {
    if (pops < layout.slow_pops) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  };

  if (producer) {
    for (int m = 0; m < layout.messages_per_producer; ++m) {
      const Planned planned = plan(layout, max_message, rank, m);
      const std::vector<char> bytes = payload(rank, m, planned.bytes);
      if (!consumer) {
        ring.put(planned.consumer, bytes.data(), planned.bytes, 20.0);
        continue;
      }
      // A rank that also consumes must never block on a full ring (its own, or one whose owner waits on ours).
      while (!ring.try_put(planned.consumer, bytes.data(), planned.bytes)) {
        if (auto message = ring.try_pop()) consume(std::move(*message));
        else std::this_thread::sleep_for(std::chrono::microseconds(100));
      }
      if (pops >= layout.slow_pops)
        if (auto message = ring.try_pop()) consume(std::move(*message));
    }
  }
  if (consumer) {
    while (expect.remaining > 0) {
      slow_down();
      consume(ring.pop(20.0));
    }
    REQUIRE(expect.with_id.empty());
    REQUIRE(expect.short_.empty());
  }
  MPI_Barrier(MPI_COMM_WORLD);
  double laps = 1e30;  // fewest wraps over the consumers' rings
  if (consumer) {
    REQUIRE_FALSE(ring.try_pop().has_value());  // nothing extra
    const slime::buffer::RingCounters c = ring.counters(rank);
    REQUIRE(c.head == c.reserve);
    laps = static_cast<double>(c.head) / ring.data_capacity_bytes();
    INFO("rank " << rank << " ring laps " << laps);
    REQUIRE(laps >= layout.min_laps);
  }

  const slime::buffer::RingStats& s = ring.stats();
  int64_t totals[5] = {s.messages_put, s.messages_popped, s.bytes_put, s.bytes_popped, s.full_waits};
  MPI_Allreduce(MPI_IN_PLACE, totals, 5, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
  REQUIRE(totals[0] == static_cast<int64_t>(layout.producers.size()) * layout.messages_per_producer);
  REQUIRE(totals[1] == totals[0]);
  REQUIRE(totals[3] == totals[2]);
  if (layout.expect_full_waits) REQUIRE(totals[4] > 0);
  MPI_Allreduce(MPI_IN_PLACE, &laps, 1, MPI_DOUBLE, MPI_MIN, MPI_COMM_WORLD);
  ring.free();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();
  if (rank == 0)
    std::printf("[buffer_test] %s: %lld messages, %lld bytes, %lld full-ring waits, capacity %lld, >= %.1f "
                "wraps per ring, %.2f s (memory model %s)\n",
                layout.name.c_str(), static_cast<long long>(totals[0]), static_cast<long long>(totals[2]),
                static_cast<long long>(totals[4]), static_cast<long long>(layout.capacity), laps, seconds,
                ring.memory_model() == MPI_WIN_UNIFIED ? "unified" : "separate");
}

}  // namespace

TEST_CASE("RmaRing: 2 producers, 2 consumers, variable sizes, many wraps", "[buffer][mpi]") {
  Layout layout;
  layout.name = "2 producers + 2 consumers";
  layout.producers = {0, 1};
  layout.consumers = {2, 3};
  layout.capacity = 8192;
  layout.messages_per_producer = 400;
  layout.min_laps = 10;
  run_layout(layout);
}

TEST_CASE("RmaRing: 3 producers, 1 slow consumer, full ring", "[buffer][mpi]") {
  Layout layout;
  layout.name = "3 producers + 1 slow consumer";
  layout.producers = {0, 1, 2};
  layout.consumers = {3};
  layout.capacity = 2048;
  layout.messages_per_producer = 150;
  layout.slow_pops = 60;
  layout.min_laps = 20;
  layout.expect_full_waits = true;
  run_layout(layout);
}

TEST_CASE("RmaRing: colocated ranks produce and consume, including into their own ring", "[buffer][mpi]") {
  Layout layout;
  layout.name = "4 producers, ranks 0 and 2 also consumers";
  layout.producers = {0, 1, 2, 3};
  layout.consumers = {0, 2};
  layout.capacity = 4096;
  layout.messages_per_producer = 200;
  layout.slow_pops = 20;
  layout.min_laps = 10;
  run_layout(layout);
}

TEST_CASE("RmaRing: errors and the largest message", "[buffer][mpi]") {
  REQUIRE(world_size() == 4);
  const int rank = world_rank();
  RmaRing ring(MPI_COMM_WORLD, {1}, 1024);
  const int64_t max_message = ring.max_message_bytes();
  REQUIRE(max_message == 1024 - RmaRing::kHeaderBytes - RmaRing::kRecordHeaderBytes);
  std::vector<char> big(max_message + 1, 'x');
  CHECK_THROWS_WITH(ring.put(1, big.data(), max_message + 1),
                    Contains(std::to_string(max_message + 1)) && Contains("capacity 1024"));
  CHECK_THROWS_WITH(ring.try_put(1, big.data(), max_message + 1), Contains(std::to_string(max_message + 1)));
  CHECK_THROWS_WITH(ring.put(0, big.data(), 8), Contains("rank 0 hosts no ring"));
  if (rank == 1) {
    CHECK_THROWS_WITH(ring.pop(0.05), Contains("waited") && Contains("head 0"));
  } else {
    CHECK_THROWS_WITH(ring.try_pop(), Contains("hosts no ring"));
  }
  MPI_Barrier(MPI_COMM_WORLD);
  // The largest message fits exactly; two of them in a row need the consumer to free the first.
  if (rank == 0) {
    for (int i = 0; i < 2; ++i) {
      std::vector<char> message(max_message, static_cast<char>('a' + i));
      ring.put(1, message.data(), max_message, 20.0);
    }
  }
  if (rank == 1) {
    for (int i = 0; i < 2; ++i) {
      const std::vector<char> message = ring.pop(20.0);
      REQUIRE(message == std::vector<char>(max_message, static_cast<char>('a' + i)));
    }
  }
  ring.free();
  ring.free();  // idempotent
}

TEST_CASE("RmaRing: encoded samples and an end-of-rollout control message", "[buffer][mpi]") {
  REQUIRE(world_size() == 4);
  const int rank = world_rank();
  RmaRing ring(MPI_COMM_WORLD, {0}, 1 << 14);
  const int count = 20;
  if (rank != 0) {
    for (int i = 0; i < count; ++i) {
      slime::buffer::BufferedSample s;
      s.index = rank * 1000 + i;
      s.sample.tokens.assign(10 + i, rank);
      s.sample.response_length = 4;
      s.sample.reward = 0.5f * i;
      const std::vector<char> bytes = slime::buffer::encode_sample(s);
      ring.put(0, bytes.data(), static_cast<int64_t>(bytes.size()), 20.0);
    }
    slime::buffer::BufferControl end{slime::buffer::kControlEndOfRollout, 7, count, "{\"rank\": " +
                                     std::to_string(rank) + "}"};
    const std::vector<char> bytes = slime::buffer::encode_control(end);
    ring.put(0, bytes.data(), static_cast<int64_t>(bytes.size()), 20.0);
  } else {
    std::map<int, int> samples_from, ended;
    while (ended.size() < 3) {
      const std::vector<char> message = ring.pop(20.0);
      if (slime::buffer::is_control_message(message.data(), message.size())) {
        const auto control = slime::buffer::decode_control(message.data(), message.size(), "test ring");
        REQUIRE(control.kind == slime::buffer::kControlEndOfRollout);
        REQUIRE(control.rollout_id == 7);
        const int from = std::stoi(control.json.substr(9));
        REQUIRE(samples_from[from] == control.count);  // every sample of a producer precedes its end marker
        ended[from] = 1;
      } else {
        const auto s = slime::buffer::decode_sample(message.data(), message.size(), "test ring");
        const int from = static_cast<int>(s.index / 1000);
        REQUIRE(s.index % 1000 == samples_from[from]);
        REQUIRE(s.sample.tokens == std::vector<int64_t>(10 + s.index % 1000, from));
        samples_from[from] += 1;
      }
    }
  }
  ring.free();
}
