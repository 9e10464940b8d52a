#include "comm/device_comm.h"

#include <cuda_runtime.h>
#include <nccl.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <set>
#include <vector>

#include "comm/mpi_utils.h"
#include "core/error.h"
#include "core/log.h"

namespace slime::comm {
namespace {

void check_cuda(cudaError_t e, const char* what) {
  SLIME_CHECK(e == cudaSuccess, "device communicator: ", what, ": ", cudaGetErrorString(e));
}
void check_nccl(ncclResult_t r, const std::string& what) {
  SLIME_CHECK(r == ncclSuccess, "NCCL ", what, ": ", ncclGetErrorString(r));
}

// "host|pci bus id" of this rank's current GPU: two ranks with the same key share a device.
std::string device_key() {
  int device = 0;
  check_cuda(cudaGetDevice(&device), "cudaGetDevice");
  char bus[64] = {};
  check_cuda(cudaDeviceGetPCIBusId(bus, sizeof bus, device), "cudaDeviceGetPCIBusId");
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  return std::string(host) + "|" + bus;
}

// Offsets of `ranks` blocks of `count` elements (the MPI helpers' layout).
std::vector<int64_t> equal_blocks(int64_t count, int ranks) {
  std::vector<int64_t> offsets(ranks + 1);
  for (int r = 0; r <= ranks; ++r) offsets[r] = count * r;
  return offsets;
}

}  // namespace

struct DeviceComm::Nccl {
  ncclComm_t comm = nullptr;
  cudaStream_t stream = nullptr;
  cudaEvent_t ready = nullptr, done = nullptr;
};

bool DeviceComm::needed(const Group& group) {
  const char* forced = std::getenv("SLIME_DEVICE_COMM");
  return !group.single() || (forced && std::string(forced) == "nccl");
}

DeviceComm::DeviceComm(const Group& group, const std::string& what) : group_(group), what_(what) {
  const char* forced = std::getenv("SLIME_DEVICE_COMM");
  const std::string force = forced ? forced : "";
  SLIME_CHECK(force.empty() || force == "nccl" || force == "mpi", "SLIME_DEVICE_COMM=", force,
              ": expected nccl or mpi");
  // One rank exchanges nothing: no communicator, unless NCCL is asked for (it then runs its one-rank collectives,
  // which is how a one-GPU machine exercises the NCCL path).
  if (group_.single() && force != "nccl") return;
  // Which ranks share a GPU: every rank's device key, gathered over the group.
  bool shared = false;
  size_t gpus = 1;
  if (!group_.single()) {
    char mine[320] = {};
    std::strncpy(mine, device_key().c_str(), sizeof mine - 1);
    std::vector<char> all(sizeof mine * group_.size);
    mpiCheck(MPI_Allgather(mine, sizeof mine, MPI_CHAR, all.data(), sizeof mine, MPI_CHAR, group_.comm));
    std::set<std::string> keys;
    for (int r = 0; r < group_.size; ++r) keys.insert(std::string(all.data() + r * sizeof mine));
    gpus = keys.size();
    shared = static_cast<int>(gpus) < group_.size;
  }
  SLIME_CHECK(!(force == "nccl" && shared), "SLIME_DEVICE_COMM=nccl: ranks of the ", what_,
              " group share a GPU, which NCCL does not allow (give each rank its own GPU, or unset it)");
  transport_ = (shared || force == "mpi") ? DeviceTransport::HostMpi : DeviceTransport::Nccl;
  if (transport_ == DeviceTransport::HostMpi) {
    if (group_.rank == 0 && shared)
      SLIME_WARN("the ", group_.size, " ranks of the ", what_, " group share ", gpus,
                 " GPU(s): their collectives are staged through host memory and MPI instead of NCCL");
    return;
  }
  nccl_ = std::make_unique<Nccl>();
  ncclUniqueId id;
  if (group_.rank == 0) check_nccl(ncclGetUniqueId(&id), "ncclGetUniqueId");
  if (!group_.single()) mpiCheck(MPI_Bcast(&id, sizeof id, MPI_BYTE, 0, group_.comm));
  check_nccl(ncclCommInitRank(&nccl_->comm, group_.size, id, group_.rank),
             "ncclCommInitRank (" + what_ + " group, rank " + std::to_string(group_.rank) + " of " +
                 std::to_string(group_.size) + ")");
  check_cuda(cudaStreamCreateWithFlags(&nccl_->stream, cudaStreamNonBlocking), "stream");
  check_cuda(cudaEventCreateWithFlags(&nccl_->ready, cudaEventDisableTiming), "event");
  check_cuda(cudaEventCreateWithFlags(&nccl_->done, cudaEventDisableTiming), "event");
}

DeviceComm::~DeviceComm() {
  if (nccl_) {
    if (nccl_->comm) ncclCommDestroy(nccl_->comm);
    if (nccl_->stream) cudaStreamDestroy(nccl_->stream);
    if (nccl_->ready) cudaEventDestroy(nccl_->ready);
    if (nccl_->done) cudaEventDestroy(nccl_->done);
  }
  if (stage_) cudaFreeHost(stage_);
}

template <class F>
void DeviceComm::nccl_op(const char* op, F&& call, cudaStream_t stream) {
  if (stream) {
    check_nccl(call(nccl_->comm, stream), std::string(op) + " (" + what_ + ")");
    return;
  }
  check_cuda(cudaEventRecord(nccl_->ready, nullptr), "event record");
  check_cuda(cudaStreamWaitEvent(nccl_->stream, nccl_->ready, 0), "stream wait");
  check_nccl(call(nccl_->comm, nccl_->stream), std::string(op) + " (" + what_ + ")");
  check_cuda(cudaEventRecord(nccl_->done, nccl_->stream), "event record");
  check_cuda(cudaStreamWaitEvent(nullptr, nccl_->done, 0), "stream wait");
}

float* DeviceComm::host_stage(int64_t count) {
  if (count > stage_capacity_) {
    if (stage_) cudaFreeHost(stage_);
    stage_ = nullptr;
    check_cuda(cudaMallocHost(reinterpret_cast<void**>(&stage_), static_cast<size_t>(count) * sizeof(float)),
               "pinned staging buffer");
    stage_capacity_ = count;
  }
  return stage_;
}

void DeviceComm::reduce_scatter_sum_inplace(float* data, int64_t count) {
  if ((!nccl_ && group_.single()) || count == 0) return;
  const int64_t total = count * group_.size;
  float* mine = data + count * group_.rank;
  if (nccl_)
    return nccl_op("reduce-scatter", [&](ncclComm_t c, cudaStream_t s) {
      return ncclReduceScatter(data, mine, static_cast<size_t>(count), ncclFloat32, ncclSum, c, s);
    });
  float* host = host_stage(total + count);  // the blocks, then this rank's sum
  check_cuda(cudaMemcpy(host, data, total * sizeof(float), cudaMemcpyDeviceToHost), "copy to host");
  reduce_scatter_sum(host, host + total, equal_blocks(count, group_.size), group_.comm);
  check_cuda(cudaMemcpy(mine, host + total, count * sizeof(float), cudaMemcpyHostToDevice), "copy to device");
}

void DeviceComm::all_gather_inplace(float* data, int64_t count, cudaStream_t stream) {
  if ((!nccl_ && group_.single()) || count == 0) return;
  const int64_t total = count * group_.size;
  float* mine = data + count * group_.rank;
  if (nccl_)
    return nccl_op("all-gather", [&](ncclComm_t c, cudaStream_t s) {
      return ncclAllGather(mine, data, static_cast<size_t>(count), ncclFloat32, c, s);
    }, stream);
  if (stream) check_cuda(cudaStreamSynchronize(stream), "stream synchronize");
  float* host = host_stage(total);
  check_cuda(cudaMemcpy(host + count * group_.rank, mine, count * sizeof(float), cudaMemcpyDeviceToHost),
             "copy to host");
  allgather_inplace(host, equal_blocks(count, group_.size), group_.comm);
  check_cuda(cudaMemcpy(data, host, total * sizeof(float), cudaMemcpyHostToDevice), "copy to device");
}

void DeviceComm::all_reduce_sum(float* data, int64_t count) {
  if ((!nccl_ && group_.single()) || count == 0) return;
  if (nccl_)
    return nccl_op("all-reduce", [&](ncclComm_t c, cudaStream_t s) {
      return ncclAllReduce(data, data, static_cast<size_t>(count), ncclFloat32, ncclSum, c, s);
    });
  float* host = host_stage(count);
  check_cuda(cudaMemcpy(host, data, count * sizeof(float), cudaMemcpyDeviceToHost), "copy to host");
  allreduce_sum(host, count, group_.comm);
  check_cuda(cudaMemcpy(data, host, count * sizeof(float), cudaMemcpyHostToDevice), "copy to device");
}

void DeviceComm::all_reduce_sum(void* data, int64_t count, DType dtype, cudaStream_t stream) {
  SLIME_CHECK(dtype == DType::F32 || dtype == DType::BF16, "device all-reduce (", what_, "): ", dtype_name(dtype),
              " is not supported (F32 or BF16)");
  if ((!nccl_ && group_.single()) || count == 0) return;
  if (nccl_)
    return nccl_op("all-reduce", [&](ncclComm_t c, cudaStream_t s) {
      return ncclAllReduce(data, data, static_cast<size_t>(count), dtype == DType::BF16 ? ncclBfloat16 : ncclFloat32,
                           ncclSum, c, s);
    }, stream);
  if (stream) check_cuda(cudaStreamSynchronize(stream), "stream synchronize");
  if (dtype == DType::F32) return all_reduce_sum(static_cast<float*>(data), count);
  // Host-staged: the bf16 values land in the back half of the stage, widen to fp32 in front, sum, round back.
  float* host = host_stage(count + (count + 1) / 2);
  uint16_t* bits = reinterpret_cast<uint16_t*>(host + count);
  check_cuda(cudaMemcpy(bits, data, count * sizeof(uint16_t), cudaMemcpyDeviceToHost), "copy to host");
  for (int64_t i = 0; i < count; ++i) host[i] = bf16_to_f32(bits[i]);
  allreduce_sum(host, count, group_.comm);
  for (int64_t i = 0; i < count; ++i) bits[i] = f32_to_bf16(host[i]);
  check_cuda(cudaMemcpy(data, bits, count * sizeof(uint16_t), cudaMemcpyHostToDevice), "copy to device");
}

void DeviceComm::broadcast(void* data, size_t bytes, int root) {
  if ((!nccl_ && group_.single()) || bytes == 0) return;
  if (nccl_)
    return nccl_op("broadcast", [&](ncclComm_t c, cudaStream_t s) {
      return ncclBroadcast(data, data, bytes, ncclUint8, root, c, s);
    });
  const int64_t floats = static_cast<int64_t>((bytes + sizeof(float) - 1) / sizeof(float));
  float* host = host_stage(floats);
  if (group_.rank == root) check_cuda(cudaMemcpy(host, data, bytes, cudaMemcpyDeviceToHost), "copy to host");
  comm::broadcast(host, static_cast<int64_t>(bytes), root, group_.comm);
  if (group_.rank != root) check_cuda(cudaMemcpy(data, host, bytes, cudaMemcpyHostToDevice), "copy to device");
}

}  // namespace slime::comm
