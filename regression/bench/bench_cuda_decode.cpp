// make bench (GPU): decode throughput of the rollout engine on the CUDA backend (rollout/cuda_model_runner.h) for
// Qwen2.5-0.5B- and 1.5B-shaped models (random init, bf16): B requests of a `context`-token prompt each decode
// `steps` tokens (ignore_eos); the decode steps alone are timed (after every prompt is prefilled). Prints tokens/s and
// the fraction of the bandwidth floor: the bytes a decode step must read (every weight once, plus each sequence's
// K/V at its mean context) over the device-to-device copy bandwidth measured here (read + write bytes of a 1 GiB
// cudaMemcpy). bench_decode.sh runs transformers' generate in the same call and prints the ratio.
//   bench_cuda_decode [context=1024] [steps=128] [batches=1,64,256] [shapes=0.5b,1.5b]
#include <cuda_runtime.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include "core/rng.h"
#include "bench_shapes.h"
#include "kernels/cuda/device.h"
#include "model/decoder.h"
#include "rollout/cuda_model_runner.h"
#include "rollout/engine.h"

using namespace slime;

namespace {

double copy_bandwidth() {
  const size_t bytes = size_t{1} << 30;
  Tensor a = Tensor::empty({static_cast<int64_t>(bytes)}, DType::U8, Device::CUDA);
  Tensor b = Tensor::empty({static_cast<int64_t>(bytes)}, DType::U8, Device::CUDA);
  cuda::fill_bytes(a.raw(), 1, bytes);
  for (int i = 0; i < 2; ++i) cudaMemcpy(b.raw(), a.raw(), bytes, cudaMemcpyDeviceToDevice);
  const int reps = 10;
  const float ms = bench::gpu_milliseconds(
      reps, [&] { cudaMemcpyAsync(b.raw(), a.raw(), bytes, cudaMemcpyDeviceToDevice, nullptr); });
  return 2.0 * bytes * reps / (ms * 1e-3);  // bytes read + written per second
}

// Random host weights, fast (a 1.5B model): matrices uniform with std 0.02, norm weights 1, biases 0.
void fill_random(model::ParamRegistry& params, uint64_t seed) {
  for (model::Param& p : params.all()) {
    float* x = p.value.data<float>();
    const int64_t n = p.value.numel();
    const bool vector = p.global_shape.size() == 1;
    const bool bias = p.name.size() >= 5 && p.name.compare(p.name.size() - 5, 5, ".bias") == 0;
    uint64_t s = seed ^ (0x9E3779B97F4A7C15ull * static_cast<uint64_t>(p.flat_offset + 1));
    for (int64_t i = 0; i < n; ++i) {
      if (vector) {
        x[i] = bias ? 0.0f : 1.0f;
        continue;
      }
      s ^= s << 13;
      s ^= s >> 7;
      s ^= s << 17;
      x[i] = 0.0346f * (static_cast<float>(s >> 40) / 16777216.0f - 0.5f) * 2.0f;  // uniform, std 0.02
    }
  }
}

std::vector<int64_t> parse_list(const std::string& s) {
  std::vector<int64_t> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) out.push_back(std::stoll(item));
  return out;
}

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

}  // namespace

int main(int argc, char** argv) {
  const int64_t context = argc > 1 ? std::atoll(argv[1]) : 1024;
  const int64_t steps = argc > 2 ? std::atoll(argv[2]) : 128;
  const std::vector<int64_t> batches = parse_list(argc > 3 ? argv[3] : "1,64,256");
  const std::string shapes = argc > 4 ? argv[4] : "0.5b,1.5b";
  cuda::init_local_device();
  const double bw = copy_bandwidth();
  std::printf("device: %s, device-to-device copy %.2f TB/s (read + write)\n", cuda::device_name(0).c_str(), bw / 1e12);
  struct Shape {
    const char* name;
    int64_t hidden, ffn, layers, heads;
  };
  for (const Shape& sh : {Shape{"qwen2.5-0.5b", 896, 4864, 24, 14}, Shape{"qwen2.5-1.5b", 1536, 8960, 28, 12}}) {
    if (shapes.find(std::string(sh.name).substr(8)) == std::string::npos) continue;
    model::ModelConfig mc = bench::qwen25(sh.hidden, sh.ffn, sh.layers, sh.heads);
    mc.max_position_embeddings = context + steps + 16;
    model::Decoder host(mc);
    fill_random(host.params(), 7);
    const int64_t d = mc.head_dim, G = mc.num_kv_heads, L = mc.num_layers;
    for (int64_t B : batches) {
      rollout::EngineConfig ec;
      ec.backend = rollout::EngineBackend::Cuda;
      ec.block_size = 16;
      ec.max_running = B;
      ec.max_batched_tokens = 8192;
      ec.max_context_len = context + steps + 1;
      ec.num_blocks = B * ((context + steps + 15) / 16 + 1) * 2;  // room for the warm-up's and the timed prompts
      ec.cuda_graph_max_bs = 256;
      rollout::Engine engine(host, ec);
      auto& runner = dynamic_cast<rollout::CudaModelRunner&>(engine.runner());
      Rng rng(static_cast<uint64_t>(B));
      auto requests = [&](int64_t new_tokens) {
        std::vector<rollout::GenerateRequest> reqs(B);
        for (auto& r : reqs) {
          r.prompt.resize(context);
          for (int64_t& t : r.prompt) t = static_cast<int64_t>(rng.below(mc.vocab_size));
          r.params.temperature = 1.0f;
          r.params.max_new_tokens = new_tokens;
          r.params.ignore_eos = true;
          r.params.seed = rng.next_u32();
        }
        return reqs;
      };
      engine.generate(requests(4));  // warm-up: captures the decode graph of this batch and context bucket
      const rollout::EngineStats before = engine.stats();
      for (auto& r : requests(steps)) engine.add_request(std::move(r));
      double t_prefill = now();
      while (engine.stats().prefill_tokens - before.prefill_tokens < B * context) engine.step();
      const double t0 = now();
      t_prefill = t0 - t_prefill;
      const int64_t decoded0 = engine.stats().decode_tokens;
      while (engine.has_unfinished()) engine.step();
      const double sec = now() - t0;
      const int64_t decoded = engine.stats().decode_tokens - decoded0;
      const double tps = decoded / sec;
      const double step_bytes = 2.0 * mc.num_parameters() + 2.0 * 2 * L * G * d * (context + steps / 2.0) * B;
      const double floor_tps = B / (step_bytes / bw);
      std::printf("slime %s batch %lld: decode %.0f tokens/s (%lld tokens in %.3f s, %.2f ms/step), %.1f%% of the "
                  "bandwidth floor (%.0f tokens/s at %.2f GB/step); prefill %.0f tokens/s; graph replays %lld\n",
                  sh.name, static_cast<long long>(B), tps, static_cast<long long>(decoded), sec,
                  1e3 * sec / (steps - 1), 100.0 * tps / floor_tps, floor_tps, step_bytes / 1e9,
                  B * context / t_prefill, static_cast<long long>(runner.stats().graph_replays));
      if (B == batches.back()) {
        const double t = now();
        engine.reload_weights();
        std::printf("slime %s weight reload (host fp32 -> device bf16, %.2f GB): %.1f ms\n", sh.name,
                    2.0 * mc.num_parameters() / 1e9, 1e3 * (now() - t));
      }
    }
  }
  return 0;
}
