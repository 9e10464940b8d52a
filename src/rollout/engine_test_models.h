// Shared by the GPU engine tests (cuda_engine_test, cuda_engine_tp_test): tiny models and request sets.
#pragma once

#include <cmath>
#include <string>
#include <vector>

#include "core/io.h"
#include "core/rng.h"
#include "model/config.h"
#include "rollout/engine.h"

namespace slime::rollout::testing {

// Qwen2.5-like ("qwen2": QKV bias, tied embeddings, head_dim 64), Qwen3-like ("qwen3": QK-norm, untied, head_dim 128)
// and "small" (head_dim 16: no bf16 kernel, the engine runs it in fp32); two KV groups each. The vocabulary is
// padded for `tensor_parallel` ranks.
inline model::ModelConfig engine_test_config(const std::string& kind, int tensor_parallel = 1) {
  const char* q2 = R"({
    "architectures": ["Qwen2ForCausalLM"], "vocab_size": 1000, "hidden_size": 256, "intermediate_size": 512,
    "num_hidden_layers": 3, "num_attention_heads": 4, "num_key_value_heads": 2, "rms_norm_eps": 1e-6,
    "rope_theta": 1000000.0, "tie_word_embeddings": true, "max_position_embeddings": 2048})";
  const char* q3 = R"({
    "architectures": ["Qwen3ForCausalLM"], "vocab_size": 1500, "hidden_size": 256, "intermediate_size": 384,
    "num_hidden_layers": 2, "num_attention_heads": 6, "num_key_value_heads": 2, "head_dim": 128,
    "rms_norm_eps": 1e-6, "rope_theta": 1000000.0, "tie_word_embeddings": false, "max_position_embeddings": 2048})";
  const char* small = R"({
    "architectures": ["Qwen3ForCausalLM"], "vocab_size": 300, "hidden_size": 64, "intermediate_size": 96,
    "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16,
    "rms_norm_eps": 1e-6, "tie_word_embeddings": false, "max_position_embeddings": 1024})";
  model::ModelConfig c =
      model::ModelConfig::from_hf_json(json::parse(kind == "qwen2" ? q2 : kind == "qwen3" ? q3 : small), kind);
  c.pad_vocab(128, tensor_parallel);
  return c;
}

// `count` requests; every third one starts a new random prompt of 1 to 90 tokens and the next two repeat it (n
// samples of a prompt: the prefix cache). Seeds differ per request.
inline std::vector<GenerateRequest> engine_test_requests(const model::ModelConfig& c, int64_t count, int64_t max_new,
                                                         float temperature, int64_t top_k, float top_p,
                                                         uint64_t seed) {
  Rng rng(seed);
  std::vector<GenerateRequest> out;
  std::vector<int64_t> prompt;
  for (int64_t i = 0; i < count; ++i) {
    if (i % 3 == 0) {
      prompt.assign(1 + static_cast<int64_t>(rng.below(90)), 0);
      for (int64_t& t : prompt) t = static_cast<int64_t>(rng.below(c.vocab_size));
    }
    GenerateRequest r;
    r.prompt = prompt;
    r.params.temperature = temperature;
    r.params.top_k = top_k;
    r.params.top_p = top_p;
    r.params.max_new_tokens = max_new;
    r.params.ignore_eos = true;
    r.params.seed = seed * 1000 + static_cast<uint64_t>(i);
    out.push_back(r);
  }
  return out;
}

// Token agreement of two engines' outputs for the same requests, and the largest log-prob difference where the
// tokens agree.
struct OutputAgreement {
  int64_t tokens = 0, same = 0;
  double max_logprob_diff = 0;
  bool same_lengths = true;
};
inline OutputAgreement compare_outputs(const std::vector<GenerateOutput>& got, const std::vector<GenerateOutput>& want) {
  OutputAgreement a;
  a.same_lengths = got.size() == want.size();
  for (size_t i = 0; i < want.size() && a.same_lengths; ++i) {
    a.same_lengths = got[i].tokens.size() == want[i].tokens.size();
    for (size_t j = 0; j < want[i].tokens.size() && a.same_lengths; ++j) {
      ++a.tokens;
      if (got[i].tokens[j] != want[i].tokens[j]) continue;
      ++a.same;
      const double d = std::fabs(static_cast<double>(got[i].logprobs[j]) - want[i].logprobs[j]);
      if (d > a.max_logprob_diff) a.max_logprob_diff = d;
    }
  }
  return a;
}

}  // namespace slime::rollout::testing
