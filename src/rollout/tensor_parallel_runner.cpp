#include "rollout/tensor_parallel_runner.h"

#include <cstring>

#include "comm/mpi_utils.h"
#include "core/error.h"
#include "rollout/remote_engine.h"

namespace slime::rollout {
namespace {

enum : int64_t { kRun = 1, kRelease = 2 };

int64_t float_bits(float f) {
  uint32_t u = 0;
  std::memcpy(&u, &f, sizeof u);
  return u;
}
float bits_float(int64_t bits) {
  const uint32_t u = static_cast<uint32_t>(bits);
  float f = 0;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

// A step on the wire: per chunk, what the runners read of it and of its sequence.
//   start, count, samples, prompt_length, num_tokens, top_k, seed, temperature, top_p, table size,
//   tokens [start, start + count), block table
std::vector<int64_t> encode_step(const std::vector<ScheduledChunk>& chunks) {
  std::vector<int64_t> m;
  for (const ScheduledChunk& c : chunks) {
    const Sequence& s = *c.seq;
    m.insert(m.end(), {c.start, c.count, c.samples ? 1 : 0, s.prompt_length, s.num_tokens(), s.params.top_k,
                       static_cast<int64_t>(s.params.seed), float_bits(s.params.temperature),
                       float_bits(s.params.top_p), static_cast<int64_t>(s.block_table.size())});
    m.insert(m.end(), s.tokens.begin() + c.start, s.tokens.begin() + c.start + c.count);
    m.insert(m.end(), s.block_table.begin(), s.block_table.end());
  }
  return m;
}

// The chunks of an encoded step over `storage` (sequences holding just what the runners read).
std::vector<ScheduledChunk> decode_step(const std::vector<int64_t>& m, std::vector<Sequence>& storage) {
  storage.clear();
  size_t at = 0;
  auto next = [&] {
    SLIME_CHECK(at < m.size(), "tensor-parallel engine: a truncated step message (", m.size(), " values)");
    return m[at++];
  };
  std::vector<std::pair<int64_t, int64_t>> spans;  // (start, count) of each chunk
  std::vector<bool> samples;
  while (at < m.size()) {
    Sequence s;
    const int64_t start = next(), count = next();
    samples.push_back(next() != 0);
    s.prompt_length = next();
    s.tokens.assign(static_cast<size_t>(next()), 0);
    s.params.top_k = next();
    s.params.seed = static_cast<uint64_t>(next());
    s.params.temperature = bits_float(next());
    s.params.top_p = bits_float(next());
    s.block_table.resize(static_cast<size_t>(next()));
    SLIME_CHECK(start >= 0 && count >= 0 && start + count <= s.num_tokens(),
                "tensor-parallel engine: a step message with chunk [", start, ", ", start + count, ") of a ",
                s.num_tokens(), "-token sequence");
    for (int64_t i = 0; i < count; ++i) s.tokens[static_cast<size_t>(start + i)] = next();
    for (int32_t& b : s.block_table) b = static_cast<int32_t>(next());
    spans.emplace_back(start, count);
    storage.push_back(std::move(s));
  }
  std::vector<ScheduledChunk> chunks;
  for (size_t i = 0; i < storage.size(); ++i)
    chunks.push_back(ScheduledChunk{&storage[i], spans[i].first, spans[i].second, samples[i]});
  return chunks;
}

// TP rank 0's side of a message: the header by a nonblocking broadcast (followers poll for it), the body (a step)
// by a blocking one. An empty message releases the followers.
void send(const std::vector<int64_t>& message, const comm::Group& tp) {
  int64_t header[2] = {message.empty() ? kRelease : kRun, static_cast<int64_t>(message.size())};
  MPI_Request request;
  mpiCheck(MPI_Ibcast(header, 2, MPI_INT64_T, 0, tp.comm, &request));
  mpiCheck(MPI_Wait(&request, MPI_STATUS_IGNORE));
  if (!message.empty())
    mpiCheck(MPI_Bcast(const_cast<int64_t*>(message.data()), static_cast<int>(message.size()), MPI_INT64_T, 0,
                       tp.comm));
}

}  // namespace

TensorParallelRunner::TensorParallelRunner(std::unique_ptr<ModelRunner> inner, const comm::Group& tp)
    : inner_(std::move(inner)), tp_(tp) {
  SLIME_CHECK(!tp_.single() && tp_.rank == 0, "TensorParallelRunner runs on TP rank 0 of a group of several ranks");
}

TensorParallelRunner::~TensorParallelRunner() = default;

std::vector<SampledToken> TensorParallelRunner::run(const std::vector<ScheduledChunk>& chunks) {
  if (chunks.empty()) return {};
  send(encode_step(chunks), tp_);
  return inner_->run(chunks);
}

void TensorParallelRunner::release_followers() { release_engine_followers(tp_); }

void release_engine_followers(const comm::Group& tp) {
  if (tp.single()) return;
  SLIME_CHECK(tp.rank == 0, "release_engine_followers runs on TP rank 0 of an engine");
  send({}, tp);
}

int64_t follow_engine(ModelRunner& runner, const comm::Group& tp) {
  SLIME_CHECK(!tp.single() && tp.rank > 0, "follow_engine runs on a TP rank > 0 of a tensor-parallel engine");
  std::vector<Sequence> storage;
  std::vector<int64_t> message;
  int64_t steps = 0;
  for (;;) {
    int64_t header[2] = {0, 0};
    MPI_Request request;
    mpiCheck(MPI_Ibcast(header, 2, MPI_INT64_T, 0, tp.comm, &request));
    for (int polls = 0;; ++polls) {
      int done = 0;
      mpiCheck(MPI_Test(&request, &done, MPI_STATUS_IGNORE));
      if (done) break;
      idle_wait(polls);
    }
    if (header[0] == kRelease) return steps;
    SLIME_CHECK(header[0] == kRun && header[1] > 0, "tensor-parallel engine: unexpected message ", header[0],
                " from TP rank 0");
    message.resize(static_cast<size_t>(header[1]));
    mpiCheck(MPI_Bcast(message.data(), static_cast<int>(message.size()), MPI_INT64_T, 0, tp.comm));
    runner.run(decode_step(message, storage));
    ++steps;
  }
}

}  // namespace slime::rollout
