// How slime-train's MPI ranks are divided between the trainer pool and the rollout pool.
//
//   disaggregated (default)   world = trainer ranks [0, T) + rollout ranks [T, T + R)
//                             T = --actor-num-nodes x --actor-num-gpus-per-node, R = --rollout-num-gpus
//   --colocate                world = T ranks, each both a trainer rank and a rollout rank (R = T); the phases
//                             alternate and the engines release their KV cache while the trainer runs
//   --debug-train-only        world = T ranks and no engines (R = 0); trainer rank 0 runs the rollout function
//                             (e.g. slime's SFT rollout, which only tokenizes)
//
// A rollout engine spans --rollout-num-gpus-per-engine consecutive rollout ranks (tensor parallel inside the engine:
// its first rank runs the engine, the others follow its steps, rollout/tensor_parallel_runner.h); rollout rank 0 is
// the rollout leader: it owns the data source, the router and the rollout function, and is the producer of the data
// buffer.
// A world size that differs from what the options ask for is an error that says what they ask for.
#pragma once

#include <mpi.h>

#include <string>

#include "core/args.h"

namespace slime::app {

struct PoolLayout {
  int world_size = 1;
  int trainer_ranks = 1;  // T
  int rollout_ranks = 0;  // R (0: no engines)
  int engine_size = 1;    // ranks per engine
  bool colocate = false;

  bool is_trainer(int rank) const { return rank < trainer_ranks; }
  bool is_rollout(int rank) const { return rollout_rank(rank) >= 0; }
  // Rank within the rollout pool, or -1.
  int rollout_rank(int rank) const;
  int num_engines() const { return rollout_ranks / engine_size; }
  // Rollout rank of engine e's first rank (the one that runs it; the router talks to it).
  int engine_head(int e) const { return e * engine_size; }
  // World rank that runs the rollout function (rollout rank 0, or trainer rank 0 when there are no engines).
  int rollout_leader() const;
  // World rank of rollout rank r.
  int rollout_world_rank(int r) const { return colocate ? r : trainer_ranks + r; }
  std::string describe() const;
};

// The layout the options ask for on `world_size` ranks; errors name the options and the sizes.
PoolLayout plan_pools(const Args& args, int world_size);

// The communicators of one rank: MPI_COMM_NULL where the rank is not in the pool.
struct PoolComms {
  MPI_Comm trainer = MPI_COMM_NULL;  // the trainer pool
  MPI_Comm rollout = MPI_COMM_NULL;  // the rollout pool (its rank 0 is the rollout leader when R > 0)
  MPI_Comm engine = MPI_COMM_NULL;   // this rank's engine: its tensor-parallel group (rank 0 runs the engine)
  static PoolComms create(const PoolLayout& layout, MPI_Comm world);  // collective over world
  void release();
};

}  // namespace slime::app
