// make bench (GPU): slime-train's trainer with --backend cuda (train/gpu_actor.h: forward, backward and the
// distributed optimizer on the GPU) on a Qwen2.5-0.5B-shaped model, random init written as a HF directory.
// Each rollout is 64 GRPO samples of 512 tokens (64 prompt + 448 response), trained in dynamic batches of up to
// 4096 tokens: old log-probs (a forward over the rollout), then one optimizer step (forward + backward + AdamW).
//
// Prints per rollout the time, tokens/s and MFU = (8 N T + 8 L H d sum S^2) / time / the bf16 GEMM rate measured
// here (old log-probs' forward 2 N T plus the step's 6 N T, and their causal attention), next to:
//   - Trainer::weights(): the GPU's weights copied down to host memory, which weight sync and checkpoints read;
//   - the host path the GPU optimizer replaced, timed on the same model: the GPU's gradients copied down, the CPU
//     distributed optimizer's step (AdamW on the host), the weights copied back up.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "bench_shapes.h"
#include "core/args.h"
#include "core/rng.h"
#include "kernels/cuda/device.h"
#include "model/hf_mapping.h"
#include "model/init.h"
#include "train/distributed_optimizer.h"
#include "train/trainer.h"

using namespace slime;
using Clock = std::chrono::steady_clock;

namespace {

double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::vector<train::TrainSample> rollout(int64_t samples, int64_t prompt, int64_t response, int64_t vocab,
                                        uint64_t seed) {
  Rng rng(seed);
  std::vector<train::TrainSample> out(samples);
  for (int64_t i = 0; i < samples; ++i) {
    train::TrainSample& s = out[i];
    for (int64_t t = 0; t < prompt + response; ++t) s.tokens.push_back(static_cast<int64_t>(rng.below(vocab)));
    s.response_length = response;
    s.reward = static_cast<float>(rng.below(2));
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  const int rollouts = argc > 1 ? std::atoi(argv[1]) : 4;
  const std::string dir = argc > 2 ? argv[2] : "/tmp/slime_bench_qwen25_05b";
  const int64_t samples = 64, prompt = 64, response = 448, S = prompt + response;
  cuda::init_device(0);
  const double peak = bench::measured_gemm_tflops();
  std::printf("device: %s, measured bf16 GEMM %.1f TFLOP/s\n", cuda::device_name(0).c_str(), peak);

  const model::ModelConfig c = bench::qwen25(896, 4864, 24, 14);
  if (!std::filesystem::exists(dir + "/config.json")) {
    const auto t = Clock::now();
    model::Decoder host(c);
    model::init_random(c, host.params(), 1234);
    model::save_hf_checkpoint(dir, c, host.params());
    std::printf("wrote the random-init model to %s in %.1f s\n", dir.c_str(), since(t));
  }
  const std::vector<std::string> options = {
      "--hf-checkpoint", dir, "--backend", "cuda", "--rollout-batch-size", "8", "--n-samples-per-prompt", "8",
      "--global-batch-size", "64", "--num-rollout", "1000", "--lr", "1e-6", "--use-dynamic-batch-size",
      "--max-tokens-per-gpu", "4096", "--debug-train-only"};
  Args args = parse_args(options).args;
  validate_args(args);
  train::Trainer trainer(args, comm::ParallelGroups::single());

  const double n_params = static_cast<double>(c.num_parameters());
  const double tokens = static_cast<double>(samples * S);
  const double attention = 8.0 * c.num_layers * c.num_heads * c.head_dim * double(S) * S * samples;
  const double flops = 8.0 * n_params * tokens + attention;
  double best = 1e30;
  for (int r = 0; r < rollouts + 1; ++r) {  // rollout 0 warms up (arena, GEMM plans)
    const auto batch = rollout(samples, prompt, response, c.vocab_size, 100 + r);
    cuda::synchronize();
    const auto t = Clock::now();
    const train::RolloutTrainResult result = trainer.train_rollout(r, batch);
    cuda::synchronize();
    const double sec = since(t);
    if (r == 0) continue;
    best = std::min(best, sec);
    std::printf("rollout %d: %.1f ms, %.0f tokens/s, MFU %.1f%% (loss %.4f, grad norm %.3f)\n", r, sec * 1e3,
                tokens / sec, 100.0 * flops / sec / 1e12 / peak, result.steps.at(0).at("train/loss"),
                result.steps.at(0).at("train/grad_norm"));
  }
  std::printf("slime gpu trainer qwen2.5-0.5b: best %.1f ms per rollout of %lld tokens, %.0f tokens/s, MFU %.1f%%\n",
              best * 1e3, static_cast<long long>(tokens), tokens / best, 100.0 * flops / best / 1e12 / peak);

  // The weights copied down for weight sync or a checkpoint (after a step changed them).
  auto t = Clock::now();
  const model::Decoder& host = trainer.weights();
  const double pull = since(t);
  const double bytes = static_cast<double>(host.params().numel()) * 4;
  std::printf("weights to host (Trainer::weights after a step): %.1f ms, %.1f GB/s\n", pull * 1e3, bytes / pull / 1e9);

  // The host path this replaced, per optimizer step, on the same model and sizes.
  model::Decoder& writable = trainer.model();
  Tensor device_grads = Tensor::empty({writable.params().numel()}, DType::F32, Device::CUDA);
  cuda::fill_bytes(device_grads.raw(), 0x3a, device_grads.nbytes());  // small finite gradients
  train::DistributedOptimizer cpu(writable.params(), comm::ParallelGroups::single(), train::AdamWConfig{}, 1.0);
  double down = 0, step = 0, up = 0;
  for (int i = 0; i < 2; ++i) {  // the second pass is timed (pages touched)
    t = Clock::now();
    cuda::copy_to_host(writable.params().flat_grads().raw(), device_grads.raw(), device_grads.nbytes());
    down = since(t);
    t = Clock::now();
    cpu.step(1e-6, 0.0);
    step = since(t);
    t = Clock::now();
    cuda::copy_to_device(device_grads.raw(), writable.params().flat_values().raw(), device_grads.nbytes());
    up = since(t);
  }
  std::printf("host path replaced, per optimizer step: gradients down %.1f ms + CPU optimizer %.1f ms + weights up "
              "%.1f ms = %.1f ms\n", down * 1e3, step * 1e3, up * 1e3, (down + step + up) * 1e3);
  return 0;
}
