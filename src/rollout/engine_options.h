// The rollout engine's configuration and sampling parameters from slime-train's options.
//   --sglang-page-size               tokens per KV block
//   --sglang-max-total-tokens        KV cache capacity; else --sglang-mem-fraction-static of the memory available
//                                    (host memory on the CPU backend) minus the weights
//   --sglang-max-running-requests    concurrent sequences (default 256)
//   --sglang-chunked-prefill-size    tokens per scheduling step (default 512; -1 = whole prompts)
//   --sglang-context-length / --rollout-max-context-len   prompt + response limit (default: the model's)
//   --sglang-disable-radix-cache, --sglang-schedule-policy
//   --rollout-temperature/-top-p/-top-k/-max-response-len/-stop/-stop-token-ids, and the --eval-* overrides
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/args.h"
#include "model/config.h"
#include "rollout/engine.h"
#include "rollout/sampling_params.h"

namespace slime::rollout {

EngineConfig engine_config_from_args(const Args& args, const model::ModelConfig& model, int tensor_parallel_size,
                                     const std::vector<int64_t>& eos_token_ids);

// Sampling parameters for training rollouts, or for evaluation (--eval-* falling back to --rollout-*). The seed is
// set per request by the caller.
SamplingParams sampling_params_from_args(const Args& args, bool evaluation = false);

// The ids that end a response (SGLang's): the model config's eos_token_id plus generation_config.json's, when the HF
// directory `hf_dir` has one.
std::vector<int64_t> eos_token_ids_of_model(const model::ModelConfig& model, const std::optional<std::string>& hf_dir);

// MemAvailable from /proc/meminfo in bytes (0 when unreadable).
int64_t available_host_memory();

}  // namespace slime::rollout
