#include "rollout/remote_engine.h"

#include <chrono>
#include <cstring>
#include <map>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace slime::rollout {
namespace {

constexpr int kTagRequest = 7101, kTagAbort = 7102, kTagOutputs = 7103, kTagStop = 7104;
using nlohmann::json;

void send_text(const std::string& text, int dest, int tag, MPI_Comm comm) {
  MPI_Send(text.data(), static_cast<int>(text.size()), MPI_CHAR, dest, tag, comm);
}

// Receives the message `status` announced (from MPI_Iprobe).
std::string receive_text(const MPI_Status& status, MPI_Comm comm) {
  int count = 0;
  MPI_Get_count(&status, MPI_CHAR, &count);
  std::string text(static_cast<size_t>(count), '\0');
  MPI_Recv(text.data(), count, MPI_CHAR, status.MPI_SOURCE, status.MPI_TAG, comm, MPI_STATUS_IGNORE);
  return text;
}

json request_to_json(int64_t id, const GenerateRequest& r) {
  const SamplingParams& p = r.params;
  return {{"id", id},
          {"prompt", r.prompt},
          {"session_id", r.session_id},
          {"temperature", p.temperature},
          {"top_p", p.top_p},
          {"top_k", p.top_k},
          {"max_new_tokens", p.max_new_tokens},
          {"stop", p.stop},
          {"stop_token_ids", p.stop_token_ids},
          {"ignore_eos", p.ignore_eos},
          {"seed", p.seed}};
}

GenerateRequest request_from_json(const json& j) {
  GenerateRequest r;
  r.prompt = j.at("prompt").get<std::vector<int64_t>>();
  r.session_id = j.at("session_id").get<std::string>();
  SamplingParams& p = r.params;
  p.temperature = j.at("temperature").get<float>();
  p.top_p = j.at("top_p").get<float>();
  p.top_k = j.at("top_k").get<int64_t>();
  p.max_new_tokens = j.at("max_new_tokens").get<int64_t>();
  p.stop = j.at("stop").get<std::vector<std::string>>();
  p.stop_token_ids = j.at("stop_token_ids").get<std::vector<int64_t>>();
  p.ignore_eos = j.at("ignore_eos").get<bool>();
  p.seed = j.at("seed").get<uint64_t>();
  return r;
}

json output_to_json(const GenerateOutput& o) {
  // Log-probs travel as their bit patterns: JSON's decimal round trip of a float is exact, but keep it obvious.
  std::vector<uint32_t> bits(o.logprobs.size());
  for (size_t i = 0; i < bits.size(); ++i) std::memcpy(&bits[i], &o.logprobs[i], sizeof(float));
  return {{"id", o.id},
          {"tokens", o.tokens},
          {"logprob_bits", bits},
          {"finish_reason", o.finish_reason},
          {"matched_stop", o.matched_stop},
          {"prompt_tokens", o.prompt_tokens},
          {"cached_tokens", o.cached_tokens},
          {"weight_version", o.weight_version}};
}

GenerateOutput output_from_json(const json& j) {
  GenerateOutput o;
  o.id = j.at("id").get<int64_t>();
  o.tokens = j.at("tokens").get<std::vector<int64_t>>();
  const auto bits = j.at("logprob_bits").get<std::vector<uint32_t>>();
  o.logprobs.resize(bits.size());
  for (size_t i = 0; i < bits.size(); ++i) std::memcpy(&o.logprobs[i], &bits[i], sizeof(float));
  o.finish_reason = j.at("finish_reason").get<std::string>();
  o.matched_stop = j.at("matched_stop").get<std::string>();
  o.prompt_tokens = j.at("prompt_tokens").get<int64_t>();
  o.cached_tokens = j.at("cached_tokens").get<int64_t>();
  o.weight_version = j.at("weight_version").get<int64_t>();
  return o;
}

}  // namespace

void idle_wait(int idle_polls) {
  const int us = idle_polls < 8 ? 20 : idle_polls < 64 ? 200 : 1000;
  std::this_thread::sleep_for(std::chrono::microseconds(us));
}

RemoteEngine::RemoteEngine(MPI_Comm comm, int server) : comm_(comm), server_(server) {}

int64_t RemoteEngine::add_request(GenerateRequest request) {
  const int64_t id = next_id_++;
  send_text(request_to_json(id, request).dump(), server_, kTagRequest, comm_);
  ++outstanding_;
  return id;
}

std::vector<GenerateOutput> RemoteEngine::step() {
  std::vector<GenerateOutput> done;
  for (;;) {
    int flag = 0;
    MPI_Status status;
    MPI_Iprobe(server_, kTagOutputs, comm_, &flag, &status);
    if (!flag) break;
    const json batch = json::parse(receive_text(status, comm_));
    for (const json& o : batch) done.push_back(output_from_json(o));
  }
  outstanding_ -= static_cast<int64_t>(done.size());
  if (done.empty() && outstanding_ > 0) {
    idle_wait(idle_polls_++);
  } else {
    idle_polls_ = 0;
  }
  return done;
}

void RemoteEngine::abort_all() { send_text("", server_, kTagAbort, comm_); }

void RemoteEngine::stop() {
  SLIME_CHECK(outstanding_ == 0, "remote engine on rank ", server_, ": stopped with ", outstanding_,
              " requests unreported");
  send_text("", server_, kTagStop, comm_);
}

void serve_engine(Engine& engine, MPI_Comm comm, int leader) {
  int idle_polls = 0;
  std::map<int64_t, int64_t> to_leader_id;  // engine's request id -> the leader's
  for (;;) {
    bool stop = false;
    for (;;) {
      int flag = 0;
      MPI_Status status;
      MPI_Iprobe(leader, MPI_ANY_TAG, comm, &flag, &status);
      if (!flag) break;
      const std::string text = receive_text(status, comm);
      if (status.MPI_TAG == kTagRequest) {
        const json j = json::parse(text);
        to_leader_id[engine.add_request(request_from_json(j))] = j.at("id").get<int64_t>();
      } else if (status.MPI_TAG == kTagAbort) {
        engine.abort_all();
      } else if (status.MPI_TAG == kTagStop) {
        stop = true;
      } else {
        SLIME_FAIL("remote engine: unexpected message tag ", status.MPI_TAG, " from the rollout leader");
      }
    }
    if (engine.has_unfinished()) {
      std::vector<GenerateOutput> outputs = engine.step();
      if (!outputs.empty()) {
        json batch = json::array();
        for (GenerateOutput& o : outputs) {
          auto it = to_leader_id.find(o.id);
          SLIME_ASSERT(it != to_leader_id.end(), "remote engine: unknown request ", o.id, " finished");
          o.id = it->second;
          to_leader_id.erase(it);
          batch.push_back(output_to_json(o));
        }
        send_text(batch.dump(), leader, kTagOutputs, comm);
      }
      idle_polls = 0;
    } else if (stop) {
      return;
    } else {
      idle_wait(idle_polls++);
    }
  }
}

}  // namespace slime::rollout
