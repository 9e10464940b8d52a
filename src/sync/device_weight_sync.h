// Weight sync on the GPU: with the trainer and every engine on GPUs (--backend cuda) and --update-weight-transport
// nccl (the default), the trainer's device weights go straight into the engines' device weights, without host memory.
//
// What travels is what the engines' kernels read (model::DeviceWeights), in registry order:
//   - bf16: the trainer's bf16 compute copy of every parameter (the optimizer keeps it current, rounded as the host
//     path's reload rounds), then the 1-D parameters (norm weights, biases) in fp32, back to back;
//   - fp32 (models without a bf16 attention kernel): the fp32 master weights.
// Both ends hold exactly these buffers already, so nothing is packed or unpacked: the source broadcasts bucket by
// bucket (--update-weight-buffer-size) from its buffers into the engines' (only the small 1-D parameter block is
// gathered first). The collectives are comm::DeviceComm's over the source and the engine ranks (the broadcast
// communicator of sync::WeightSync): NCCL when each has a GPU of its own, host-staged MPI when they share one. A rank
// that is both trainer and engine (--colocate) copies device to device.
//
// Tensor-parallel engines (--rollout-num-gpus-per-engine > 1) hold their shards of each tensor (DeviceWeights::layout):
// they take each bucket into a staging buffer and copy their pieces out of it, a rectangle per piece of a parameter
// (the rows of a column-parallel shard are one strided copy), planned once from the layout. Nothing is sent twice:
// every engine rank receives the whole stream, as the host path's receivers do.
//
// A tensor-parallel trainer: the TP ranks of the source's replica all-gather their shards over the GPU (DeviceComm
// over the TP group) and the source copies them, a rectangle per piece, into one buffer of the whole model, which it
// then broadcasts as a TP=1 trainer's. Replicated parameters come from TP rank 0.
//
// The device path runs only when every engine can take it: a GPU engine of the trainer's precision for the same
// model (and, with a tensor-parallel trainer, device weights on every TP rank of the source's replica). Else
// sync() returns false on every rank and the caller takes the host path (sync/weight_sync.h). This path does not
// update the engines' host models.
#pragma once

#include <mpi.h>

#include <cstdint>
#include <memory>
#include <string>

#include "comm/device_comm.h"
#include "core/tensor.h"
#include "model/device_weights.h"

namespace slime::sync {

class DeviceWeightSync {
 public:
  // comm: every rank of the weight sync (sync::WeightSync's); bcast: WeightSync::bcast_comm() (the source as rank 0,
  // then the receivers; MPI_COMM_NULL on other ranks). bucket_bytes: --update-weight-buffer-size.
  DeviceWeightSync(MPI_Comm comm, MPI_Comm bcast, bool is_source, bool is_receiver, int64_t bucket_bytes);
  ~DeviceWeightSync();
  DeviceWeightSync(const DeviceWeightSync&) = delete;
  DeviceWeightSync& operator=(const DeviceWeightSync&) = delete;

  // Collective over comm. source: the trainer's weights on the source rank (null elsewhere, or when they are not on
  // a GPU); receiver: the engine's buffers on receiver ranks (null when the engine is not on a GPU). A
  // tensor-parallel trainer: every TP rank of the source's replica passes its shard as `source` and the TP group as
  // trainer_tp; they all-gather their shards on the GPU and the source lays out the whole model before the
  // broadcast. Returns whether the weights went over the device path (the same on every rank).
  bool sync(const model::DeviceWeights* source, const model::DeviceWeights* receiver,
            const comm::Group* trainer_tp = nullptr);

  // --check-weight-update-equal after a device sync. Collective over comm: a hash of the bytes every engine holds
  // against the source's. Returns the same answer on every rank; `report` names the first engine that differs.
  bool check_equal(const model::DeviceWeights* source, const model::DeviceWeights* receiver,
                   std::string* report = nullptr);

  const char* transport() const { return dc_ ? dc_->transport_name() : "none"; }
  int64_t bytes_sent() const { return bytes_; }  // by the last sync

  // A copy of `height` rows of `width` elements, row r from src + r * src_pitch to dst + r * dst_pitch: a
  // tensor-parallel engine's piece of a bucket of the stream, or a trainer TP rank's piece of the whole model.
  struct Copy {
    int64_t src, dst, width, height, src_pitch, dst_pitch;
  };

 private:
  struct Plan;  // a receiver's copies, per bucket of the flat weights and of the 1-D parameters
  const Plan& plan_for(const model::DeviceWeights& receiver, int64_t bucket, int64_t vector_bucket, int64_t numel,
                       int64_t vector_numel);

  // The source's 1-D parameters gathered from its fp32 master into vectors_; returns them.
  float* gather_vectors(const model::DeviceWeights& source);
  // A tensor-parallel trainer's shards all-gathered over `tp` and, on the root (the source), copied into the whole
  // model's buffers (the stream's layout); returns them there, null on the other TP ranks.
  const model::DeviceWeights* assemble(const model::DeviceWeights& shard, const comm::Group& tp, bool root);
  struct Assembly {  // the root's copies out of the gathered shards into the whole model
    std::vector<Copy> flat, vectors;
  };

  MPI_Comm comm_ = MPI_COMM_NULL;
  MPI_Comm bcast_ = MPI_COMM_NULL;
  bool is_source_, is_receiver_;
  int64_t bucket_bytes_;
  std::unique_ptr<comm::DeviceComm> dc_;  // over bcast_, made by the first device sync
  Tensor vectors_;                        // source, bf16: the 1-D parameters in fp32
  Tensor staging_;                        // an engine holding shards: the bucket in flight
  std::unique_ptr<Plan> plan_;
  // A tensor-parallel trainer: its TP collectives, every rank's shard, and (source) the whole model it lays out.
  std::unique_ptr<comm::DeviceComm> tp_dc_;
  Tensor gathered_, whole_flat_, whole_vectors_;
  std::unique_ptr<Assembly> assembly_;
  model::DeviceWeights whole_;
  int64_t bytes_ = 0;
};

}  // namespace slime::sync
