// Weight sync (see weight_sync.h): the stream of full fp32 tensors in registration order, cut into buckets,
// assembled on the source from the trainer's TP shards, broadcast with MPI_Ibcast (two buckets in flight), and
// unpacked by each receiver into its own shards.
//
// Everything is expressed as "stream runs": (offset in the stream, offset in a flat parameter buffer, count).
// A rank's runs are sorted by stream offset, so walking the buckets in order walks each run list once.
#include "sync/weight_sync.h"

#include <algorithm>
#include <climits>
#include <cstring>

#include "comm/mpi_utils.h"
#include "core/error.h"

namespace slime::sync {
namespace {

using model::Param;
using model::ParamRegistry;

using model::StreamRun;
using model::stream_numel;
using model::stream_runs;

// Calls fn(stream, local, count) for the parts of the runs that fall in [begin, end). `cursor` skips the runs that
// end before `begin`; buckets must be visited in increasing order.
template <class Fn>
void for_each_piece(const std::vector<StreamRun>& runs, size_t& cursor, int64_t begin, int64_t end, Fn&& fn) {
  while (cursor < runs.size() && runs[cursor].stream + runs[cursor].count <= begin) ++cursor;
  for (size_t i = cursor; i < runs.size() && runs[i].stream < end; ++i) {
    const int64_t lo = std::max(begin, runs[i].stream);
    const int64_t hi = std::min(end, runs[i].stream + runs[i].count);
    if (hi > lo) fn(lo, runs[i].local + (lo - runs[i].stream), hi - lo);
  }
}

std::string manifest_line(const Param& p) { return cat(p.name, " ", shape_str(p.global_shape)); }

std::vector<std::string> manifest(const ParamRegistry& params) {
  std::vector<std::string> lines;
  for (const Param& p : params.all()) lines.push_back(manifest_line(p));
  return lines;
}

uint64_t fnv1a(const std::vector<std::string>& lines) {
  uint64_t h = 1469598103934665603ULL;
  for (const std::string& line : lines) {
    for (unsigned char c : line) h = (h ^ c) * 1099511628211ULL;
    h = (h ^ '\n') * 1099511628211ULL;
  }
  return h;
}

uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

// The message of the lowest rank of `comm` that has one (empty when no rank has). Collective.
std::string first_error(const std::string& local_error, MPI_Comm comm) {
  int first = local_error.empty() ? INT_MAX : comm::rank(comm);
  mpiCheck(MPI_Allreduce(MPI_IN_PLACE, &first, 1, MPI_INT, MPI_MIN, comm));
  if (first == INT_MAX) return {};
  std::string message = local_error;
  comm::broadcast(message, first, comm);
  return message;
}

// Raises the first rank's error on every rank, so that no rank is left waiting in a later collective.
void raise_collectively(const std::string& local_error, MPI_Comm comm) {
  const std::string message = first_error(local_error, comm);
  if (!message.empty()) SLIME_FAIL("weight sync: ", message);
}

std::string join_lines(const std::vector<std::string>& lines) {
  std::string text;
  for (const std::string& line : lines) text += line + "\n";
  return text;
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    lines.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return lines;
}

// The first difference between the trainer's manifest and an engine's, in words.
std::string describe_mismatch(const std::vector<std::string>& trainer, const std::vector<std::string>& engine) {
  const size_t n = std::min(trainer.size(), engine.size());
  for (size_t i = 0; i < n; ++i) {
    if (trainer[i] != engine[i])
      return cat("parameter #", i, ": the trainer has '", trainer[i], "', the engine has '", engine[i], "'");
  }
  if (trainer.size() != engine.size()) {
    return cat("the trainer has ", trainer.size(), " parameters, the engine has ", engine.size(), "; first unmatched: ",
               trainer.size() > n ? cat("trainer '", trainer[n], "'") : cat("engine '", engine[n], "'"));
  }
  return "same names and shapes, different header (internal error)";
}

// Roles and arguments of one call, checked on every rank (an error on any rank is raised everywhere).
std::string check_roles(int rank, bool is_trainer, bool is_receiver, bool is_source, const model::Decoder* trainer,
                        const comm::ParallelGroups* groups, const model::Decoder* engine, int source) {
  if (is_trainer && (trainer == nullptr || groups == nullptr))
    return cat("rank ", rank, " is a trainer rank but passed no trainer model or process groups");
  if (!is_trainer && (trainer != nullptr || groups != nullptr))
    return cat("rank ", rank, " passed a trainer model but the WeightSync was built with is_trainer=false");
  if (is_receiver && engine == nullptr)
    return cat("rank ", rank, " is a receiver but passed no engine model");
  if (!is_receiver && engine != nullptr)
    return cat("rank ", rank, " passed an engine model but the WeightSync was built with is_receiver=false");
  if (is_trainer) {
    if (is_source && groups->pool.rank != 0)
      return cat("rank ", rank, " was chosen as the source but is trainer pool rank ", groups->pool.rank,
                 " (pass trainer_pool_rank to the WeightSync constructor)");
    if (!is_source && groups->pool.rank == 0)
      return cat("rank ", rank, " is trainer pool rank 0 but rank ", source,
                 " was chosen as the source (pass trainer_pool_rank to the WeightSync constructor)");
    if (trainer->params().flat_values().numel() != trainer->params().numel() || !trainer->params().allocated())
      return cat("rank ", rank, ": the trainer model's parameters are not allocated");
  }
  if (is_receiver && !engine->params().allocated())
    return cat("rank ", rank, ": the engine model's parameters are not allocated");
  return {};
}

enum HeaderField { kParams, kHash, kNumel, kVersion, kBucketElems, kBuckets, kHeaderSize };

}  // namespace

WeightSync::WeightSync(MPI_Comm comm, bool is_trainer, bool is_receiver, int64_t bucket_bytes, int trainer_pool_rank)
    : is_trainer_(is_trainer), is_receiver_(is_receiver) {
  mpiCheck(MPI_Comm_dup(comm, &comm_));
  rank_ = comm::rank(comm_);
  std::string error;
  if (bucket_bytes < static_cast<int64_t>(sizeof(float)) ||
      bucket_bytes / static_cast<int64_t>(sizeof(float)) > INT_MAX)
    error = cat("rank ", rank_, ": --update-weight-buffer-size ", bucket_bytes,
                " bytes: expected at least 4 bytes (one fp32 value) and at most 8 GiB (one MPI broadcast per bucket)");
  raise_collectively(error, comm_);
  bucket_elems_ = bucket_bytes / static_cast<int64_t>(sizeof(float));

  // The source: the trainer that says it is pool rank 0, else the lowest trainer rank.
  int candidates[3] = {is_trainer && trainer_pool_rank == 0 ? rank_ : INT_MAX, is_trainer ? rank_ : INT_MAX,
                       is_trainer && trainer_pool_rank == 0 ? 1 : 0};
  mpiCheck(MPI_Allreduce(MPI_IN_PLACE, candidates, 2, MPI_INT, MPI_MIN, comm_));
  mpiCheck(MPI_Allreduce(MPI_IN_PLACE, &candidates[2], 1, MPI_INT, MPI_SUM, comm_));
  SLIME_CHECK(candidates[1] != INT_MAX, "weight sync: no rank of the communicator is a trainer rank");
  SLIME_CHECK(candidates[2] <= 1, "weight sync: ", candidates[2], " ranks say they are trainer pool rank 0");
  source_ = candidates[0] != INT_MAX ? candidates[0] : candidates[1];

  // Broadcast communicator: the source first (rank 0), then the receivers in `comm` order.
  const bool member = rank_ == source_ || is_receiver;
  mpiCheck(MPI_Comm_split(comm_, member ? 0 : MPI_UNDEFINED, rank_ == source_ ? 0 : rank_ + 1, &bcast_comm_));
}

WeightSync::~WeightSync() {
  if (bcast_comm_ != MPI_COMM_NULL) MPI_Comm_free(&bcast_comm_);
  if (comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
}

SyncStats WeightSync::sync(const model::Decoder* trainer_model, const comm::ParallelGroups* groups,
                           model::Decoder* engine_model, int64_t version) {
  const double t0 = MPI_Wtime();
  raise_collectively(check_roles(rank_, is_trainer_, is_receiver_, is_source(), trainer_model, groups, engine_model,
                                 source_),
                     comm_);

  // Header: what the source will send.
  int64_t header[kHeaderSize] = {};
  std::vector<std::string> trainer_manifest;
  if (is_source()) {
    const ParamRegistry& params = trainer_model->params();
    trainer_manifest = manifest(params);
    header[kParams] = static_cast<int64_t>(params.all().size());
    header[kHash] = static_cast<int64_t>(fnv1a(trainer_manifest));
    header[kNumel] = stream_numel(params);
    header[kVersion] = version;
    header[kBucketElems] = bucket_elems_;
    header[kBuckets] = (header[kNumel] + bucket_elems_ - 1) / bucket_elems_;
  }
  mpiCheck(MPI_Bcast(header, kHeaderSize, MPI_INT64_T, source_, comm_));
  std::vector<std::string> engine_manifest;
  bool differs = false;
  if (is_receiver_) {
    engine_manifest = manifest(engine_model->params());
    differs = static_cast<int64_t>(engine_manifest.size()) != header[kParams] ||
              static_cast<int64_t>(fnv1a(engine_manifest)) != header[kHash] ||
              stream_numel(engine_model->params()) != header[kNumel];
  }
  if (comm::allreduce_or(differs, comm_)) {
    std::string text = join_lines(trainer_manifest);
    comm::broadcast(text, source_, comm_);
    std::string error;
    if (differs)
      error = cat("rank ", rank_, ": the rollout engine's model differs from the trainer's (version ", header[kVersion],
                  "): ", describe_mismatch(split_lines(text), engine_manifest));
    raise_collectively(error, comm_);
  }
  const int64_t numel = header[kNumel], bucket = header[kBucketElems], buckets = header[kBuckets];

  // Trainer side: the data-parallel rank 0 replica's TP ranks feed the source.
  const bool feeder = is_trainer_ && groups->dp.rank == 0;
  const bool tp_gather = feeder && groups->tp.size > 1;
  std::vector<StreamRun> own_runs;
  if (feeder) own_runs = stream_runs(trainer_model->params(), groups->tp.rank == 0);
  std::vector<std::vector<StreamRun>> peer_runs;  // on the source with tp_gather: [tp rank] runs (local unused)
  if (tp_gather) {
    const MPI_Comm tp = groups->tp.comm;
    const int tp_size = groups->tp.size;
    std::vector<int64_t> flat;
    for (const StreamRun& r : own_runs) flat.insert(flat.end(), {r.stream, r.count});
    int count = static_cast<int>(flat.size());
    std::vector<int> counts(is_source() ? tp_size : 0), displs(is_source() ? tp_size : 0);
    mpiCheck(MPI_Gather(&count, 1, MPI_INT, counts.data(), 1, MPI_INT, 0, tp));
    std::vector<int64_t> all;
    if (is_source()) {
      int64_t total = 0;
      for (int r = 0; r < tp_size; ++r) {
        displs[r] = static_cast<int>(total);
        total += counts[r];
      }
      SLIME_ASSERT(total <= INT_MAX, "too many shard runs to gather");
      all.resize(total);
    }
    mpiCheck(MPI_Gatherv(flat.data(), count, MPI_INT64_T, all.data(), counts.data(), displs.data(), MPI_INT64_T, 0,
                         tp));
    if (is_source()) {
      peer_runs.resize(tp_size);
      for (int r = 1; r < tp_size; ++r)
        for (int i = 0; i < counts[r]; i += 2)
          peer_runs[r].push_back({all[displs[r] + i], 0, all[displs[r] + i + 1]});
    }
  }
  // The source checks that its runs and its peers' cover the stream exactly once.
  std::string coverage_error;
  if (is_source()) {
    std::vector<StreamRun> every = own_runs;
    for (const auto& runs : peer_runs) every.insert(every.end(), runs.begin(), runs.end());
    std::sort(every.begin(), every.end(), [](const StreamRun& a, const StreamRun& b) { return a.stream < b.stream; });
    int64_t next = 0;
    for (const StreamRun& r : every) {
      if (r.stream != next) {
        coverage_error = cat("the trainer's TP shards do not cover the parameters exactly once (gap or overlap at "
                             "element ", std::min(next, r.stream), " of ", numel, ")");
        break;
      }
      next += r.count;
    }
    if (coverage_error.empty() && next != numel)
      coverage_error = cat("the trainer's TP shards cover ", next, " of ", numel, " elements");
  }
  raise_collectively(coverage_error, comm_);

  // With TP=1 (one run, stream == flat buffer) the source broadcasts straight from its parameters.
  const bool zero_copy = is_source() && !tp_gather && own_runs.size() <= 1 &&
                         (own_runs.empty() || (own_runs[0].stream == 0 && own_runs[0].local == 0));
  const bool in_bcast = bcast_comm_ != MPI_COMM_NULL;
  const bool broadcasting = in_bcast && comm::size(bcast_comm_) > 1;
  const int64_t bucket_cap = std::min(bucket, numel);
  // Kept across syncs: fresh pages are costly to fault in (tens of ms per sync for a few MB on some hosts).
  std::vector<float>* buffers = buffers_;
  if (in_bcast && !zero_copy)
    for (int i = 0; i < 2; ++i)
      if (buffers_[i].size() < static_cast<size_t>(bucket_cap)) buffers_[i].resize(bucket_cap);
  std::vector<float>& stage = stage_;  // gathered pieces (source) or this rank's pieces (TP peers)
  if (tp_gather && stage_.size() < static_cast<size_t>(bucket_cap)) stage_.resize(bucket_cap);

  const float* trainer_flat = feeder ? trainer_model->params().flat_values().data<float>() : nullptr;
  float* engine_flat = is_receiver_ ? engine_model->params().flat_values().data<float>() : nullptr;
  std::vector<StreamRun> receive_runs;
  if (is_receiver_) receive_runs = stream_runs(engine_model->params(), /*include_replicated=*/true);

  size_t own_cursor = 0, receive_cursor = 0;
  std::vector<size_t> peer_cursors(peer_runs.size(), 0);
  MPI_Request requests[2] = {MPI_REQUEST_NULL, MPI_REQUEST_NULL};
  const float* slot_data[2] = {nullptr, nullptr};
  int64_t slot_begin[2] = {0, 0};

  // Copies this receiver's shards out of the bucket in `slot` once its broadcast has arrived.
  auto unpack = [&](int slot) {
    mpiCheck(MPI_Wait(&requests[slot], MPI_STATUS_IGNORE));
    const int64_t begin = slot_begin[slot], end = std::min(numel, begin + bucket);
    const float* data = slot_data[slot];
    for_each_piece(receive_runs, receive_cursor, begin, end, [&](int64_t stream, int64_t local, int64_t count) {
      std::memmove(engine_flat + local, data + (stream - begin), count * sizeof(float));
    });
  };

  for (int64_t k = 0; k < buckets; ++k) {
    const int slot = static_cast<int>(k % 2);
    const int64_t begin = k * bucket, end = std::min(numel, begin + bucket), n = end - begin;
    float* data = nullptr;
    if (is_source()) {
      if (zero_copy) {
        data = const_cast<float*>(trainer_flat) + begin;
      } else {
        mpiCheck(MPI_Wait(&requests[slot], MPI_STATUS_IGNORE));  // bucket k-2 has left this buffer
        data = buffers[slot].data();
        for_each_piece(own_runs, own_cursor, begin, end, [&](int64_t stream, int64_t local, int64_t count) {
          std::memcpy(data + (stream - begin), trainer_flat + local, count * sizeof(float));
        });
        if (tp_gather) {
          const int tp_size = groups->tp.size;
          std::vector<int> counts(tp_size, 0), displs(tp_size, 0);
          std::vector<std::vector<std::pair<int64_t, int64_t>>> pieces(tp_size);  // (stream, count)
          int64_t total = 0;
          for (int r = 1; r < tp_size; ++r) {
            displs[r] = static_cast<int>(total);
            for_each_piece(peer_runs[r], peer_cursors[r], begin, end, [&](int64_t stream, int64_t, int64_t count) {
              pieces[r].push_back({stream, count});
              counts[r] += static_cast<int>(count);
            });
            total += counts[r];
          }
          mpiCheck(MPI_Gatherv(nullptr, 0, MPI_FLOAT, stage.data(), counts.data(), displs.data(), MPI_FLOAT, 0,
                               groups->tp.comm));
          for (int r = 1; r < tp_size; ++r) {
            const float* from = stage.data() + displs[r];
            for (const auto& [stream, count] : pieces[r]) {
              std::memcpy(data + (stream - begin), from, count * sizeof(float));
              from += count;
            }
          }
        }
      }
    } else {
      if (tp_gather) {  // a TP peer of the source: send this rank's pieces of bucket k
        int64_t count = 0;
        for_each_piece(own_runs, own_cursor, begin, end, [&](int64_t, int64_t local, int64_t c) {
          std::memcpy(stage.data() + count, trainer_flat + local, c * sizeof(float));
          count += c;
        });
        mpiCheck(MPI_Gatherv(stage.data(), static_cast<int>(count), MPI_FLOAT, nullptr, nullptr, nullptr, MPI_FLOAT,
                             0, groups->tp.comm));
      }
      if (in_bcast) data = buffers[slot].data();  // bucket k-2 was unpacked from it last iteration
    }
    if (broadcasting)
      mpiCheck(MPI_Ibcast(data, static_cast<int>(n), MPI_FLOAT, 0, bcast_comm_, &requests[slot]));
    slot_data[slot] = data;
    slot_begin[slot] = begin;
    if (is_receiver_ && k > 0) unpack(1 - slot);  // bucket k-1, while bucket k is in flight
  }
  if (is_receiver_ && buckets > 0) unpack(static_cast<int>((buckets - 1) % 2));
  mpiCheck(MPI_Waitall(2, requests, MPI_STATUSES_IGNORE));

  SyncStats stats;
  stats.seconds = MPI_Wtime() - t0;
  stats.bytes = numel * static_cast<int64_t>(sizeof(float));
  stats.buckets = buckets;
  stats.version = header[kVersion];
  return stats;
}

std::vector<uint64_t> local_param_checksums(const model::Decoder& model) {
  std::vector<uint64_t> sums;
  for (const Param& p : model.params().all()) {
    uint64_t sum = 0;
    if (!p.replicated() || model.tp().rank == 0) {
      const float* values = p.value.data<float>();
      for (const model::ShardRun& r : model::shard_runs(p)) {
        for (int64_t j = 0; j < r.count; ++j) {
          uint32_t bits;
          std::memcpy(&bits, values + r.local + j, sizeof(bits));
          sum += splitmix64(splitmix64(static_cast<uint64_t>(r.global + j)) ^ bits);
        }
      }
    }
    sums.push_back(sum);
  }
  return sums;
}

bool WeightSync::check_weights_equal(const model::Decoder* trainer_model, const comm::ParallelGroups* groups,
                                     const model::Decoder* engine_model, std::string* report) {
  raise_collectively(check_roles(rank_, is_trainer_, is_receiver_, is_source(), trainer_model, groups, engine_model,
                                 source_),
                     comm_);
  std::vector<uint64_t> trainer_sums;
  if (is_trainer_ && groups->dp.rank == 0) {
    trainer_sums = local_param_checksums(*trainer_model);
    if (groups->tp.size > 1)
      mpiCheck(MPI_Allreduce(MPI_IN_PLACE, trainer_sums.data(), static_cast<int>(trainer_sums.size()), MPI_UINT64_T,
                             MPI_SUM, groups->tp.comm));
  }
  std::vector<uint64_t> engine_sums;
  if (is_receiver_) {
    engine_sums = local_param_checksums(*engine_model);
    if (engine_model->tp().size > 1)
      mpiCheck(MPI_Allreduce(MPI_IN_PLACE, engine_sums.data(), static_cast<int>(engine_sums.size()), MPI_UINT64_T,
                             MPI_SUM, engine_model->tp().comm));
  }
  int64_t count = static_cast<int64_t>(trainer_sums.size());
  mpiCheck(MPI_Bcast(&count, 1, MPI_INT64_T, source_, comm_));
  trainer_sums.resize(count);
  mpiCheck(MPI_Bcast(trainer_sums.data(), static_cast<int>(count), MPI_UINT64_T, source_, comm_));

  std::string error;
  if (is_receiver_) {
    const auto& params = engine_model->params().all();
    if (static_cast<int64_t>(engine_sums.size()) != count) {
      error = cat("rank ", rank_, ": the engine has ", engine_sums.size(), " parameters, the trainer ", count);
    } else {
      for (int64_t i = 0; i < count; ++i) {
        if (engine_sums[i] != trainer_sums[i]) {
          error = cat("rank ", rank_, " (rollout engine TP rank ", engine_model->tp().rank, " of ",
                      engine_model->tp().size, "): parameter '", params[i].name, "' ",
                      shape_str(params[i].global_shape), " differs from the trainer's (checksum of the full tensor ",
                      engine_sums[i], " vs ", trainer_sums[i], ")");
          break;
        }
      }
    }
  }
  const std::string first = first_error(error, comm_);
  if (report) *report = first;
  return first.empty();
}

}  // namespace slime::sync
