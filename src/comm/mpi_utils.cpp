#include "comm/mpi_utils.h"

#include <climits>

namespace slime::comm {
namespace {

// MPI counts are int: large buffers go in pieces.
constexpr int64_t kMaxCount = INT_MAX / 2;

template <class T>
void allreduce_chunks(T* data, int64_t n, MPI_Datatype type, MPI_Op op, MPI_Comm comm) {
  if (size(comm) == 1) return;
  for (int64_t start = 0; start < n; start += kMaxCount) {
    int count = static_cast<int>(std::min(kMaxCount, n - start));
    mpiCheck(MPI_Allreduce(MPI_IN_PLACE, data + start, count, type, op, comm));
  }
}

std::vector<int> int_counts(const std::vector<int64_t>& offsets, std::vector<int>* displs) {
  std::vector<int> counts(offsets.size() - 1);
  displs->resize(offsets.size() - 1);
  for (size_t r = 0; r + 1 < offsets.size(); ++r) {
    SLIME_ASSERT(offsets[r + 1] >= offsets[r] && offsets[r + 1] <= INT_MAX, "bad collective offsets");
    counts[r] = static_cast<int>(offsets[r + 1] - offsets[r]);
    (*displs)[r] = static_cast<int>(offsets[r]);
  }
  return counts;
}

}  // namespace

void throw_mpi_error(const char* call, int code, const char* file, int line) {
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(code, text, &length);
  throw_error(cat("MPI error in ", call, " at ", file, ":", line, ": ", std::string(text, length)));
}

int rank(MPI_Comm comm) {
  int r = 0;
  mpiCheck(MPI_Comm_rank(comm, &r));
  return r;
}

int size(MPI_Comm comm) {
  int s = 1;
  mpiCheck(MPI_Comm_size(comm, &s));
  return s;
}

void allreduce_sum(float* data, int64_t n, MPI_Comm comm) { allreduce_chunks(data, n, MPI_FLOAT, MPI_SUM, comm); }
void allreduce_sum(double* data, int64_t n, MPI_Comm comm) { allreduce_chunks(data, n, MPI_DOUBLE, MPI_SUM, comm); }
void allreduce_max(float* data, int64_t n, MPI_Comm comm) { allreduce_chunks(data, n, MPI_FLOAT, MPI_MAX, comm); }

double allreduce_sum(double value, MPI_Comm comm) {
  allreduce_sum(&value, 1, comm);
  return value;
}

int64_t allreduce_sum(int64_t value, MPI_Comm comm) {
  allreduce_chunks(&value, 1, MPI_INT64_T, MPI_SUM, comm);
  return value;
}

uint64_t allreduce_sum_u64(uint64_t value, MPI_Comm comm) {
  allreduce_chunks(&value, 1, MPI_UINT64_T, MPI_SUM, comm);
  return value;
}

bool allreduce_or(bool value, MPI_Comm comm) {
  int v = value ? 1 : 0;
  allreduce_chunks(&v, 1, MPI_INT, MPI_LOR, comm);
  return v != 0;
}

void reduce_scatter_sum(const float* data, float* out, const std::vector<int64_t>& offsets, MPI_Comm comm) {
  SLIME_ASSERT(static_cast<int>(offsets.size()) == size(comm) + 1, "reduce_scatter offsets");
  if (size(comm) == 1) {
    std::copy(data + offsets[0], data + offsets[1], out);
    return;
  }
  std::vector<int> displs;
  std::vector<int> counts = int_counts(offsets, &displs);
  mpiCheck(MPI_Reduce_scatter(data, out, counts.data(), MPI_FLOAT, MPI_SUM, comm));
}

void allgather_inplace(float* data, const std::vector<int64_t>& offsets, MPI_Comm comm) {
  if (size(comm) == 1) return;
  std::vector<int> displs;
  std::vector<int> counts = int_counts(offsets, &displs);
  mpiCheck(MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, data, counts.data(), displs.data(), MPI_FLOAT, comm));
}

void broadcast(void* data, int64_t bytes, int root, MPI_Comm comm) {
  char* p = static_cast<char*>(data);
  for (int64_t start = 0; start < bytes; start += kMaxCount) {
    int count = static_cast<int>(std::min(kMaxCount, bytes - start));
    mpiCheck(MPI_Bcast(p + start, count, MPI_BYTE, root, comm));
  }
}

void broadcast(std::string& text, int root, MPI_Comm comm) {
  int64_t n = static_cast<int64_t>(text.size());
  mpiCheck(MPI_Bcast(&n, 1, MPI_INT64_T, root, comm));
  text.resize(static_cast<size_t>(n));
  broadcast(text.data(), n, root, comm);
}

}  // namespace slime::comm
