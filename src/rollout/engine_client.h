// What the router needs of an engine: queue a request, advance, abort. The in-process Engine (engine.h) is one; a
// RemoteEngine (remote_engine.h) forwards to an engine served by another MPI rank of the rollout pool.
#pragma once

#include <cstdint>
#include <vector>

#include "rollout/sampling_params.h"

namespace slime::rollout {

struct GenerateRequest;
struct GenerateOutput;

class EngineClient {
 public:
  virtual ~EngineClient() = default;
  // Queues a request; returns the engine's id for it (unique per engine).
  virtual int64_t add_request(GenerateRequest request) = 0;
  // Advances the engine (a scheduling step in process; a poll for finished requests for a remote one) and returns
  // the requests that finished, aborted ones included.
  virtual std::vector<GenerateOutput> step() = 0;
  // Ends every unfinished request with finish reason "abort"; their outputs come from later step() calls.
  virtual void abort_all() = 0;
};

}  // namespace slime::rollout
