#include "comm/parallel.h"

#include "comm/mpi_utils.h"

namespace slime::comm {

void Group::allreduce_sum(float* data, int64_t n) const {
  if (size > 1) comm::allreduce_sum(data, n, comm);
}
void Group::allreduce_sum(double* data, int64_t n) const {
  if (size > 1) comm::allreduce_sum(data, n, comm);
}
void Group::allreduce_max(float* data, int64_t n) const {
  if (size > 1) comm::allreduce_max(data, n, comm);
}
double Group::sum(double value) const { return size > 1 ? comm::allreduce_sum(value, comm) : value; }
uint64_t Group::sum_u64(uint64_t value) const { return size > 1 ? comm::allreduce_sum_u64(value, comm) : value; }
void Group::barrier() const {
  if (size > 1) mpiCheck(MPI_Barrier(comm));
}

ParallelGroups ParallelGroups::single() { return ParallelGroups{}; }

ParallelGroups ParallelGroups::create(MPI_Comm pool, int tensor_parallel_size) {
  ParallelGroups g;
  const int pool_rank = rank(pool), pool_size = size(pool);
  SLIME_CHECK(tensor_parallel_size >= 1 && pool_size % tensor_parallel_size == 0,
              "--tensor-model-parallel-size ", tensor_parallel_size, " does not divide the ", pool_size,
              " trainer ranks");
  mpiCheck(MPI_Comm_dup(pool, &g.pool.comm));
  g.pool.rank = pool_rank;
  g.pool.size = pool_size;
  const int tp_rank = pool_rank % tensor_parallel_size, dp_rank = pool_rank / tensor_parallel_size;
  mpiCheck(MPI_Comm_split(pool, dp_rank, tp_rank, &g.tp.comm));
  mpiCheck(MPI_Comm_split(pool, tp_rank, dp_rank, &g.dp.comm));
  g.tp.rank = tp_rank;
  g.tp.size = tensor_parallel_size;
  g.dp.rank = dp_rank;
  g.dp.size = pool_size / tensor_parallel_size;
  return g;
}

void ParallelGroups::release() {
  for (Group* group : {&pool, &tp, &dp}) {
    if (group->comm != MPI_COMM_NULL) MPI_Comm_free(&group->comm);
    group->comm = MPI_COMM_NULL;
  }
}

}  // namespace slime::comm
