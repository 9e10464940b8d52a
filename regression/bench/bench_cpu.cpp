// CPU training-step benchmark: forward + backward of a ~10M-parameter Qwen-shaped model on packed sequences.
//
// Prints tokens/s, the share of the step spent in GEMMs, the GEMMs' achieved GFLOP/s next to the OpenBLAS sgemm
// rate measured in the same run (best of 512^3, 1024^3, 2048^3 products through the same
// wrapper), and the model FLOP rate as a fraction
// of that sgemm rate (CPU "MFU"). Exits non-zero when the model's GEMMs reach less than 50% of the sgemm rate.
//
// Cost model: FLOPs per step = 6 * N_matmul * tokens (forward 2, backward 4) + attention 6 * 2 * sum(L^2/2) * H * d
// (QK^T and PV, causal half), where N_matmul excludes the embedding lookup but includes the LM head.
#include <Kokkos_Core.hpp>
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "core/rng.h"
#include "core/timer.h"
#include "kernels/cpu/gemm.h"
#include "model/config.h"
#include "model/decoder.h"
#include "model/init.h"

using namespace slime;

namespace {

double sgemm_rate(int64_t n, int reps) {
  std::vector<float> a(n * n), b(n * n), c(n * n);
  Rng rng(1);
  for (auto* v : {&a, &b})
    for (float& x : *v) x = rng.normal();
  cpu::gemm<float>(false, true, n, n, n, 1.0f, a.data(), b.data(), 0.0f, c.data());  // warm-up
  Stopwatch watch;
  for (int i = 0; i < reps; ++i) cpu::gemm<float>(false, true, n, n, n, 1.0f, a.data(), b.data(), 0.0f, c.data());
  return 2.0 * n * n * n * reps / watch.seconds();
}

}  // namespace

int main(int argc, char** argv) {
  Kokkos::ScopeGuard kokkos;  // no argv: Kokkos would answer --help itself
  const int steps = argc > 1 ? std::atoi(argv[1]) : 3;
  model::ModelConfig c = model::ModelConfig::from_hf_json(json::parse(R"({
    "architectures": ["Qwen2ForCausalLM"], "vocab_size": 8192, "hidden_size": 384, "intermediate_size": 1024,
    "num_hidden_layers": 5, "num_attention_heads": 6, "num_key_value_heads": 2, "rms_norm_eps": 1e-6,
    "rope_theta": 1000000.0, "tie_word_embeddings": true})"), "bench model");
  c.pad_vocab(128);
  model::Decoder decoder(c);
  model::init_random(c, decoder.params(), 1, 0.02f);

  const std::vector<int64_t> lengths = {512, 512, 512, 512};
  std::vector<std::vector<int64_t>> sequences;
  Rng rng(2);
  for (int64_t len : lengths) {
    std::vector<int64_t> s(len);
    for (int64_t& t : s) t = static_cast<int64_t>(rng.below(c.vocab_size));
    sequences.push_back(s);
  }
  model::PackedBatch batch = model::PackedBatch::from_sequences(sequences);
  const int64_t T = batch.num_tokens();
  std::vector<int64_t> targets(batch.tokens.begin() + 1, batch.tokens.end());
  targets.push_back(0);
  Tensor dlp = Tensor::from_vector(std::vector<float>(T, 1.0f / T), {T});

  // FLOPs of one step.
  // Tied embeddings: the table is counted once and it is exactly the LM head's matmul; norm weights are noise.
  const double matmul_params = static_cast<double>(c.num_parameters());
  double attention_flops = 0;
  for (int64_t len : lengths) attention_flops += 2.0 * 2.0 * (len * (len + 1) / 2.0) * c.num_heads * c.head_dim;
  const double step_flops = 6.0 * matmul_params * T + 3.0 * attention_flops;

  // The sgemm rate: best of a few square sizes (the highest one is the fairest yardstick).
  double peak = 0;
  for (int64_t n : {512, 1024, 2048}) peak = std::max(peak, sgemm_rate(n, n == 2048 ? 4 : 20));
  // Warm-up step, then timed steps.
  Tensor lp;
  decoder.forward(batch, targets, 1.0f, &lp, nullptr);
  decoder.backward(dlp, Tensor());
  cpu::reset_gemm_stats();
  const bool profile = std::getenv("SLIME_GEMM_PROFILE") != nullptr;
  cpu::set_gemm_shape_profiling(profile);
  Stopwatch watch;
  for (int s = 0; s < steps; ++s) {
    decoder.params().zero_grad();
    decoder.forward(batch, targets, 1.0f, &lp, nullptr);
    decoder.backward(dlp, Tensor());
  }
  const double seconds = watch.seconds() / steps;
  const cpu::GemmStats& g = cpu::gemm_stats();
  const double gemm_seconds = g.seconds / steps, gemm_rate = g.flops / g.seconds;
  const double tokens_per_s = T / seconds;
  const double ratio = gemm_rate / peak;
  const char* threads = std::getenv("OPENBLAS_NUM_THREADS");
  std::printf("bench-cpu: model %.2fM parameters (%lld layers, hidden %lld, vocab %lld), %lld tokens/step "
              "(%zu x %lld), OPENBLAS_NUM_THREADS=%s, %d steps\n",
              c.num_parameters() / 1e6, static_cast<long long>(c.num_layers), static_cast<long long>(c.hidden_size),
              static_cast<long long>(c.vocab_size), static_cast<long long>(T), lengths.size(),
              static_cast<long long>(lengths[0]), threads ? threads : "(default)", steps);
  std::printf("  step (forward+backward)  %8.3f s   %10.1f tokens/s\n", seconds, tokens_per_s);
  std::printf("  model FLOP rate          %8.1f GFLOP/s  (%.2f%% of the sgemm rate: CPU MFU)\n",
              step_flops / seconds / 1e9, 100.0 * step_flops / seconds / peak);
  std::printf("  time in GEMM             %8.1f %%      (%lld calls/step)\n", 100.0 * gemm_seconds / seconds,
              static_cast<long long>(g.calls / steps));
  std::printf("  GEMM achieved            %8.1f GFLOP/s\n", gemm_rate / 1e9);
  std::printf("  OpenBLAS sgemm (best n^3) %7.1f GFLOP/s  (n = 512/1024/2048, measured in this run)\n", peak / 1e9);
  std::printf("  GEMM / sgemm rate        %8.1f %%      (target >= 50%%): %s\n", 100.0 * ratio,
              ratio >= 0.5 ? "PASS" : "FAIL");
  if (profile) {
    std::vector<std::pair<std::string, cpu::GemmStats>> shapes(cpu::gemm_shape_stats().begin(),
                                                               cpu::gemm_shape_stats().end());
    std::sort(shapes.begin(), shapes.end(), [](auto& a, auto& b) { return a.second.seconds > b.second.seconds; });
    std::printf("  GEMM shapes by time (SLIME_GEMM_PROFILE):\n");
    for (size_t i = 0; i < std::min<size_t>(shapes.size(), 15); ++i)
      std::printf("    %-22s %6lld calls %7.3f s/step %7.1f GFLOP/s\n", shapes[i].first.c_str(),
                  static_cast<long long>(shapes[i].second.calls / steps), shapes[i].second.seconds / steps,
                  shapes[i].second.flops / shapes[i].second.seconds / 1e9);
  }
  return ratio >= 0.5 ? 0 : 1;
}
