#include "rollout/engine.h"

#include <algorithm>

#include "core/error.h"
#include "rollout/tensor_parallel_runner.h"

namespace slime::rollout {

int64_t kv_blocks_for(const model::ModelConfig& config, int tensor_parallel_size, int64_t block_size, int64_t bytes) {
  return bytes / model::KvCache::bytes_per_block(config, tensor_parallel_size, block_size);
}

Engine::Engine(model::Decoder& model, EngineConfig config, const tokenizer::Tokenizer* tokenizer)
    : model_(model), config_(std::move(config)), tokenizer_(tokenizer) {
  // Resolves the context length, and the CUDA runner sizes its KV cache from the device's memory when num_blocks is
  // 0 (it sets config_.num_blocks).
  runner_ = make_model_runner(model_, config_);
  // A tensor-parallel engine runs here, on TP rank 0; its other ranks follow its steps (tensor_parallel_runner.h).
  if (!model_.tp().single()) runner_ = std::make_unique<TensorParallelRunner>(std::move(runner_), model_.tp());
  SLIME_CHECK(config_.num_blocks > 0, "rollout engine: the KV cache has no blocks (--sglang-max-total-tokens or "
                                      "--sglang-mem-fraction-static too small)");
  blocks_ = std::make_unique<BlockManager>(config_.num_blocks, config_.block_size, config_.prefix_caching);
  scheduler_ = std::make_unique<Scheduler>(SchedulerConfig{config_.max_running, config_.max_batched_tokens, config_.longest_prefix_first}, *blocks_);
}

int64_t Engine::add_request(GenerateRequest request) {
  const int64_t vocab = model_.config().vocab_size;
  SLIME_CHECK(!request.prompt.empty(), "rollout engine: empty prompt");
  for (size_t i = 0; i < request.prompt.size(); ++i)
    SLIME_CHECK(request.prompt[i] >= 0 && request.prompt[i] < vocab, "rollout engine: prompt token ", i, " is ",
                request.prompt[i], ", outside the vocabulary [0, ", vocab, ")");
  const int64_t prompt_len = static_cast<int64_t>(request.prompt.size());
  SLIME_CHECK(prompt_len < config_.max_context_len, "rollout engine: the prompt has ", prompt_len,
              " tokens, the context length is ", config_.max_context_len, " (no room for a response)");
  SLIME_CHECK(request.params.max_new_tokens >= 0, "rollout engine: max_new_tokens must be >= 0");
  SLIME_CHECK(request.params.stop.empty() || tokenizer_, "rollout engine: stop strings need a tokenizer");
  SLIME_CHECK(request.params.temperature >= 0, "rollout engine: temperature must be >= 0");
  SLIME_CHECK(request.params.top_p > 0 && request.params.top_p <= 1, "rollout engine: top_p must be in (0, 1]");
  auto seq = std::make_unique<Sequence>();
  seq->id = next_id_++;
  seq->tokens = std::move(request.prompt);
  seq->prompt_length = prompt_len;
  seq->params = std::move(request.params);
  seq->session_id = std::move(request.session_id);
  Sequence* raw = seq.get();
  sequences_[raw->id] = std::move(seq);
  if (raw->params.max_new_tokens == 0) {  // nothing to generate: finished at once
    aborted_.push_back(finish(*raw, "length"));
    return aborted_.back().id;
  }
  scheduler_->add(raw);
  return raw->id;
}

GenerateOutput Engine::finish(Sequence& seq, const std::string& reason) {
  seq.status = SequenceStatus::Finished;
  seq.finish_reason = reason;
  GenerateOutput out;
  out.id = seq.id;
  out.tokens.assign(seq.tokens.begin() + seq.prompt_length, seq.tokens.end());
  out.logprobs = seq.logprobs;
  out.finish_reason = reason;
  out.matched_stop = seq.matched_stop;
  out.prompt_tokens = seq.prompt_length;
  out.cached_tokens = seq.num_cached_prefix;
  out.weight_version = weight_version_;
  stats_.cached_tokens += seq.num_cached_prefix;
  return out;
}

bool Engine::hits_stop_string(Sequence& seq) const {
  if (seq.params.stop.empty()) return false;
  // Decode the response so far: a stop string may span several tokens.
  std::vector<int32_t> ids(seq.tokens.begin() + seq.prompt_length, seq.tokens.end());
  const std::string text = tokenizer_->decode(ids, /*skip_special_tokens=*/false);
  for (const std::string& stop : seq.params.stop) {
    if (!stop.empty() && text.find(stop) != std::string::npos) {
      seq.matched_stop = stop;
      return true;
    }
  }
  return false;
}

std::vector<GenerateOutput> Engine::step() {
  std::vector<GenerateOutput> finished = std::move(aborted_);
  aborted_.clear();
  for (const GenerateOutput& out : finished) sequences_.erase(out.id);
  const std::vector<ScheduledChunk> chunks = scheduler_->schedule();
  if (chunks.empty()) return finished;
  const std::vector<SampledToken> sampled = runner_->run(chunks);
  ++stats_.steps;
  size_t next = 0;
  for (const ScheduledChunk& c : chunks) {
    Sequence& seq = *c.seq;
    (seq.num_generated() > 0 && c.count == 1 ? stats_.decode_tokens : stats_.prefill_tokens) += c.count;
    if (!c.samples) continue;
    SLIME_ASSERT(next < sampled.size(), "rollout engine: the model runner returned too few tokens");
    const int64_t token = sampled[next].token;
    const float logprob = sampled[next].logprob;
    ++next;
    seq.tokens.push_back(token);
    seq.logprobs.push_back(logprob);
    const auto& eos = config_.eos_token_ids;
    const bool is_eos = !seq.params.ignore_eos && std::find(eos.begin(), eos.end(), token) != eos.end();
    const bool is_stop_id =
        std::find(seq.params.stop_token_ids.begin(), seq.params.stop_token_ids.end(), token) !=
        seq.params.stop_token_ids.end();
    if (is_eos || is_stop_id || hits_stop_string(seq)) {
      finished.push_back(finish(seq, "stop"));
    } else if (seq.num_generated() >= seq.params.max_new_tokens || seq.num_tokens() >= config_.max_context_len) {
      finished.push_back(finish(seq, "length"));
    }
  }
  scheduler_->after_step(chunks);
  stats_.preemptions = scheduler_->preemptions();
  for (const GenerateOutput& out : finished) sequences_.erase(out.id);
  return finished;
}

void Engine::abort(int64_t id) {
  auto it = sequences_.find(id);
  if (it == sequences_.end() || it->second->status == SequenceStatus::Finished) return;
  scheduler_->remove(it->second.get());
  aborted_.push_back(finish(*it->second, "abort"));
}

void Engine::abort_all() {
  std::vector<int64_t> ids;
  for (const auto& [id, seq] : sequences_)
    if (seq->status != SequenceStatus::Finished) ids.push_back(id);
  for (int64_t id : ids) abort(id);
}

std::vector<GenerateOutput> Engine::generate(std::vector<GenerateRequest> requests) {
  std::vector<int64_t> ids;
  for (GenerateRequest& r : requests) ids.push_back(add_request(std::move(r)));
  std::map<int64_t, GenerateOutput> done;
  while (done.size() < ids.size()) {
    for (GenerateOutput& out : step()) done[out.id] = std::move(out);
  }
  std::vector<GenerateOutput> outputs;
  for (int64_t id : ids) outputs.push_back(std::move(done.at(id)));
  return outputs;
}

void Engine::reload_weights() {
  runner_->reload_weights();
  weights_changed();
}

void Engine::weights_changed() {
  if (scheduler_->empty()) {
    flush_cache();
    return;
  }
  blocks_->forget_cached_prefixes();
  for (auto& [id, seq] : sequences_)
    if (!seq->block_table.empty()) seq->stale_kv = true;
}

void Engine::flush_cache() {
  SLIME_CHECK(scheduler_->empty(), "flush_cache: requests are still running (abort or finish them first)");
  blocks_ = std::make_unique<BlockManager>(config_.num_blocks, config_.block_size, config_.prefix_caching);
  scheduler_ = std::make_unique<Scheduler>(SchedulerConfig{config_.max_running, config_.max_batched_tokens, config_.longest_prefix_first}, *blocks_);
}

}  // namespace slime::rollout
