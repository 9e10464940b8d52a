// Collectives over buffers in GPU memory among the ranks of one comm::Group: the CUDA backend's data-parallel
// gradient reduce-scatter and parameter all-gather (fp32), and its tensor-parallel all-reduces of activations (bf16
// or fp32).
//
// Two transports, chosen when the communicator is built (collectively, the same on every rank):
//   - NCCL, when every rank of the group drives a GPU of its own. The communicator is bootstrapped over MPI: the
//     group's rank 0 makes an ncclUniqueId and broadcasts it on the group's MPI communicator, then every rank calls
//     ncclCommInitRank. Collectives run on the communicator's own stream.
//   - Host-staged MPI, when some ranks share a GPU (NCCL refuses a communicator with two ranks on one device). The
//     buffer goes to host memory, through the MPI collective and back. This is what runs two data-parallel ranks
//     on a one-GPU workstation or test machine; it gives the same sums as NCCL up to summation order.
// SLIME_DEVICE_COMM=mpi forces the host-staged transport (comparisons, debugging); =nccl insists on NCCL, even for
// a group of one rank (NCCL's one-rank collectives: how a one-GPU machine runs the NCCL path).
//
// Ordering: a collective starts after the work already queued on the default stream (the optimizer's kernels run
// there) and everything queued on the default stream afterwards runs after it. No host synchronisation with NCCL.
// The collectives that take a stream run on that stream instead (NCCL: enqueued on it, so a CUDA graph captured on
// it contains them; host-staged: the stream is synchronised, and the copies back complete before the call returns).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "comm/parallel.h"
#include "core/dtype.h"

typedef struct CUstream_st* cudaStream_t;

namespace slime::comm {

enum class DeviceTransport { Nccl, HostMpi };

class DeviceComm {
 public:
  // Collective over `group`; cuda::init_device must have run on every rank. `what` names the group in messages
  // ("data-parallel"). Errors (NCCL refusing, a forced transport that cannot work) are raised on every rank.
  DeviceComm(const Group& group, const std::string& what);
  // Whether a group needs a device communicator: more than one rank, or NCCL forced by SLIME_DEVICE_COMM.
  static bool needed(const Group& group);
  ~DeviceComm();
  DeviceComm(const DeviceComm&) = delete;
  DeviceComm& operator=(const DeviceComm&) = delete;

  DeviceTransport transport() const { return transport_; }
  const char* transport_name() const {
    if (!nccl_ && group_.single()) return "none (one rank)";
    return transport_ == DeviceTransport::Nccl ? "nccl" : "mpi (host-staged)";
  }
  int rank() const { return group_.rank; }
  int size() const { return group_.size; }

  // data holds size() blocks of `count` floats. Afterwards block rank() holds the sum over ranks of that block;
  // the other blocks hold unspecified values.
  void reduce_scatter_sum_inplace(float* data, int64_t count);
  // data holds size() blocks of `count` floats; afterwards block r everywhere is rank r's block r.
  void all_gather_inplace(float* data, int64_t count, cudaStream_t stream = nullptr);
  void all_reduce_sum(float* data, int64_t count);
  // The same over `count` elements of `dtype` (F32 or BF16; a bf16 result is rounded from the sum, which the
  // host-staged transport forms in fp32 and NCCL per step of its ring). Every rank gets the same bits.
  void all_reduce_sum(void* data, int64_t count, DType dtype, cudaStream_t stream = nullptr);
  // Whether collectives on a stream can be captured in a CUDA graph (NCCL, or one rank: nothing to do).
  bool capturable() const { return nccl_ || group_.single(); }
  // root's `bytes` bytes at data reach every rank.
  void broadcast(void* data, size_t bytes, int root);

 private:
  struct Nccl;
  // Runs call(comm, stream): on `stream` when given, else on the NCCL stream, ordered after the default stream's
  // work and before its next.
  template <class F>
  void nccl_op(const char* op, F&& call, cudaStream_t stream = nullptr);
  float* host_stage(int64_t count);

  Group group_;
  std::string what_;
  DeviceTransport transport_ = DeviceTransport::HostMpi;
  std::unique_ptr<Nccl> nccl_;
  float* stage_ = nullptr;  // host-staged transport: pinned host buffer
  int64_t stage_capacity_ = 0;
};

}  // namespace slime::comm
