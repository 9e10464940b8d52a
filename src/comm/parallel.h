// Process groups of the trainer pool: tensor parallel (TP) and data parallel (DP), in Megatron's rank order
// (TP fastest: pool rank = dp_rank * tp_size + tp_rank).
//
// A Group of size 1 never touches MPI, so single-rank code (unit tests, tools) needs no MPI_Init.
#pragma once

#include <mpi.h>

#include <cstdint>
#include <vector>

namespace slime::comm {

struct Group {
  MPI_Comm comm = MPI_COMM_NULL;  // MPI_COMM_NULL when size == 1 and no MPI is involved
  int rank = 0;
  int size = 1;

  bool single() const { return size == 1; }
  // Collectives that return at once on a single-rank group.
  void allreduce_sum(float* data, int64_t n) const;
  void allreduce_sum(double* data, int64_t n) const;
  void allreduce_max(float* data, int64_t n) const;
  double sum(double value) const;
  uint64_t sum_u64(uint64_t value) const;
  void barrier() const;
};

struct ParallelGroups {
  Group pool;  // every trainer rank
  Group tp;    // the ranks that together hold one model replica
  Group dp;    // the ranks that hold the same shard of the model

  static ParallelGroups single();
  // Collective over `pool`. pool size must be a multiple of tensor_parallel_size (error otherwise).
  static ParallelGroups create(MPI_Comm pool, int tensor_parallel_size);
  void release();  // frees the communicators this object created
};

}  // namespace slime::comm
