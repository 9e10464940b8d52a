#include "sync/device_weight_sync.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "comm/mpi_utils.h"
#include "core/error.h"
#include "kernels/cuda/device.h"
#include "model/params.h"

namespace slime::sync {

struct DeviceWeightSync::Plan {
  const model::ParamRegistry* layout = nullptr;
  int64_t bucket = 0, vector_bucket = 0;
  std::vector<std::vector<Copy>> flat, vectors;  // per bucket
};

namespace {

// What a rank brings to a sync: its role (1 source, 2 receiver, 3 both) and the buffers it can send or take, sized as
// the full model (the stream), whatever the shards it holds.
struct Offer {
  int64_t role = 0;
  int64_t mode = 0;  // 0: no device weights, 1: fp32, 2: bf16
  int64_t numel = 0, vector_numel = 0;
  int64_t sharded = 0;  // holds tensor-parallel shards (cut out of the stream)
};

using model::StreamPart;
using Run = model::StreamRun;

// The full tensors' elements: of every parameter, and of the 1-D ones.
std::pair<int64_t, int64_t> full_numels(const model::ParamRegistry& layout) {
  return {model::stream_numel(layout), model::stream_numel(layout, StreamPart::Vectors)};
}

Offer offer_of(const model::DeviceWeights* w) {
  Offer o;
  if (!w) return o;
  o.mode = w->bf16 ? 2 : 1;
  o.numel = w->numel;
  o.vector_numel = w->vector_numel;
  if (w->layout) {
    const auto [all, vectors] = full_numels(*w->layout);
    o.sharded = all != w->numel;
    o.numel = all;
    o.vector_numel = w->bf16 ? vectors : 0;
  }
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

// FNV-1a over the bytes of host memory.
uint64_t fnv(const unsigned char* data, size_t bytes, uint64_t h) {
  for (size_t i = 0; i < bytes; ++i) h = (h ^ data[i]) * 1099511628211ull;
  return h;
}
constexpr uint64_t kFnvBasis = 1469598103934665603ull;

// A device buffer's bytes on the host.
std::vector<unsigned char> to_host(const void* device, size_t bytes) {
  std::vector<unsigned char> host(bytes);
  if (bytes) cuda::copy_to_host(host.data(), device, bytes);
  return host;
}

// The hash of `runs` of a host buffer, read at their stream offsets (the source's full buffers) or local ones (a
// receiver's shards): equal exactly when the receiver holds the stream's bytes.
uint64_t hash_runs(const std::vector<unsigned char>& host, const std::vector<Run>& runs, size_t elem, bool stream,
                   uint64_t h) {
  for (const Run& r : runs)
    h = fnv(host.data() + static_cast<size_t>(stream ? r.stream : r.local) * elem, static_cast<size_t>(r.count) * elem,
            h);
  return h;
}

// Adds `count` elements from bucket offset src to buffer offset dst to a bucket's copies, extending the last copy
// when the piece continues it (the next part of a row, or the next row of a column-parallel shard).
void add_piece(std::vector<DeviceWeightSync::Copy>& copies, int64_t src, int64_t dst, int64_t count) {
  if (!copies.empty()) {
    DeviceWeightSync::Copy& c = copies.back();
    if (c.height == 1 && src == c.src + c.width && dst == c.dst + c.width) {
      c.width += count;
      return;
    }
    if (count == c.width) {
      if (c.height == 1 && src - c.src >= count && dst - c.dst >= count) {
        c.src_pitch = src - c.src;
        c.dst_pitch = dst - c.dst;
        c.height = 2;
        return;
      }
      if (c.height > 1 && src == c.src + c.height * c.src_pitch && dst == c.dst + c.height * c.dst_pitch) {
        ++c.height;
        return;
      }
    }
  }
  copies.push_back(DeviceWeightSync::Copy{src, dst, count, 1, count, count});
}

// The copies of each bucket of `bucket` elements of a stream of `total` elements into the runs' local offsets.
std::vector<std::vector<DeviceWeightSync::Copy>> plan_copies(const std::vector<Run>& runs, int64_t bucket,
                                                            int64_t total) {
  std::vector<std::vector<DeviceWeightSync::Copy>> plan(static_cast<size_t>((total + bucket - 1) / bucket));
  for (const Run& run : runs)
    for (int64_t s = run.stream, d = run.local, left = run.count; left > 0;) {
      const int64_t k = s / bucket, n = std::min(left, (k + 1) * bucket - s);
      add_piece(plan[static_cast<size_t>(k)], s - k * bucket, d, n);
      s += n;
      d += n;
      left -= n;
    }
  return plan;
}

void run_copies(const std::vector<DeviceWeightSync::Copy>& copies, const void* bucket, void* buffer, size_t elem) {
  for (const DeviceWeightSync::Copy& c : copies)
    cuda::copy_2d_async(static_cast<char*>(buffer) + c.dst * elem, c.dst_pitch * elem,
                        static_cast<const char*>(bucket) + c.src * elem, c.src_pitch * elem, c.width * elem, c.height,
                        nullptr);
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

const DeviceWeightSync::Plan& DeviceWeightSync::plan_for(const model::DeviceWeights& receiver, int64_t bucket,
                                                         int64_t vector_bucket, int64_t numel, int64_t vector_numel) {
  if (!plan_ || plan_->layout != receiver.layout || plan_->bucket != bucket || plan_->vector_bucket != vector_bucket) {
    plan_ = std::make_unique<Plan>();
    plan_->layout = receiver.layout;
    plan_->bucket = bucket;
    plan_->vector_bucket = vector_bucket;
    plan_->flat = plan_copies(model::stream_runs(*receiver.layout, true), bucket, numel);
    if (vector_numel > 0)
      plan_->vectors =
          plan_copies(model::stream_runs(*receiver.layout, true, StreamPart::Vectors), vector_bucket, vector_numel);
  }
  return *plan_;
}

const model::DeviceWeights* DeviceWeightSync::assemble(const model::DeviceWeights& shard, const comm::Group& tp,
                                                      bool root) {
  SLIME_CHECK(shard.layout, "weight sync on the GPU: a tensor-parallel trainer's weights need their layout");
  const size_t elem = shard.bf16 ? 2 : 4;
  // Every TP rank's shard (flat, and with bf16 its 1-D parameters in fp32), all-gathered in equal blocks.
  int64_t sizes[2] = {shard.numel, shard.bf16 ? shard.vector_numel : 0}, max_sizes[2];
  mpiCheck(MPI_Allreduce(sizes, max_sizes, 2, MPI_INT64_T, MPI_MAX, tp.comm));
  SLIME_CHECK(max_sizes[0] == sizes[0] && max_sizes[1] == sizes[1], "weight sync on the GPU: the trainer's TP ranks "
              "hold shards of different sizes (", sizes[0], " here, ", max_sizes[0], " on another)");
  if (!tp_dc_) tp_dc_ = std::make_unique<comm::DeviceComm>(tp, "trainer tensor-parallel (weight sync)");
  const int64_t block = (shard.numel * static_cast<int64_t>(elem) + 3) / 4, vblock = sizes[1];  // floats per rank
  if (!gathered_.defined() || gathered_.numel() < tp.size * (block + vblock))
    gathered_ = Tensor::empty({tp.size * (block + vblock)}, DType::F32, Device::CUDA);
  float* flat_blocks = gathered_.data<float>();
  float* vector_blocks = flat_blocks + tp.size * block;
  cuda::copy_async(flat_blocks + tp.rank * block, shard.flat, static_cast<size_t>(shard.numel) * elem, nullptr);
  tp_dc_->all_gather_inplace(flat_blocks, block);
  if (vblock > 0) {
    cuda::copy_async(vector_blocks + tp.rank * vblock, gather_vectors(shard), static_cast<size_t>(vblock) * 4,
                     nullptr);
    tp_dc_->all_gather_inplace(vector_blocks, vblock);
  }
  // Each rank's runs of the stream (replicated parameters from TP rank 0 only) to the root, once.
  if (!assembly_) {
    assembly_ = std::make_unique<Assembly>();
    for (int part = 0; part < 2; ++part) {
      const std::vector<Run> mine = model::stream_runs(*shard.layout, /*include_replicated=*/tp.rank == 0,
                                                       part == 1 ? StreamPart::Vectors : StreamPart::All);
      const int count = static_cast<int>(mine.size() * 3);
      std::vector<int> counts(root ? tp.size : 0), displs(root ? tp.size : 0);
      mpiCheck(MPI_Gather(&count, 1, MPI_INT, counts.data(), 1, MPI_INT, 0, tp.comm));
      std::vector<Run> all;
      if (root) {
        int total = 0;
        for (int r = 0; r < tp.size; ++r) displs[r] = total, total += counts[r];
        all.resize(static_cast<size_t>(total) / 3);
      }
      mpiCheck(MPI_Gatherv(mine.data(), count, MPI_INT64_T, all.data(), counts.data(), displs.data(), MPI_INT64_T, 0,
                           tp.comm));
      if (!root) continue;
      // Rank r's runs read its block of the gathered buffer (local offsets there) and write the stream.
      const int64_t stride = part == 0 ? block * 4 / static_cast<int64_t>(elem) : vblock;  // elements per block
      std::vector<DeviceWeightSync::Copy>& copies = part == 0 ? assembly_->flat : assembly_->vectors;
      size_t at = 0;
      for (int r = 0; r < tp.size; ++r)
        for (int i = 0; i < counts[r] / 3; ++i, ++at)
          add_piece(copies, r * stride + all[at].local, all[at].stream, all[at].count);
    }
  }
  if (!root) return nullptr;
  // The whole model on the root, laid out as the stream: what a TP=1 trainer's buffers hold.
  const auto [numel, vector_numel] = full_numels(*shard.layout);
  if (!whole_flat_.defined() || whole_flat_.nbytes() < static_cast<size_t>(numel) * elem)
    whole_flat_ = Tensor::empty({numel * static_cast<int64_t>(elem)}, DType::U8, Device::CUDA);
  run_copies(assembly_->flat, flat_blocks, whole_flat_.raw(), elem);
  whole_ = model::DeviceWeights{};
  whole_.bf16 = shard.bf16;
  whole_.flat = whole_flat_.raw();
  whole_.numel = numel;
  if (shard.bf16) {
    if (!whole_vectors_.defined() || whole_vectors_.numel() < vector_numel)
      whole_vectors_ = Tensor::empty({std::max<int64_t>(vector_numel, 1)}, DType::F32, Device::CUDA);
    run_copies(assembly_->vectors, vector_blocks, whole_vectors_.raw(), 4);
    whole_.vectors = whole_vectors_.data<float>();
    whole_.vector_numel = vector_numel;
  }
  return &whole_;
}

bool DeviceWeightSync::sync(const model::DeviceWeights* source, const model::DeviceWeights* receiver,
                            const comm::Group* trainer_tp) {
  // Agree, on every rank, whether the device path can run: the source has the model's device weights (all of it, or
  // its shards with every other trainer TP rank of its replica contributing theirs) and every engine has buffers of
  // the same precision for the same model (its shards of it, or all of it).
  const bool tp_trainer = trainer_tp && !trainer_tp->single() && source;
  Offer mine;
  if (is_source_ || tp_trainer) {
    mine = offer_of(source);
    if (mine.sharded && !tp_trainer) mine = Offer{};
  }
  if (is_receiver_) {
    const Offer engine = offer_of(receiver);
    if (!is_source_) mine = engine;
    else if (!receiver || !same_buffers(mine, engine) || engine.sharded || mine.sharded)
      mine = Offer{};  // colocated: the same (whole) buffers
  }
  mine.role = (is_source_ ? 1 : 0) | (is_receiver_ ? 2 : 0) | (tp_trainer && !is_source_ ? 4 : 0);
  const std::vector<Offer> all = gather_offers(mine, comm_);
  const auto src = std::find_if(all.begin(), all.end(), [](const Offer& o) { return o.role & 1; });
  SLIME_CHECK(src != all.end(), "weight sync on the GPU: no rank is the source");
  bool ok = src->mode != 0;
  for (const Offer& o : all)
    if (o.role & 6) ok = ok && same_buffers(o, *src);  // engines, and the source's TP peers
  if (!ok) return false;

  bytes_ = 0;
  // A tensor-parallel trainer: its replica's TP ranks gather their shards to the source, which lays out the whole
  // model (assemble); the peers are done then.
  const model::DeviceWeights* whole = source;
  if (tp_trainer && offer_of(source).sharded) whole = assemble(*source, *trainer_tp, is_source_);
  if (bcast_ == MPI_COMM_NULL) return true;  // neither source nor engine: nothing to move here
  if (!dc_) {
    comm::Group group{bcast_, comm::rank(bcast_), comm::size(bcast_)};
    dc_ = std::make_unique<comm::DeviceComm>(group, "weight-sync");
  }
  const size_t elem = src->mode == 2 ? 2 : 4;
  const bool colocated = is_source_ && is_receiver_;
  const bool sharded = !is_source_ && is_receiver_ && mine.sharded;
  const int64_t bucket = std::max<int64_t>(1, bucket_bytes_ / static_cast<int64_t>(elem));
  const int64_t vector_bucket = std::max<int64_t>(1, bucket_bytes_ / 4);
  // An engine holding shards takes each bucket into staging and copies its pieces out (the plan, made once).
  const Plan* plan = sharded ? &plan_for(*receiver, bucket, vector_bucket, src->numel, src->vector_numel) : nullptr;
  if (sharded) {
    const int64_t bytes = std::max(bucket * static_cast<int64_t>(elem), std::min(vector_bucket, src->vector_numel) * 4);
    if (!staging_.defined() || staging_.numel() < bytes) staging_ = Tensor::empty({bytes}, DType::U8, Device::CUDA);
  }
  // The flat weights, bucket by bucket, straight from the source's buffer into the engines' (or their staging).
  char* flat = static_cast<char*>(is_source_ ? whole->flat : receiver->flat);
  if (colocated) cuda::copy_async(receiver->flat, source->flat, src->numel * elem, nullptr);
  for (int64_t off = 0, k = 0; off < src->numel; off += bucket, ++k) {
    const size_t bytes = static_cast<size_t>(std::min(bucket, src->numel - off)) * elem;
    dc_->broadcast(sharded ? staging_.raw() : flat + off * elem, bytes, 0);
    if (sharded) run_copies(plan->flat[static_cast<size_t>(k)], staging_.raw(), receiver->flat, elem);
  }
  // bf16: the 1-D parameters in fp32.
  if (src->mode == 2 && src->vector_numel > 0) {
    float* vectors = is_source_ ? (whole == source ? gather_vectors(*source) : whole->vectors) : receiver->vectors;
    if (colocated) cuda::copy_async(receiver->vectors, vectors, src->vector_numel * 4, nullptr);
    for (int64_t off = 0, k = 0; off < src->vector_numel; off += vector_bucket, ++k) {
      const size_t bytes = static_cast<size_t>(std::min(vector_bucket, src->vector_numel - off)) * 4;
      dc_->broadcast(sharded ? staging_.raw() : static_cast<void*>(vectors + off), bytes, 0);
      if (sharded) run_copies(plan->vectors[static_cast<size_t>(k)], staging_.raw(), receiver->vectors, 4);
    }
  }
  cuda::synchronize();  // the engine's stream starts its next step on the new weights
  bytes_ = src->numel * static_cast<int64_t>(elem) + src->vector_numel * 4;
  return true;
}

bool DeviceWeightSync::check_equal(const model::DeviceWeights* source, const model::DeviceWeights* receiver,
                                   std::string* report) {
  // Every engine hashes the bytes it holds along its runs of the stream; the source hashes its own bytes at the
  // same stream positions (an engine holding shards sends its runs first). [role, engine hash, runs sent].
  const int size = comm::size(comm_), me = comm::rank(comm_);
  uint64_t entry[3] = {static_cast<uint64_t>((is_source_ ? 1 : 0) | (is_receiver_ ? 2 : 0)), 0, 0};
  std::vector<Run> flat_runs, vector_runs;
  if (is_receiver_ && receiver) {
    const size_t elem = receiver->bf16 ? 2 : 4;
    if (receiver->layout) {
      flat_runs = model::stream_runs(*receiver->layout, true);
      if (receiver->bf16) vector_runs = model::stream_runs(*receiver->layout, true, StreamPart::Vectors);
    } else {
      flat_runs.push_back(Run{0, 0, receiver->numel});
      if (receiver->bf16 && receiver->vector_numel > 0) vector_runs.push_back(Run{0, 0, receiver->vector_numel});
    }
    uint64_t h = hash_runs(to_host(receiver->flat, static_cast<size_t>(receiver->numel) * elem), flat_runs, elem,
                           false, kFnvBasis);
    if (!vector_runs.empty())
      h = hash_runs(to_host(receiver->vectors, static_cast<size_t>(receiver->vector_numel) * 4), vector_runs, 4, false,
                    h);
    entry[1] = h;
    entry[2] = 1;
  }
  std::vector<uint64_t> all(3 * size);
  mpiCheck(MPI_Allgather(entry, 3, MPI_UINT64_T, all.data(), 3, MPI_UINT64_T, comm_));
  int root = -1;
  for (int r = 0; r < size; ++r)
    if (all[3 * r] & 1) root = r;
  SLIME_CHECK(root >= 0, "weight sync check: no rank is the source");
  // The engines' runs to the source, which answers with the first engine that differs (-1: none).
  auto send_runs = [&](const std::vector<Run>& runs) {
    mpiCheck(MPI_Send(runs.data(), static_cast<int>(runs.size() * 3), MPI_INT64_T, root, 0, comm_));
  };
  int differ = -1;
  if (me == root) {
    if (source && offer_of(source).sharded) source = whole_.flat ? &whole_ : nullptr;  // what the last sync sent
    const size_t elem = source && source->bf16 ? 2 : 4;
    std::vector<unsigned char> flat, vectors;
    if (source) {
      flat = to_host(source->flat, static_cast<size_t>(source->numel) * elem);
      if (source->bf16 && source->vector_numel > 0)
        vectors = to_host(source == &whole_ ? whole_.vectors : gather_vectors(*source),
                          static_cast<size_t>(source->vector_numel) * 4);
    }
    for (int r = 0; r < size; ++r) {
      if (!all[3 * r + 2]) continue;
      std::vector<Run> runs[2];  // flat, vectors
      for (int i = 0; i < 2; ++i) {
        std::vector<Run>& part = runs[i];
        if (r == me) {
          part = i == 0 ? flat_runs : vector_runs;
          continue;
        }
        MPI_Status status;
        mpiCheck(MPI_Probe(r, 0, comm_, &status));
        int count = 0;
        MPI_Get_count(&status, MPI_INT64_T, &count);
        part.resize(static_cast<size_t>(count) / 3);
        mpiCheck(MPI_Recv(part.data(), count, MPI_INT64_T, r, 0, comm_, MPI_STATUS_IGNORE));
      }
      // The engine's runs must lie inside what the source holds.
      auto inside = [](const std::vector<Run>& part, size_t elem_bytes, size_t bytes) {
        for (const Run& run : part)
          if (static_cast<size_t>(run.stream + run.count) * elem_bytes > bytes) return false;
        return true;
      };
      const bool fits = !flat.empty() && inside(runs[0], elem, flat.size()) && inside(runs[1], 4, vectors.size());
      uint64_t want = 0;
      if (fits) {
        want = hash_runs(flat, runs[0], elem, true, kFnvBasis);
        if (!runs[1].empty()) want = hash_runs(vectors, runs[1], 4, true, want);
      }
      if (differ < 0 && (!fits || want != all[3 * r + 1])) differ = r;
    }
  } else if (entry[2]) {
    send_runs(flat_runs);
    send_runs(vector_runs);
  }
  mpiCheck(MPI_Bcast(&differ, 1, MPI_INT, root, comm_));
  if (differ < 0) return true;
  if (report) *report = "rank " + std::to_string(differ) + ": the engine's device weights differ from the trainer's";
  return false;
}

}  // namespace slime::sync
