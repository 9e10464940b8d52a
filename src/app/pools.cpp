#include "app/pools.h"

#include "comm/mpi_utils.h"
#include "core/error.h"

namespace slime::app {

int PoolLayout::rollout_rank(int rank) const {
  if (colocate) return rank < rollout_ranks ? rank : -1;
  const int r = rank - trainer_ranks;
  return r >= 0 && r < rollout_ranks ? r : -1;
}

int PoolLayout::rollout_leader() const { return rollout_ranks > 0 ? rollout_world_rank(0) : 0; }

std::string PoolLayout::describe() const {
  std::string s = cat(world_size, " ranks: trainer pool ", trainer_ranks, " rank(s)");
  if (rollout_ranks == 0) return s + ", no rollout engines (trainer rank 0 runs the rollout function)";
  if (trainer_ranks == 0)
    return cat(world_size, " ranks: --debug-rollout-only, ", num_engines(), " rollout engine(s), no trainer");
  if (colocate) return s + cat(", colocated with ", num_engines(), " rollout engine(s) of ", engine_size, " rank(s)");
  return s + cat(" [0, ", trainer_ranks, "), rollout pool ", rollout_ranks, " rank(s) [", trainer_ranks, ", ",
                 trainer_ranks + rollout_ranks, ") = ", num_engines(), " engine(s) of ", engine_size, " rank(s)");
}

PoolLayout plan_pools(const Args& args, int world_size) {
  PoolLayout p;
  p.world_size = world_size;
  const int64_t trainers = args.actor_num_nodes * args.actor_num_gpus_per_node;
  const int64_t rollout = args.rollout_num_gpus.value_or(0);
  p.trainer_ranks = static_cast<int>(trainers);
  p.rollout_ranks = static_cast<int>(args.debug_train_only ? 0 : rollout);
  p.engine_size = static_cast<int>(args.rollout_num_gpus_per_engine);
  p.colocate = args.colocate;
  SLIME_CHECK(p.rollout_ranks % p.engine_size == 0, "--rollout-num-gpus (", p.rollout_ranks,
              ") must be a multiple of --rollout-num-gpus-per-engine (", p.engine_size, ")");
  if (args.debug_rollout_only) {  // slime: no trainer, every rank an engine
    p.trainer_ranks = 0;
    SLIME_CHECK(world_size == p.rollout_ranks, "world size ", world_size, " does not match the options: "
                "--debug-rollout-only with --rollout-num-gpus ", rollout, " needs ", rollout, " ranks (mpirun -np ",
                rollout, ")");
    return p;
  }
  const std::string asked = cat("--actor-num-nodes ", args.actor_num_nodes, " x --actor-num-gpus-per-node ",
                                args.actor_num_gpus_per_node, " = ", trainers, " trainer rank(s)");
  if (p.colocate) {
    SLIME_CHECK(p.rollout_ranks == p.trainer_ranks, "--colocate: --rollout-num-gpus (", rollout,
                ") must equal the trainer pool (", asked, ")");
    SLIME_CHECK(world_size == p.trainer_ranks, "world size ", world_size, " does not match the options: --colocate with ",
                asked, " needs exactly ", trainers, " ranks (mpirun -np ", trainers, ")");
  } else {
    const int64_t need = trainers + p.rollout_ranks;
    SLIME_CHECK(world_size == need, "world size ", world_size, " does not match the options: ", asked, " + ",
                p.rollout_ranks, " rollout rank(s) (",
                args.debug_train_only ? "--debug-train-only: none" : "--rollout-num-gpus", ") = ", need,
                " ranks (mpirun -np ", need, ")");
  }
  return p;
}

PoolComms PoolComms::create(const PoolLayout& layout, MPI_Comm world) {
  const int rank = comm::rank(world);
  PoolComms c;
  mpiCheck(MPI_Comm_split(world, layout.is_trainer(rank) ? 0 : MPI_UNDEFINED, rank, &c.trainer));
  const int rollout_rank = layout.rollout_rank(rank);
  mpiCheck(MPI_Comm_split(world, rollout_rank >= 0 ? 0 : MPI_UNDEFINED, rollout_rank, &c.rollout));
  mpiCheck(MPI_Comm_split(world, rollout_rank >= 0 ? rollout_rank / layout.engine_size : MPI_UNDEFINED, rollout_rank,
                          &c.engine));
  return c;
}

void PoolComms::release() {
  if (trainer != MPI_COMM_NULL) MPI_Comm_free(&trainer);
  if (rollout != MPI_COMM_NULL) MPI_Comm_free(&rollout);
  if (engine != MPI_COMM_NULL) MPI_Comm_free(&engine);
}

}  // namespace slime::app
