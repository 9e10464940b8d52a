#include "rollout/router.h"

#include "core/error.h"

namespace slime::rollout {

Router::Router(std::vector<EngineClient*> engines)
    : engines_(std::move(engines)), outstanding_(engines_.size(), 0), to_router_id_(engines_.size()) {
  SLIME_CHECK(!engines_.empty(), "router: no rollout engines");
}

int64_t Router::submit(GenerateRequest request) {
  size_t target = 0;
  auto session = request.session_id.empty() ? session_engine_.end() : session_engine_.find(request.session_id);
  if (session != session_engine_.end()) {
    target = session->second;
  } else {
    for (size_t e = 1; e < engines_.size(); ++e)
      if (outstanding_[e] < outstanding_[target]) target = e;
    if (!request.session_id.empty()) session_engine_[request.session_id] = target;
  }
  const int64_t engine_id = engines_[target]->add_request(std::move(request));
  const int64_t id = next_id_++;
  placement_[id] = {target, engine_id};
  to_router_id_[target][engine_id] = id;
  ++outstanding_[target];
  return id;
}

std::vector<std::pair<int64_t, GenerateOutput>> Router::step() {
  std::vector<std::pair<int64_t, GenerateOutput>> done;
  for (size_t e = 0; e < engines_.size(); ++e) {
    if (outstanding_[e] == 0) continue;
    for (GenerateOutput& out : engines_[e]->step()) {
      auto it = to_router_id_[e].find(out.id);
      SLIME_ASSERT(it != to_router_id_[e].end(), "router: unknown request finished on engine ", e);
      done.emplace_back(it->second, std::move(out));
      to_router_id_[e].erase(it);
      --outstanding_[e];
    }
  }
  return done;
}

void Router::abort_all() {
  for (EngineClient* engine : engines_) engine->abort_all();
}

bool Router::has_unfinished() const {
  for (int64_t n : outstanding_)
    if (n > 0) return true;
  return false;
}

}  // namespace slime::rollout
