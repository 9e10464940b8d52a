#include "rollout/engine_options.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "core/io.h"
#include "core/log.h"

namespace slime::rollout {

int64_t available_host_memory() {
  std::ifstream in("/proc/meminfo");
  std::string key, unit;
  int64_t value = 0;
  while (in >> key >> value >> unit)
    if (key == "MemAvailable:") return value * 1024;
  return 0;
}

std::vector<int64_t> eos_token_ids_of_model(const model::ModelConfig& model, const std::optional<std::string>& hf_dir) {
  std::vector<int64_t> ids = model.eos_token_ids;
  const std::string path = hf_dir ? path_join(*hf_dir, "generation_config.json") : std::string();
  if (hf_dir && path_exists(path)) {
    const json g = read_json_file(path);
    if (g.contains("eos_token_id")) {
      const json& eos = g["eos_token_id"];
      for (const json& e : eos.is_array() ? eos : json::array({eos})) {
        SLIME_CHECK(e.is_number_integer(), path, ": 'eos_token_id' must be an integer or a list of integers");
        ids.push_back(e.get<int64_t>());
      }
    }
  }
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  return ids;
}

EngineConfig engine_config_from_args(const Args& args, const model::ModelConfig& model, int tensor_parallel_size,
                                     const std::vector<int64_t>& eos_token_ids) {
  EngineConfig c;
  c.block_size = args.sglang_page_size;
  SLIME_CHECK(c.block_size >= 1, "--sglang-page-size must be >= 1, got ", c.block_size);
  c.max_running = args.sglang_max_running_requests.value_or(256);
  c.max_context_len = args.sglang_context_length.value_or(
      args.rollout_max_context_len.value_or(model.max_position_embeddings));
  const int64_t chunk = args.sglang_chunked_prefill_size.value_or(512);
  c.max_batched_tokens = chunk == -1 ? c.max_context_len : chunk;
  SLIME_CHECK(c.max_batched_tokens >= 1, "--sglang-chunked-prefill-size must be positive or -1, got ", chunk);
  c.prefix_caching = !args.sglang_disable_radix_cache;
  c.longest_prefix_first = args.sglang_schedule_policy == "lpm";
  c.eos_token_ids = eos_token_ids;
  c.backend = args.backend == "cuda" ? EngineBackend::Cuda : EngineBackend::Cpu;
  c.cuda_graph_max_bs = args.sglang_disable_cuda_graph ? 0 : args.sglang_cuda_graph_max_bs.value_or(256);
  SLIME_CHECK(c.cuda_graph_max_bs >= 0, "--sglang-cuda-graph-max-bs must be >= 0, got ", c.cuda_graph_max_bs);
  const double fraction = args.sglang_mem_fraction_static;
  SLIME_CHECK(fraction > 0 && fraction <= 1, "--sglang-mem-fraction-static must be in (0, 1], got ", fraction);
  c.mem_fraction_static = fraction;
  if (args.sglang_max_total_tokens) {
    SLIME_CHECK(*args.sglang_max_total_tokens >= c.block_size, "--sglang-max-total-tokens ",
                *args.sglang_max_total_tokens, " is smaller than one page (", c.block_size, " tokens)");
    c.num_blocks = *args.sglang_max_total_tokens / c.block_size;
  } else if (c.backend == EngineBackend::Cpu) {
    const int64_t weights = model.num_parameters() * static_cast<int64_t>(sizeof(float)) / tensor_parallel_size;
    const int64_t budget = static_cast<int64_t>(fraction * static_cast<double>(available_host_memory())) - weights;
    c.num_blocks = kv_blocks_for(model, tensor_parallel_size, c.block_size, budget);
    SLIME_CHECK(c.num_blocks > 0, "--sglang-mem-fraction-static ", fraction, " leaves no memory for the KV cache "
                                  "after the weights (", weights, " bytes); raise it or set --sglang-max-total-tokens");
  }  // the CUDA runner sizes its KV cache from the device's free memory (num_blocks 0)
  return c;
}

SamplingParams sampling_params_from_args(const Args& args, bool evaluation) {
  SamplingParams p;
  p.temperature = static_cast<float>(evaluation ? args.eval_temperature.value_or(args.rollout_temperature)
                                                : args.rollout_temperature);
  p.top_p = static_cast<float>(evaluation ? args.eval_top_p.value_or(args.rollout_top_p) : args.rollout_top_p);
  p.top_k = evaluation ? args.eval_top_k.value_or(args.rollout_top_k) : args.rollout_top_k;
  const std::optional<int64_t> max_new =
      evaluation && args.eval_max_response_len ? args.eval_max_response_len : args.rollout_max_response_len;
  p.max_new_tokens = max_new.value_or(128);  // SGLang's default when slime passes none
  p.stop = args.rollout_stop;
  p.stop_token_ids = args.rollout_stop_token_ids;
  return p;
}

}  // namespace slime::rollout
