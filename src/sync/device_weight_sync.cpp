#include "sync/device_weight_sync.h"

#include <algorithm>
#include <vector>

#include "comm/mpi_utils.h"
#include "core/error.h"
#include "kernels/cuda/device.h"

namespace slime::sync {
namespace {

// What a rank brings to a sync: its role (1 source, 2 receiver, 3 both) and the buffers it can send or take.
struct Offer {
  int64_t role = 0;
  int64_t mode = 0;  // 0: no device weights, 1: fp32, 2: bf16
  int64_t numel = 0, vector_numel = 0;
};

Offer offer_of(const model::DeviceWeights* w) {
  Offer o;
  if (!w) return o;
  o.mode = w->bf16 ? 2 : 1;
  o.numel = w->numel;
  o.vector_numel = w->vector_numel;
  return o;
}

bool same_buffers(const Offer& a, const Offer& b) {
  return a.mode == b.mode && a.numel == b.numel && a.vector_numel == b.vector_numel;
}

// Every rank's offer, gathered over comm.
std::vector<Offer> gather_offers(const Offer& mine, MPI_Comm comm) {
  std::vector<Offer> all(comm::size(comm));
  mpiCheck(MPI_Allgather(&mine, sizeof(Offer), MPI_BYTE, all.data(), sizeof(Offer), MPI_BYTE, comm));
  return all;
}

// FNV-1a over device bytes, copied down in chunks.
uint64_t device_hash(const void* data, size_t bytes, uint64_t h = 1469598103934665603ull) {
  std::vector<unsigned char> chunk(std::min<size_t>(bytes, size_t{64} << 20));
  for (size_t off = 0; off < bytes; off += chunk.size()) {
    const size_t n = std::min(chunk.size(), bytes - off);
    cuda::copy_to_host(chunk.data(), static_cast<const char*>(data) + off, n);
    for (size_t i = 0; i < n; ++i) h = (h ^ chunk[i]) * 1099511628211ull;
  }
  return h;
}

}  // namespace

DeviceWeightSync::DeviceWeightSync(MPI_Comm comm, MPI_Comm bcast, bool is_source, bool is_receiver,
                                   int64_t bucket_bytes)
    : is_source_(is_source), is_receiver_(is_receiver), bucket_bytes_(bucket_bytes) {
  SLIME_CHECK(bucket_bytes_ >= 4, "--update-weight-buffer-size ", bucket_bytes_, ": expected at least 4 bytes");
  mpiCheck(MPI_Comm_dup(comm, &comm_));
  if (bcast != MPI_COMM_NULL) mpiCheck(MPI_Comm_dup(bcast, &bcast_));
}

DeviceWeightSync::~DeviceWeightSync() {
  dc_.reset();
  if (bcast_ != MPI_COMM_NULL) MPI_Comm_free(&bcast_);
  if (comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
}

float* DeviceWeightSync::gather_vectors(const model::DeviceWeights& source) {
  if (!vectors_.defined() || vectors_.numel() < source.vector_numel)
    vectors_ = Tensor::empty({std::max<int64_t>(source.vector_numel, 1)}, DType::F32, Device::CUDA);
  int64_t at = 0;
  for (const auto& [offset, count] : source.vector_runs) {
    cuda::copy_async(vectors_.data<float>() + at, source.master + offset, static_cast<size_t>(count) * 4, nullptr);
    at += count;
  }
  SLIME_ASSERT(at == source.vector_numel, "the trainer's 1-D parameter runs hold ", at, " elements, not ",
               source.vector_numel);
  return vectors_.data<float>();
}

bool DeviceWeightSync::sync(const model::DeviceWeights* source, const model::DeviceWeights* receiver) {
  // Agree, on every rank, whether the device path can run: the source has device weights and every engine has
  // buffers of the same precision and sizes.
  Offer mine;
  if (is_source_) mine = offer_of(source);
  if (is_receiver_ && (!is_source_ || !receiver || !same_buffers(mine, offer_of(receiver))))
    mine = is_source_ ? Offer{} : offer_of(receiver);
  mine.role = (is_source_ ? 1 : 0) | (is_receiver_ ? 2 : 0);
  const std::vector<Offer> all = gather_offers(mine, comm_);
  const auto src = std::find_if(all.begin(), all.end(), [](const Offer& o) { return o.role & 1; });
  SLIME_CHECK(src != all.end(), "weight sync on the GPU: no rank is the source");
  bool ok = src->mode != 0;
  for (const Offer& o : all)
    if (o.role & 2) ok = ok && same_buffers(o, *src);
  if (!ok) return false;

  bytes_ = 0;
  if (bcast_ == MPI_COMM_NULL) return true;  // neither source nor engine: nothing to move here
  if (!dc_) {
    comm::Group group{bcast_, comm::rank(bcast_), comm::size(bcast_)};
    dc_ = std::make_unique<comm::DeviceComm>(group, "weight-sync");
  }
  const size_t elem = src->mode == 2 ? 2 : 4;
  const bool colocated = is_source_ && is_receiver_;
  // The flat weights, bucket by bucket, straight from the source's buffer into the engines'.
  char* flat = static_cast<char*>(is_source_ ? source->flat : receiver->flat);
  if (colocated) cuda::copy_async(receiver->flat, source->flat, src->numel * elem, nullptr);
  const int64_t bucket = std::max<int64_t>(1, bucket_bytes_ / static_cast<int64_t>(elem));
  for (int64_t off = 0; off < src->numel; off += bucket)
    dc_->broadcast(flat + off * elem, static_cast<size_t>(std::min(bucket, src->numel - off)) * elem, 0);
  // bf16: the 1-D parameters in fp32.
  if (src->mode == 2 && src->vector_numel > 0) {
    float* vectors = is_source_ ? gather_vectors(*source) : receiver->vectors;
    if (colocated) cuda::copy_async(receiver->vectors, vectors, src->vector_numel * 4, nullptr);
    const int64_t vbucket = std::max<int64_t>(1, bucket_bytes_ / 4);
    for (int64_t off = 0; off < src->vector_numel; off += vbucket)
      dc_->broadcast(vectors + off, static_cast<size_t>(std::min(vbucket, src->vector_numel - off)) * 4, 0);
  }
  cuda::synchronize();  // the engine's stream starts its next step on the new weights
  bytes_ = src->numel * static_cast<int64_t>(elem) + src->vector_numel * 4;
  return true;
}

bool DeviceWeightSync::check_equal(const model::DeviceWeights* source, const model::DeviceWeights* receiver,
                                   std::string* report) {
  // [role, hash]: the source hashes what it sent, each engine what it holds.
  uint64_t mine[2] = {static_cast<uint64_t>((is_source_ ? 1 : 0) | (is_receiver_ ? 2 : 0)), 0};
  uint64_t engine_hash = 0;
  if (is_source_ && source) {
    const size_t elem = source->bf16 ? 2 : 4;
    mine[1] = device_hash(source->flat, static_cast<size_t>(source->numel) * elem);
    if (source->bf16 && source->vector_numel > 0)
      mine[1] = device_hash(gather_vectors(*source), static_cast<size_t>(source->vector_numel) * 4, mine[1]);
  }
  if (is_receiver_ && receiver) {
    const size_t elem = receiver->bf16 ? 2 : 4;
    engine_hash = device_hash(receiver->flat, static_cast<size_t>(receiver->numel) * elem);
    if (receiver->bf16 && receiver->vector_numel > 0)
      engine_hash = device_hash(receiver->vectors, static_cast<size_t>(receiver->vector_numel) * 4, engine_hash);
  }
  const int size = comm::size(comm_);
  std::vector<uint64_t> all(3 * size);
  const uint64_t entry[3] = {mine[0], mine[1], engine_hash};
  mpiCheck(MPI_Allgather(entry, 3, MPI_UINT64_T, all.data(), 3, MPI_UINT64_T, comm_));
  uint64_t want = 0;
  for (int r = 0; r < size; ++r)
    if (all[3 * r] & 1) want = all[3 * r + 1];
  for (int r = 0; r < size; ++r) {
    if (!(all[3 * r] & 2) || all[3 * r + 2] == want) continue;
    if (report) *report = "rank " + std::to_string(r) + ": the engine's device weights differ from the trainer's";
    return false;
  }
  return true;
}

}  // namespace slime::sync
