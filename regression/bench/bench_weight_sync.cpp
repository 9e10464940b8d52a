// make bench (GPU; mpirun -np 2): weight sync of a Qwen2.5-shaped model from a trainer rank's GPU weights (rank 0:
// model::CudaDecoder, fp32 master + bf16 copy) to a GPU rollout engine (rank 1), three ways, in the same call:
//   - the device path (sync/device_weight_sync.h): bf16 buffers straight from the trainer's into the engine's;
//   - a raw broadcast of the same bytes from one device buffer to another over the same transport (the floor);
//   - the host path it replaces: the trainer's fp32 weights copied to host memory, sync::WeightSync's MPI broadcast
//     of fp32 buckets into the engine's host model, the engine's reload (host fp32 -> device bf16).
// With the two ranks on one GPU the transport is host-staged MPI; with a GPU each it is NCCL.
// Usage: bench_weight_sync [0.5b|1.5b] [bucket MiB]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "bench_shapes.h"
#include "comm/device_comm.h"
#include "comm/mpi_utils.h"
#include "kernels/cuda/device.h"
#include "model/cuda_decoder.h"
#include "model/decoder.h"
#include "rollout/engine.h"
#include "sync/device_weight_sync.h"
#include "sync/weight_sync.h"

using namespace slime;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Best of `reps` timings of `run` across the ranks (each timing: barrier, run, the slowest rank).
template <class F>
double best_of(int reps, F&& run) {
  double best = 1e30;
  for (int i = 0; i < reps; ++i) {
    MPI_Barrier(MPI_COMM_WORLD);
    const auto t = Clock::now();
    run();
    double s = seconds_since(t);
    MPI_Allreduce(MPI_IN_PLACE, &s, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    best = std::min(best, s);
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  const std::string shape = argc > 1 ? argv[1] : "1.5b";
  const int64_t bucket = (argc > 2 ? std::atoll(argv[2]) : 512) << 20;
  const int rank = comm::rank(MPI_COMM_WORLD), size = comm::size(MPI_COMM_WORLD);
  if (size != 2) {
    if (rank == 0) std::fprintf(stderr, "bench_weight_sync: run with mpirun -np 2\n");
    MPI_Finalize();
    return 2;
  }
  bool ok = true;
  {  // every communicator is freed before MPI_Finalize
    cuda::init_local_device();
    const model::ModelConfig c = shape == "0.5b" ? bench::qwen25(896, 4864, 24, 14) : bench::qwen25(1536, 8960, 28, 12);
    const bool trainer = rank == 0, receiver = rank == 1;

    model::Decoder host(c);  // the trainer's host copy (rank 0) or the engine's host model (rank 1)
    std::unique_ptr<model::CudaDecoder> gpu;
    model::DeviceWeights source;
    std::unique_ptr<rollout::Engine> engine;
    if (trainer) {
      gpu = std::make_unique<model::CudaDecoder>(c);
      gpu->init_random(7);
      source = gpu->device_weights();
    } else {
      rollout::EngineConfig e;
      e.backend = rollout::EngineBackend::Cuda;
      e.num_blocks = 256;
      e.block_size = 16;
      e.max_running = 16;
      e.max_batched_tokens = 1024;
      engine = std::make_unique<rollout::Engine>(host, e);
    }
    sync::WeightSync ws(MPI_COMM_WORLD, trainer, receiver, bucket, trainer ? 0 : -1);
    sync::DeviceWeightSync ds(MPI_COMM_WORLD, ws.bcast_comm(), trainer, receiver, bucket);
    const model::DeviceWeights* dst = receiver ? engine->runner().device_weights_for_sync() : nullptr;

    const double device = best_of(3, [&] { ok = ds.sync(trainer ? &source : nullptr, dst) && ok; });
    const double bytes = static_cast<double>(ds.bytes_sent());

    // The floor: one broadcast of the same bytes, device buffer to device buffer, same transport.
    comm::DeviceComm raw(comm::Group{MPI_COMM_WORLD, rank, size}, "bench");
    Tensor buffer = Tensor::empty({static_cast<int64_t>(bytes)}, DType::U8, Device::CUDA);
    const double floor = best_of(3, [&] {
      for (int64_t off = 0; off < static_cast<int64_t>(bytes); off += bucket)
        raw.broadcast(static_cast<char*>(buffer.raw()) + off,
                      static_cast<size_t>(std::min<int64_t>(bucket, static_cast<int64_t>(bytes) - off)), 0);
      cuda::synchronize();
    });

    // The host path.
    const comm::ParallelGroups single = comm::ParallelGroups::single();
    const double host_path = best_of(2, [&] {
      if (trainer) gpu->download(host.params(), false);
      ws.sync(trainer ? &host : nullptr, trainer ? &single : nullptr, receiver ? &host : nullptr, 1);
      if (receiver) engine->reload_weights();
    });

    if (rank == 0) {
      std::printf("device: %s x%d ranks, transport %s\n", cuda::device_name(0).c_str(), size, ds.transport());
      std::printf("weight sync %s (%.2fB params, %.2f GB bf16 + fp32 vectors): device path %.1f ms (%.1f GB/s), "
                  "raw broadcast %.1f ms, ratio %.2fx; host path (fp32 to host, MPI, reload) %.1f ms, %.1fx the "
                  "device path%s\n",
                  shape.c_str(), static_cast<double>(c.num_parameters()) / 1e9, bytes / 1e9, device * 1e3,
                  bytes / device / 1e9, floor * 1e3, device / floor, host_path * 1e3, host_path / device,
                  ok ? "" : " (DEVICE PATH REFUSED)");
    }
  }
  MPI_Finalize();
  return ok ? 0 : 1;
}
