// Weight sync: after a training step, the trainer's weights reach every rollout engine, resharded from the
// trainer's tensor-parallel layout to each engine's (slime's update_weights from the distributed trainer).
//
// The wire format is one "stream": the full (TP=1) tensors of every parameter, fp32, in registration order
// (Megatron's module order), concatenated. The stream is cut into buckets of at most --update-weight-buffer-size
// bytes; a parameter that crosses a bucket boundary is simply split, so a parameter bigger than a bucket is fine.
//
//   1. The trainer's data-parallel rank 0 replica assembles each bucket on the source (trainer pool rank 0): every
//      TP rank sends the pieces of its shards that fall into the bucket (MPI_Gatherv over the TP group); which
//      pieces come from which rank follows from each rank's shard runs (`shard_runs`), exchanged once per sync.
//      With TP=1 the trainer's flat parameter buffer IS the stream, and buckets go out without a copy.
//   2. Before the first bucket the source broadcasts a header (parameter count, hash of names and shapes, total
//      elements, version); a receiver whose model differs makes every rank fail with an error naming the first
//      parameter whose name or shape differs.
//   3. The source broadcasts bucket k (MPI_Ibcast over a communicator of the source and the receivers) while it
//      assembles bucket k+1; receivers unpack bucket k while bucket k+1 is in flight (two buffers each side).
//   4. Each receiver copies, out of each bucket, the runs of the stream that its engine's shards hold (its own
//      Params' blocks): any engine TP layout works, nothing is assembled at full size on a receiver.
//
// Colocation: a rank may be trainer and receiver at once. The source unpacks from the buffer it broadcasts (with
// TP=1 straight from its trainer's parameters), never through MPI.
#pragma once

#include <mpi.h>

#include <cstdint>
#include <string>
#include <vector>

#include "comm/parallel.h"
#include "model/decoder.h"

namespace slime::sync {

struct SyncStats {
  double seconds = 0;   // wall time of the sync on this rank
  int64_t bytes = 0;    // size of the stream: the full fp32 tensors of every parameter
  int64_t buckets = 0;  // buckets the stream was cut into (broadcast unless the source is the only receiver)
  int64_t version = 0;  // the version the source sent
};

class WeightSync {
 public:
  // Collective over `comm`, which holds every trainer-pool rank and every engine rank (one rank may be both).
  // The source is the trainer rank whose trainer_pool_rank is 0; a trainer that passes -1 counts as "unknown", and
  // when no trainer passes 0 the lowest `comm` rank among the trainers is the source (sync() checks that it is
  // trainer pool rank 0). bucket_bytes: --update-weight-buffer-size (at least 4; the same on every rank).
  WeightSync(MPI_Comm comm, bool is_trainer, bool is_receiver, int64_t bucket_bytes, int trainer_pool_rank = -1);
  ~WeightSync();
  WeightSync(const WeightSync&) = delete;
  WeightSync& operator=(const WeightSync&) = delete;

  // Collective over `comm`. Trainer ranks pass their model and process groups, receivers their engine model
  // (nullptr where a rank has no such role). Every receiver ends with its shards of the trainer's weights, bit for
  // bit. Errors (a model that differs, a role passed without its model, ...) are raised on every rank with the same
  // message, so no rank is left waiting in a collective.
  SyncStats sync(const model::Decoder* trainer_model, const comm::ParallelGroups* groups, model::Decoder* engine_model,
                 int64_t version);

  // --check-weight-update-equal. Collective over `comm`: per-parameter checksums of the full tensors (a sum of a
  // hash of every element's position and bits, so shards add up across a TP group) on the trainer's data-parallel
  // rank 0 replica and on every engine. Returns the same answer on every rank; when false, `report` (if given)
  // names the first receiver rank and parameter that differ.
  bool check_weights_equal(const model::Decoder* trainer_model, const comm::ParallelGroups* groups,
                           const model::Decoder* engine_model, std::string* report = nullptr);

  int source_rank() const { return source_; }  // in `comm`
  // The source (rank 0) and the receivers; MPI_COMM_NULL on other ranks (sync/device_weight_sync.h uses it too).
  MPI_Comm bcast_comm() const { return bcast_comm_; }
  bool is_source() const { return rank_ == source_; }
  int64_t bucket_bytes() const { return bucket_elems_ * static_cast<int64_t>(sizeof(float)); }

 private:
  MPI_Comm comm_;
  MPI_Comm bcast_comm_ = MPI_COMM_NULL;  // source (rank 0) + receivers; null on the other ranks
  bool is_trainer_, is_receiver_;
  int rank_ = 0, source_ = 0;
  int64_t bucket_elems_ = 0;
  std::vector<float> buffers_[2];  // bucket buffers, reused by every sync
  std::vector<float> stage_;       // TP gather staging, reused
};

// Order-independent checksum of the full tensor of each parameter held (in part) by `model`: the sum over this
// rank's elements of hash(global index, bits); replicated parameters count only on TP rank 0 of the model's group,
// so summing over the group gives the full tensor's checksum. Not reduced: the caller sums over the TP group.
std::vector<uint64_t> local_param_checksums(const model::Decoder& model);

}  // namespace slime::sync
