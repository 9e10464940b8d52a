// The rollout engine: continuous batching over a paged KV cache, with SGLang's request semantics.
//
//   add_request(prompt, sampling params)  ->  step() ... step()  ->  outputs (tokens, log-probs, finish reason)
//
// A step schedules chunks (scheduler.h), runs them on the CPU or the GPU (model_runner.h), which samples the next
// token of every sequence whose chunk reached its end (temperature, top-k, top-p, a per-request Philox stream indexed
// by the token's position in the response, so batching does not change what a request samples), and ends sequences on an end-of-sequence or
// stop token, a stop string in the decoded response, max_new_tokens, or the context length. The log-prob returned
// for a token is log softmax(logits / temperature) before top-k/top-p (what SGLang reports, what slime trains on).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "model/decoder.h"
#include "rollout/block_manager.h"
#include "rollout/engine_client.h"
#include "rollout/model_runner.h"
#include "rollout/sampling_params.h"
#include "rollout/scheduler.h"
#include "tokenizer/tokenizer.h"

namespace slime::rollout {

enum class EngineBackend { Cpu, Cuda };

struct EngineConfig {
  EngineBackend backend = EngineBackend::Cpu;  // --backend
  int64_t num_blocks = 0;            // KV cache blocks (see kv_blocks_for); CUDA: 0 = size from free device memory
  double mem_fraction_static = 0.9;  // --sglang-mem-fraction-static (CUDA: weights + KV cache share of the device)
  int64_t block_size = 16;           // --sglang-page-size
  int64_t max_running = 256;         // --sglang-max-running-requests
  int64_t max_batched_tokens = 512;  // --sglang-chunked-prefill-size
  int64_t max_context_len = 0;       // prompt + response limit (--rollout-max-context-len / model max); 0 = model's
  bool prefix_caching = true;        // !--sglang-disable-radix-cache
  bool longest_prefix_first = false; // --sglang-schedule-policy lpm
  std::vector<int64_t> eos_token_ids;
  // CUDA backend: decode steps of up to this many sequences replay CUDA graphs (0: --sglang-disable-cuda-graph).
  int64_t cuda_graph_max_bs = 256;  // --sglang-cuda-graph-max-bs
  bool cuda_fp32 = false;           // CUDA backend: fp32 weights and activations (the reference path of the tests)
};

struct GenerateRequest {
  std::vector<int64_t> prompt;
  SamplingParams params;
  std::string session_id;  // the router keeps a session on one engine (prefix reuse across turns)
};

struct GenerateOutput {
  int64_t id = 0;
  std::vector<int64_t> tokens;     // generated tokens
  std::vector<float> logprobs;     // one per generated token
  std::string finish_reason;       // "stop" | "length" | "abort"
  std::string matched_stop;        // the stop string, when one ended the request
  int64_t prompt_tokens = 0;
  int64_t cached_tokens = 0;       // prompt tokens served from the prefix cache
  int64_t weight_version = 0;
};

struct EngineStats {
  int64_t steps = 0, prefill_tokens = 0, decode_tokens = 0, cached_tokens = 0, preemptions = 0;
};

class Engine : public EngineClient {
 public:
  // `tokenizer` decodes responses for stop strings (nullptr: stop strings are an error).
  Engine(model::Decoder& model, EngineConfig config, const tokenizer::Tokenizer* tokenizer = nullptr);

  // Validates and queues a request; returns its id. Errors: empty prompt, a token outside the vocabulary, a prompt
  // that leaves no room in the context, stop strings without a tokenizer.
  int64_t add_request(GenerateRequest request) override;
  // One scheduling step; returns the requests that finished in it (including aborted ones).
  std::vector<GenerateOutput> step() override;
  // Ends a request (or all) with finish reason "abort", keeping what it generated; reported by the next step().
  void abort(int64_t id);
  void abort_all() override;
  bool has_unfinished() const { return !sequences_.empty(); }
  int64_t num_unfinished() const { return static_cast<int64_t>(sequences_.size()); }
  // Runs requests to completion (outputs in request order).
  std::vector<GenerateOutput> generate(std::vector<GenerateRequest> requests);

  const EngineStats& stats() const { return stats_; }
  const EngineConfig& config() const { return config_; }
  model::Decoder& model() { return model_; }
  ModelRunner& runner() { return *runner_; }
  int64_t weight_version() const { return weight_version_; }
  void set_weight_version(int64_t version) { weight_version_ = version; }
  // Drops every cached block (after a weight update the cached K/V are stale). No request may be running.
  void flush_cache();
  // After the host model's weights changed (weight sync): the runner refreshes its device copy (CUDA), then
  // weights_changed().
  void reload_weights();
  // After the weights changed: directly after weight sync wrote the runner's device weights
  // (ModelRunner::device_weights_for_sync; the host model keeps the weights it had), or through reload_weights().
  // What it does to the cache is SGLang's pause / update weights / continue. With no request in flight every cached
  // block goes (flush_cache). Requests in flight are not dropped: they keep the K/V computed so far and go on with
  // the new weights, and no prefix computed before the change is shared again (their blocks neither).
  void weights_changed();

 private:
  GenerateOutput finish(Sequence& seq, const std::string& reason);
  bool hits_stop_string(Sequence& seq) const;

  model::Decoder& model_;
  EngineConfig config_;
  const tokenizer::Tokenizer* tokenizer_;
  std::unique_ptr<BlockManager> blocks_;
  std::unique_ptr<Scheduler> scheduler_;
  std::unique_ptr<ModelRunner> runner_;
  std::map<int64_t, std::unique_ptr<Sequence>> sequences_;
  std::vector<GenerateOutput> aborted_;
  int64_t next_id_ = 0;
  int64_t weight_version_ = 0;
  EngineStats stats_;
};

// KV cache blocks that fit `bytes` for this model.
int64_t kv_blocks_for(const model::ModelConfig& config, int tensor_parallel_size, int64_t block_size, int64_t bytes);

}  // namespace slime::rollout
