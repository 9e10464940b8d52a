// comm::DeviceComm on GPU buffers (label gpu; mpirun -np 2): every collective against the sum or copy computed on
// the host, over the transport the machine gives (two ranks sharing one GPU: host-staged MPI; a GPU each: NCCL),
// over the forced host-staged transport, and over NCCL's one-rank communicators (SLIME_DEVICE_COMM=nccl).
#include <catch2/catch.hpp>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <random>
#include <vector>

#include "comm/device_comm.h"
#include "comm/mpi_utils.h"
#include "core/dtype.h"
#include "core/rng.h"
#include "core/tensor.h"
#include "kernels/cuda/device.h"

using namespace slime;

namespace {

comm::Group world() {
  comm::Group g;
  g.comm = MPI_COMM_WORLD;
  g.rank = comm::rank(MPI_COMM_WORLD);
  g.size = comm::size(MPI_COMM_WORLD);
  return g;
}

// Rank r's input: a fresh random vector (seeded by rank and a per-run seed shared by all ranks).
std::vector<float> input(int rank, int64_t n, uint64_t seed) {
  Rng rng(seed * 131 + rank);
  std::vector<float> v(n);
  for (float& x : v) x = static_cast<float>(rng.normal());
  return v;
}

// `host` up to the GPU, op(device pointer) there, and back.
template <class Op>
std::vector<float> round_trip(const std::vector<float>& host, Op op) {
  Tensor d = Tensor::empty({static_cast<int64_t>(host.size())}, DType::F32, Device::CUDA);
  cuda::copy_to_device(d.raw(), host.data(), host.size() * 4);
  op(d.data<float>());
  std::vector<float> out(host.size());
  cuda::copy_to_host(out.data(), d.raw(), out.size() * 4);
  return out;
}

void check_collectives(const comm::Group& g, const char* label) {
  comm::DeviceComm dc(g, "test");
  INFO(label << ": transport " << dc.transport_name() << ", " << g.size << " ranks");
  uint64_t seed = static_cast<uint64_t>(std::random_device{}());
  mpiCheck(MPI_Bcast(&seed, 1, MPI_UINT64_T, 0, g.single() ? MPI_COMM_SELF : g.comm));
  for (int64_t count : {int64_t{1}, int64_t{1000}, int64_t{1} << 20}) {
    const int64_t n = count * g.size;
    std::vector<std::vector<float>> all;
    for (int r = 0; r < g.size; ++r) all.push_back(input(r, n, seed + count));
    std::vector<double> sum(n, 0.0);
    for (int r = 0; r < g.size; ++r)
      for (int64_t i = 0; i < n; ++i) sum[i] += all[r][i];
    const std::vector<float>& mine = all[g.rank];

    const std::vector<float> rs = round_trip(mine, [&](float* d) { dc.reduce_scatter_sum_inplace(d, count); });
    double worst = 0;
    for (int64_t i = g.rank * count; i < (g.rank + 1) * count; ++i)
      worst = std::max(worst, std::abs(rs[i] - sum[i]) / (1e-3 + std::abs(sum[i])));
    CHECK(worst < 1e-5);

    // all-gather: block r of rank r's input, everywhere; on the default stream and on a stream of the caller's
    // (the rollout engine's)
    cudaStream_t stream = nullptr;
    REQUIRE(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking) == cudaSuccess);
    int64_t wrong = 0;
    for (cudaStream_t s : {static_cast<cudaStream_t>(nullptr), stream}) {
      const std::vector<float> ag = round_trip(mine, [&](float* d) {
        dc.all_gather_inplace(d, count, s);
        cudaStreamSynchronize(s);
      });
      for (int r = 0; r < g.size; ++r)
        for (int64_t i = r * count; i < (r + 1) * count; ++i) wrong += ag[i] != all[r][i];
    }
    CHECK(wrong == 0);

    worst = 0;
    for (int variant = 0; variant < 2; ++variant) {
      const std::vector<float> ar = round_trip(mine, [&](float* d) {
        if (variant == 0) {
          dc.all_reduce_sum(d, n);
        } else {
          dc.all_reduce_sum(d, n, DType::F32, stream);
          cudaStreamSynchronize(stream);
        }
      });
      for (int64_t i = 0; i < n; ++i) worst = std::max(worst, std::abs(ar[i] - sum[i]) / (1e-3 + std::abs(sum[i])));
    }
    cudaStreamDestroy(stream);
    CHECK(worst < 1e-5);

    // bf16 all-reduce: the inputs rounded to bf16; the sum of those within bf16 rounding, the same bits everywhere.
    {
      std::vector<uint16_t> bits(n);
      for (int64_t i = 0; i < n; ++i) bits[i] = f32_to_bf16(mine[i]);
      Tensor d = Tensor::empty({n}, DType::BF16, Device::CUDA);
      cuda::copy_to_device(d.raw(), bits.data(), n * 2);
      dc.all_reduce_sum(d.raw(), n, DType::BF16);
      cuda::copy_to_host(bits.data(), d.raw(), n * 2);
      worst = 0;
      for (int64_t i = 0; i < n; ++i) {
        double want = 0;
        for (int r = 0; r < g.size; ++r) want += bf16_to_f32(f32_to_bf16(all[r][i]));
        worst = std::max(worst, std::abs(bf16_to_f32(bits[i]) - want) / (1e-2 + std::abs(want)));
      }
      CHECK(worst <= 1.0 / 128);  // one bf16 rounding of the sum (8 bits of mantissa)
      std::vector<uint16_t> first = bits;
      if (!g.single()) mpiCheck(MPI_Bcast(first.data(), static_cast<int>(n), MPI_UINT16_T, 0, g.comm));
      CHECK(first == bits);
      CHECK_THROWS_WITH(dc.all_reduce_sum(d.raw(), n, DType::I32), Catch::Contains("I32 is not supported"));
    }

    // broadcast of bytes from the last rank
    const int root = g.size - 1;
    Tensor d = Tensor::empty({n}, DType::F32, Device::CUDA);
    cuda::copy_to_device(d.raw(), mine.data(), n * 4);
    dc.broadcast(d.raw(), static_cast<size_t>(n) * 4 - 3, root);  // an odd byte count
    std::vector<float> bc(n);
    cuda::copy_to_host(bc.data(), d.raw(), n * 4);
    wrong = 0;
    for (int64_t i = 0; i + 1 < n; ++i) wrong += bc[i] != all[root][i];
    CHECK(wrong == 0);
  }
}

}  // namespace

TEST_CASE("device collectives over the machine's transport, forced host staging, and one-rank NCCL") {
  if (cuda::device_count() == 0) {
    WARN("no GPU visible: skipped");
    return;
  }
  cuda::init_local_device();
  const comm::Group g = world();
  check_collectives(g, "default");

  setenv("SLIME_DEVICE_COMM", "mpi", 1);
  {
    comm::DeviceComm dc(g, "forced");
    CHECK(dc.transport() == comm::DeviceTransport::HostMpi);
  }
  check_collectives(g, "forced mpi");

  // Every rank alone, on NCCL's one-rank communicator.
  setenv("SLIME_DEVICE_COMM", "nccl", 1);
  comm::Group self{MPI_COMM_SELF, 0, 1};
  CHECK(comm::DeviceComm::needed(self));
  {
    comm::DeviceComm dc(self, "self");
    CHECK(dc.transport() == comm::DeviceTransport::Nccl);
  }
  check_collectives(self, "one-rank nccl");

  // Ranks sharing a GPU cannot be forced onto NCCL: a clear error on every rank.
  if (g.size > 1 && cuda::device_count() < g.size) {
    CHECK_THROWS_WITH(comm::DeviceComm(g, "data-parallel"), Catch::Contains("share a GPU"));
  }
  // A value that is neither is refused by name.
  setenv("SLIME_DEVICE_COMM", "tcp", 1);
  CHECK_THROWS_WITH(comm::DeviceComm(g, "data-parallel"),
                    Catch::Contains("SLIME_DEVICE_COMM=tcp: expected nccl or mpi"));
  unsetenv("SLIME_DEVICE_COMM");
  CHECK_FALSE(comm::DeviceComm::needed(self));
}
