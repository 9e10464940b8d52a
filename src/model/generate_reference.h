// Reference generation: sampling one token at a time by re-running the whole forward pass (no KV cache).
//
// Slow and simple on purpose: it defines what the rollout engine (paged KV cache, batching, CUDA graphs) must
// reproduce, and it drives the demo until the engine exists. Sampling follows SGLang's order: logits / temperature,
// then top-k, then top-p, then a draw from a per-request Philox stream; the returned logprob of each token is
// log softmax(logits / temperature) before truncation (what SGLang reports and slime trains against).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/decoder.h"

namespace slime::model {

struct SamplingParams {
  float temperature = 1.0f;  // 0 = greedy
  int64_t top_k = -1;        // -1 = off
  float top_p = 1.0f;
  int64_t max_new_tokens = 16;
  std::vector<int64_t> stop_token_ids;
  uint64_t seed = 0;         // per-request stream: same seed, same tokens
};

struct Generation {
  std::vector<int64_t> tokens;   // generated tokens only
  std::vector<float> logprobs;   // one per generated token
  std::string finish_reason;     // "stop" (a stop token was produced) or "length"
};

// Picks the next token from one row of logits [padded_vocab] (only the first `vocab` entries are tokens).
// `uniform` in [0, 1) is the random draw. Returns the token and writes its logprob.
// Greedy (temperature <= 0) takes the first maximum. Otherwise top-k keeps the k largest logits (ties by lower id),
// then top-p keeps the shortest prefix of those, in that order, whose renormalised probability reaches top_p; the
// draw then walks the kept tokens in ascending token id: the first whose running probability exceeds
// uniform * (kept mass), the last kept one if rounding leaves none. Without truncation that is the plain id-order
// inverse CDF; the GPU sampler (kernels/cuda/sampling.cu) follows the same rule without sorting.
int64_t sample_token(const float* logits, int64_t vocab, const SamplingParams& params, float uniform,
                     float* logprob);

Generation generate_reference(Decoder& model, const std::vector<int64_t>& prompt, const SamplingParams& params);

}  // namespace slime::model
