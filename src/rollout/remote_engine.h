// Engines on other ranks of the rollout pool, driven by the rollout leader's router over MPI point-to-point.
//
//   leader (rollout pool rank 0)                      engine rank r (serve_engine)
//   RemoteEngine::add_request  -- kTagRequest -->     engine.add_request
//   RemoteEngine::abort_all    -- kTagAbort   -->     engine.abort_all
//   RemoteEngine::step (poll)  <-- kTagOutputs --     finished outputs after each engine.step()
//   stop_remote_engine         -- kTagStop    -->     serve_engine returns (the engine is idle by then)
//
// Messages are JSON (a request is a few hundred bytes; one engine step takes milliseconds). Both sides poll with a
// short sleep when idle, so ranks sharing cores do not starve each other. serve_engine runs for one rollout or
// evaluation; between those the ranks follow the loop's fixed program order (weight sync, training).
#pragma once

#include <mpi.h>

#include <cstdint>
#include <vector>

#include "rollout/engine.h"
#include "rollout/engine_client.h"

namespace slime::rollout {

class RemoteEngine : public EngineClient {
 public:
  // The engine served by rank `server` of `comm` (this rank is the leader of that communicator's rollout pool).
  RemoteEngine(MPI_Comm comm, int server);
  int64_t add_request(GenerateRequest request) override;
  std::vector<GenerateOutput> step() override;
  void abort_all() override;
  // Ends the server's serve_engine loop. Every request must have been reported by step() before.
  void stop();
  int server() const { return server_; }

 private:
  MPI_Comm comm_;
  int server_;
  int64_t next_id_ = 0;
  int64_t outstanding_ = 0;
  int idle_polls_ = 0;
};

// The pause of a poll loop that found nothing: longer the longer nothing happened (`idle_polls`), 20 us up to 1 ms.
void idle_wait(int idle_polls);

// Serves requests of the leader (rank `leader` of `comm`) on `engine` until the leader calls stop().
void serve_engine(Engine& engine, MPI_Comm comm, int leader);

}  // namespace slime::rollout
