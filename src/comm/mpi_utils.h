// MPI helpers: checked calls that name the failing call, and typed collectives on host buffers.
#pragma once

#include <mpi.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/error.h"

namespace slime::comm {

[[noreturn]] void throw_mpi_error(const char* call, int code, const char* file, int line);

}  // namespace slime::comm

#define mpiCheck(call)                                                                        \
  do {                                                                                        \
    int mpi_code_ = (call);                                                                   \
    if (mpi_code_ != MPI_SUCCESS) ::slime::comm::throw_mpi_error(#call, mpi_code_, __FILE__, __LINE__); \
  } while (0)

namespace slime::comm {

int rank(MPI_Comm comm);
int size(MPI_Comm comm);

// In-place sums / maxima over `comm` (a no-op on a communicator of one rank).
void allreduce_sum(float* data, int64_t n, MPI_Comm comm);
void allreduce_sum(double* data, int64_t n, MPI_Comm comm);
void allreduce_max(float* data, int64_t n, MPI_Comm comm);
double allreduce_sum(double value, MPI_Comm comm);
int64_t allreduce_sum(int64_t value, MPI_Comm comm);
uint64_t allreduce_sum_u64(uint64_t value, MPI_Comm comm);  // modulo 2^64
bool allreduce_or(bool value, MPI_Comm comm);

// Reduce-scatter of a flat buffer: rank r receives the sum over ranks of data[offsets[r], offsets[r+1]).
// offsets has size(comm) + 1 entries; `out` holds offsets[r+1] - offsets[r] values.
void reduce_scatter_sum(const float* data, float* out, const std::vector<int64_t>& offsets, MPI_Comm comm);
// All-gather in place: rank r contributes data[offsets[r], offsets[r+1]), everyone ends with the whole buffer.
void allgather_inplace(float* data, const std::vector<int64_t>& offsets, MPI_Comm comm);

void broadcast(void* data, int64_t bytes, int root, MPI_Comm comm);
void broadcast(std::string& text, int root, MPI_Comm comm);

}  // namespace slime::comm
