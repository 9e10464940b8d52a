// Per-request sampling parameters of the rollout engine (SGLang's sampling_params, under slime's option names:
// --rollout-temperature, --rollout-top-p, --rollout-top-k, --rollout-max-response-len, --rollout-stop,
// --rollout-stop-token-ids, --rollout-seed).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace slime::rollout {

struct SamplingParams {
  float temperature = 1.0f;             // 0 = greedy
  float top_p = 1.0f;
  int64_t top_k = -1;                   // -1 = off
  int64_t max_new_tokens = 128;
  std::vector<std::string> stop;        // stop strings, matched on the decoded response text
  std::vector<int64_t> stop_token_ids;  // besides the model's end-of-sequence ids
  bool ignore_eos = false;              // do not stop at the model's end-of-sequence ids
  uint64_t seed = 0;                    // per-request sampling stream: same seed, same tokens
};

}  // namespace slime::rollout
