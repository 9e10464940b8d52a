// Learning sanity on one rank (runs in CI): supervised fine-tuning drives the loss down on a toy task, and GRPO,
// sampling from the policy it trains, raises a fixed reward.
#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>

#include "comm/parallel.h"
#include "core/rng.h"
#include "model/generate_reference.h"
#include "model/hf_mapping.h"
#include "model/init.h"
#include "train/trainer.h"
#include "train/trainer_test_util.h"

using namespace slime;
using namespace slime::train;
using namespace slime::train::testing;

namespace {

// A tiny Qwen3-shaped model with a 16-token vocabulary, written as a HF directory.
std::string tiny_model_dir() {
  const std::string dir = "/tmp/slime_trainer_sanity_model";
  std::filesystem::remove_all(dir);
  model::ModelConfig c = model::ModelConfig::from_hf_json(json::parse(R"({"architectures": ["Qwen3ForCausalLM"],
    "vocab_size": 16, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
    "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 8, "tie_word_embeddings": false})"), "tiny");
  model::Decoder decoder(c);
  model::init_random(c, decoder.params(), 11, 0.2f);
  model::save_hf_checkpoint(dir, c, decoder.params());
  return dir;
}

}  // namespace

TEST_CASE("SFT on a toy task drives the loss down") {
  const std::string model = tiny_model_dir();
  Trainer trainer(make_args({"--hf-checkpoint", model, "--loss-type", "sft_loss", "--rollout-batch-size", "8",
                             "--global-batch-size", "8", "--num-rollout", "30", "--lr", "3e-3",
                             "--lr-decay-style", "constant", "--micro-batch-size", "4", "--debug-train-only",
                             "--backend", "cpu"}),
                  comm::ParallelGroups::single());
  // Sequences that count upward modulo 16 from a random start: the response is fully determined by the prompt.
  Rng rng(1);
  std::vector<double> losses;
  for (int r = 0; r < 30; ++r) {
    std::vector<TrainSample> samples;
    for (int i = 0; i < 8; ++i) {
      TrainSample s;
      const int64_t start = static_cast<int64_t>(rng.below(16));
      for (int64_t t = 0; t < 10; ++t) s.tokens.push_back((start + t) % 16);
      s.response_length = 7;
      samples.push_back(s);
    }
    losses.push_back(trainer.train_rollout(r, samples).steps.at(0).at("train/loss"));
  }
  std::printf("sft loss: first %.4f, last %.4f\n", losses.front(), losses.back());
  CHECK(losses.back() < 0.3 * losses.front());
}

namespace {

// Samples from the policy with the reference generator, rewards the share of `target` tokens, trains; returns the
// mean reward of every rollout.
std::vector<double> train_on_fixed_reward(const std::vector<std::string>& extra_options, int rollouts) {
  const std::string model = tiny_model_dir();
  const int64_t prompts = 4, n = 8, length = 8, target = 3;
  std::vector<std::string> options = {"--hf-checkpoint", model, "--rollout-batch-size", std::to_string(prompts),
                                      "--n-samples-per-prompt", std::to_string(n), "--global-batch-size", "32",
                                      "--num-rollout", std::to_string(rollouts), "--lr", "1e-2",
                                      "--lr-decay-style", "constant", "--micro-batch-size", "8",
                                      "--eps-clip-high", "0.28", "--debug-train-only", "--backend", "cpu"};
  options.insert(options.end(), extra_options.begin(), extra_options.end());
  Trainer trainer(make_args(options), comm::ParallelGroups::single());
  Rng rng(2);
  std::vector<double> rewards;
  for (int r = 0; r < rollouts; ++r) {
    std::vector<TrainSample> samples;
    for (int64_t p = 0; p < prompts; ++p) {
      std::vector<int64_t> prompt = {static_cast<int64_t>(rng.below(16)), static_cast<int64_t>(rng.below(16))};
      for (int64_t k = 0; k < n; ++k) {
        model::SamplingParams sampling;
        sampling.max_new_tokens = length;
        sampling.seed = 1000 * r + 10 * p + k;
        model::Generation g = model::generate_reference(trainer.model(), prompt, sampling);
        TrainSample s;
        s.tokens = prompt;
        s.tokens.insert(s.tokens.end(), g.tokens.begin(), g.tokens.end());
        s.response_length = static_cast<int64_t>(g.tokens.size());
        s.reward = static_cast<float>(std::count(g.tokens.begin(), g.tokens.end(), target)) / length;
        s.rollout_logprobs = g.logprobs;
        samples.push_back(s);
      }
    }
    RolloutTrainResult result = trainer.train_rollout(r, samples);
    rewards.push_back(result.rollout.at("rollout/raw_reward"));
    if (result.steps.at(0).count("train/ppo_kl"))
      CHECK(result.steps.at(0).at("train/ppo_kl") == Approx(0.0).margin(1e-9));  // old log-probs = current
  }
  return rewards;
}

void check_reward_rises(const char* name, const std::vector<double>& rewards) {
  std::printf("%s mean reward per rollout:", name);
  for (double v : rewards) std::printf(" %.3f", v);
  std::printf("\n");
  const size_t n = rewards.size();
  CHECK((rewards[n - 1] + rewards[n - 2]) / 2 > (rewards[0] + rewards[1]) / 2 + 0.3);
}

}  // namespace

TEST_CASE("GRPO on a fixed reward raises it") { check_reward_rises("grpo", train_on_fixed_reward({}, 12)); }

TEST_CASE("PPO with a critic on a fixed reward raises it") {
  check_reward_rises("ppo", train_on_fixed_reward({"--advantage-estimator", "ppo", "--normalize-advantages",
                                                   "--num-critic-only-steps", "1", "--gamma", "1.0", "--lambd",
                                                   "0.95"},
                                                  14));
}
