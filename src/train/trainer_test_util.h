// Helpers shared by the trainer tests: options from a command line, and synthetic rollouts.
#pragma once

#include <string>
#include <vector>

#include "core/args.h"
#include "core/rng.h"
#include "train/trainer.h"

namespace slime::train::testing {

inline std::string golden_model(const std::string& name) {
  const char* src = std::getenv("SLIME_SOURCE_DIR");
  return std::string(src ? src : ".") + "/regression/hf_parity/golden/" + name;
}

// slime-train options as the command line gives them, validated.
inline Args make_args(const std::vector<std::string>& argv) {
  Args args = parse_args(argv).args;
  validate_args(args);
  return args;
}

// `prompts` groups of `n` samples: random prompt and response tokens below `vocab`, rewards in {0, 1}, a zero in
// some loss masks, rollout log-probs around -6.
inline std::vector<TrainSample> synthetic_rollout(int64_t prompts, int64_t n, int64_t vocab, uint64_t seed) {
  Rng rng(seed);
  std::vector<TrainSample> samples;
  for (int64_t p = 0; p < prompts; ++p) {
    std::vector<int64_t> prompt(3 + rng.below(5));
    for (int64_t& t : prompt) t = static_cast<int64_t>(rng.below(vocab));
    for (int64_t k = 0; k < n; ++k) {
      TrainSample s;
      s.tokens = prompt;
      s.response_length = 2 + static_cast<int64_t>(rng.below(7));
      for (int64_t j = 0; j < s.response_length; ++j) s.tokens.push_back(static_cast<int64_t>(rng.below(vocab)));
      s.loss_mask.assign(s.response_length, 1.0f);
      if (rng.below(3) == 0) s.loss_mask[rng.below(s.response_length)] = 0.0f;
      s.reward = static_cast<float>(rng.below(2));
      for (int64_t j = 0; j < s.response_length; ++j) s.rollout_logprobs.push_back(-6.0f + 0.5f * rng.normal());
      samples.push_back(s);
    }
  }
  return samples;
}

inline double relative_difference(const Tensor& a, const Tensor& b) {
  double num = 0, den = 0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    const double x = a.data<float>()[i], y = b.data<float>()[i];
    num += (x - y) * (x - y);
    den += y * y;
  }
  return std::sqrt(num / std::max(den, 1e-30));
}

}  // namespace slime::train::testing
