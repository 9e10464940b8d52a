// CPU rollout-engine benchmark: prefill and decode throughput of the engine at several batch sizes, on the same
// 11M-parameter Qwen2-shaped model as bench_cpu (random weights).
//   prefill: B prompts of 256 tokens, one new token each, all admitted at once (chunked prefill of 2048 tokens/step)
//   decode:  B sequences with 128-token prompts generate 64 tokens; decode tokens/s counts only decode steps
// Yardsticks measured in the same run: prefill against the dense training-path forward (forward_logits) of the same
// prompts packed into one batch; decode against the host's memcpy bandwidth, since a small-batch decode step reads
// every weight once.
#include <Kokkos_Core.hpp>
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "core/rng.h"
#include "kernels/cpu/gemm.h"
#include "core/timer.h"
#include "model/config.h"
#include "model/decoder.h"
#include "model/init.h"
#include "rollout/engine.h"

using namespace slime;

int main(int argc, char** argv) {
  Kokkos::ScopeGuard kokkos;
  model::ModelConfig c = model::ModelConfig::from_hf_json(json::parse(R"({
    "architectures": ["Qwen2ForCausalLM"], "vocab_size": 8192, "hidden_size": 384, "intermediate_size": 1024,
    "num_hidden_layers": 5, "num_attention_heads": 6, "num_key_value_heads": 2, "rms_norm_eps": 1e-6,
    "rope_theta": 1000000.0, "tie_word_embeddings": true, "max_position_embeddings": 4096})"), "bench model");
  c.pad_vocab(128);
  model::Decoder decoder(c);
  model::init_random(c, decoder.params(), 1, 0.02f);
  const int64_t weight_bytes = c.num_parameters() * 4;
  const bool profile = std::getenv("SLIME_GEMM_PROFILE") != nullptr;  // per-shape GEMM times of each decode run
  Rng rng(3);
  auto prompt = [&](int64_t n) {
    std::vector<int64_t> p(n);
    for (int64_t& t : p) t = static_cast<int64_t>(rng.below(c.vocab_size));
    return p;
  };
  std::printf("bench-rollout-cpu: model %.2fM parameters (%.1f MB fp32), engine block 16, chunk 2048 tokens\n",
              c.num_parameters() / 1e6, weight_bytes / 1e6);
  std::printf("  %-8s %-6s %14s %14s %16s\n", "phase", "batch", "tokens", "seconds", "tokens/s");
  // Host memory bandwidth: best of a few 256 MB memcpy's (bytes read + written).
  double copy_gbs = 0;
  {
    std::vector<char> a(256 << 20, 1), b(256 << 20, 2);
    for (int i = 0; i < 4; ++i) {
      Stopwatch w;
      std::memcpy(b.data(), a.data(), a.size());
      copy_gbs = std::max(copy_gbs, 2.0 * a.size() / w.seconds() / 1e9);
    }
  }
  std::printf("  host memcpy %.1f GB/s (read + write)\n", copy_gbs);
  for (int64_t batch : {1, 8, 32}) {
    std::vector<std::vector<int64_t>> prompts(batch);
    for (auto& p : prompts) p = prompt(256);
    const model::PackedBatch packed = model::PackedBatch::from_sequences(prompts);
    decoder.forward_logits(packed);  // warm-up
    Stopwatch dense_watch;
    decoder.forward_logits(packed);
    const double dense_s = dense_watch.seconds();
    rollout::EngineConfig config;
    config.num_blocks = (batch * 272) / 16 + 8;
    config.block_size = 16;
    config.max_batched_tokens = 2048;
    config.prefix_caching = false;  // distinct prompts; measure compute, not cache hits
    rollout::Engine engine(decoder, config);
    std::vector<rollout::GenerateRequest> requests(batch);
    for (int64_t i = 0; i < batch; ++i) {
      rollout::GenerateRequest& r = requests[i];
      r.prompt = prompts[i];
      r.params.temperature = 0;
      r.params.max_new_tokens = 1;
    }
    Stopwatch watch;
    engine.generate(requests);
    const double s = watch.seconds();
    std::printf("  %-8s %-6lld %14lld %14.3f %16.1f   (dense forward %.1f tokens/s: ratio %.2f)\n", "prefill",
                static_cast<long long>(batch), static_cast<long long>(batch * 256), s, batch * 256 / s,
                batch * 256 / dense_s, dense_s / s);
  }
  for (int64_t batch : {1, 8, 32, 64}) {
    rollout::EngineConfig config;
    config.num_blocks = (batch * 192) / 16 + 8;
    config.block_size = 16;
    config.max_batched_tokens = 4096;
    config.max_running = batch;
    rollout::Engine engine(decoder, config);
    for (int64_t i = 0; i < batch; ++i) {
      rollout::GenerateRequest r;
      r.prompt = prompt(128);
      r.params.temperature = 1.0f;
      r.params.max_new_tokens = 64;
      r.params.seed = i;
      r.params.ignore_eos = true;
      engine.add_request(r);
    }
    while (engine.stats().decode_tokens == 0 && engine.has_unfinished()) engine.step();  // prefill
    const int64_t start_tokens = engine.stats().decode_tokens;
    cpu::reset_gemm_stats();
    cpu::set_gemm_shape_profiling(profile);
    Stopwatch watch;
    while (engine.has_unfinished()) engine.step();
    const double s = watch.seconds();
    const cpu::GemmStats gemm = cpu::gemm_stats();
    const int64_t tokens = engine.stats().decode_tokens - start_tokens;
    const double steps = static_cast<double>(tokens) / batch;
    std::printf("  %-8s %-6lld %14lld %14.3f %16.1f   (%.1f ms/step, weights read at %.1f GB/s = %.0f%% of memcpy; "
                "GEMM %.0f%% of the time at %.0f GFLOP/s)\n", "decode",
                static_cast<long long>(batch), static_cast<long long>(tokens), s, tokens / s, 1e3 * s / steps,
                weight_bytes * steps / s / 1e9, 100.0 * weight_bytes * steps / s / 1e9 / copy_gbs,
                100.0 * gemm.seconds / s, gemm.flops / gemm.seconds / 1e9);
    if (profile) {
      std::vector<std::pair<std::string, cpu::GemmStats>> shapes(cpu::gemm_shape_stats().begin(),
                                                                 cpu::gemm_shape_stats().end());
      std::sort(shapes.begin(), shapes.end(), [](auto& a, auto& b) { return a.second.seconds > b.second.seconds; });
      for (size_t i = 0; i < std::min<size_t>(shapes.size(), 8); ++i)
        std::printf("      %-22s %6lld calls %8.2f ms/step %7.1f GFLOP/s\n", shapes[i].first.c_str(),
                    static_cast<long long>(shapes[i].second.calls), 1e3 * shapes[i].second.seconds / steps,
                    shapes[i].second.flops / shapes[i].second.seconds / 1e9);
    }
  }
  return 0;
}
