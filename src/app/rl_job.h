// slime-train's RL loop over the trainer and rollout pools (pools.h): slime's train.py, or train_async.py with
// --train-async.
//
// Every rank runs the same program order; a rank does the parts of its pool(s):
//
//   start     trainer pool: build the Trainer (resume from --load, else --ref-load / --hf-checkpoint);
//             trainer rank 0 tells everyone the first rollout id and the data-source state from the checkpoint;
//             the rollout leader loads the prompts and tells everyone --num-rollout (or --num-epoch's count);
//             weights trainer -> engines (version = first rollout id); evaluation before training (slime's rule)
//   step k    (sync)  rollout: generate k, samples into the data buffer -> trainer: take k, train
//                     -> weights trainer -> engines (version k + 1) -> evaluation when due -> metrics -> save when
//                     due (slime saves before the weight update; saving last means a checkpoint always has its
//                     step's metrics line; the saved state is the same)
//             (async) rollout: generate k + 1 while the trainer trains k (it was produced during step k - 1);
//                     weights every --update-weights-interval steps, after the rollout in flight finished
//   end of k  all ranks agree whether to stop early (--exit-signal-handler, --exit-duration-in-mins,
//             --exit-interval; app/early_exit.h): if so, step k is saved and the loop ends
//
// The data buffer (buffer/rma_ring.h): the rollout leader puts each sample of a rollout into the RMA ring of one
// data-parallel trainer rank (balanced by tokens, buffer/balance.h), then an end-of-rollout message carrying the
// rollout metrics and the data-source state after that rollout (saved in the trainer checkpoint: a resumed run
// continues with the prompts, epoch and partial groups the interrupted run would have used). Evaluation results
// travel the same way to trainer rank 0, which writes every step's metrics (stdout and --metrics-file /
// <save>/metrics.jsonl). The trainer currently needs the whole rollout on every rank (its data-parallel schedule
// re-balances micro-batches by tokens); the trainer pool all-gathers the shares after they arrive.
#pragma once

#include <mpi.h>

#include "core/args.h"

namespace slime::app {

// Collective over `world`. Returns when the last rollout step is done (and saved, when --save is set): 0; or when
// an early-exit option stopped the run after a saved step (app/early_exit.h): that option's exit status.
int run_rl_job(const Args& args, MPI_Comm world);

}  // namespace slime::app
