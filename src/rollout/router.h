// The router in front of a rollout pool's engines (sglang_router's role, in process).
//
// A request goes to the engine with the fewest outstanding requests (ties: the lowest index), except that requests of
// a session already seen go to the same engine, so a multi-turn conversation finds its earlier turns in that
// engine's prefix cache. abort_all ends every outstanding request on every engine (slime aborts the surplus once
// enough groups are collected).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "rollout/engine.h"
#include "rollout/engine_client.h"

namespace slime::rollout {

class Router {
 public:
  // Engines in process or remote (engine_client.h); the router does not own them.
  explicit Router(std::vector<EngineClient*> engines);

  // Returns a router-wide request id.
  int64_t submit(GenerateRequest request);
  // Steps every engine that has work; returns (router id, output) of the requests that finished.
  std::vector<std::pair<int64_t, GenerateOutput>> step();
  void abort_all();
  bool has_unfinished() const;
  int64_t outstanding(size_t engine) const { return outstanding_[engine]; }
  // Which engine served (or serves) a router request id.
  size_t engine_of(int64_t id) const { return placement_.at(id).first; }

 private:
  std::vector<EngineClient*> engines_;
  std::vector<int64_t> outstanding_;
  std::map<std::string, size_t> session_engine_;
  std::map<int64_t, std::pair<size_t, int64_t>> placement_;          // router id -> (engine, engine's id)
  std::vector<std::map<int64_t, int64_t>> to_router_id_;             // per engine: engine id -> router id
  int64_t next_id_ = 0;
};

}  // namespace slime::rollout
