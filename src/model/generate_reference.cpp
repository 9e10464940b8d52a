#include "model/generate_reference.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <utility>

#include "core/error.h"
#include "core/rng.h"

namespace slime::model {

int64_t sample_token(const float* logits, int64_t vocab, const SamplingParams& params, float uniform,
                     float* logprob) {
  SLIME_CHECK(vocab > 0, "sample_token: empty vocabulary");
  const bool greedy = params.temperature <= 0.0f;
  const double inv_t = greedy ? 1.0 : 1.0 / params.temperature;
  double m = -INFINITY;
  for (int64_t j = 0; j < vocab; ++j) m = std::max(m, logits[j] * inv_t);
  // exp(logit / T - max) of every token, computed once: the normaliser and the sampling walk both use it.
  thread_local std::vector<double> unnormalized;
  unnormalized.resize(static_cast<size_t>(vocab));
  double sum = 0;
  for (int64_t j = 0; j < vocab; ++j) sum += unnormalized[j] = std::exp(logits[j] * inv_t - m);
  const double log_z = m + std::log(sum);
  auto logp = [&](int64_t j) { return static_cast<float>(logits[j] * inv_t - log_z); };

  if (greedy) {
    int64_t best = std::max_element(logits, logits + vocab) - logits;  // first maximum on ties
    *logprob = logp(best);
    return best;
  }
  if ((params.top_k <= 0 || params.top_k >= vocab) && params.top_p >= 1.0f) {  // no truncation: walk in id order
    const double target = static_cast<double>(uniform) * sum;
    double acc = 0;
    int64_t chosen = vocab - 1;
    for (int64_t j = 0; j < vocab; ++j) {
      acc += unnormalized[j];
      if (target < acc) {
        chosen = j;
        break;
      }
    }
    *logprob = logp(chosen);
    return chosen;
  }
  const double z_scale = std::exp(m - log_z);  // unnormalized[j] * z_scale = p(j)
  // Candidates by descending probability (ties by id), truncated by top-k then top-p.
  std::vector<int64_t> order(vocab);
  std::iota(order.begin(), order.end(), 0);
  int64_t keep = params.top_k > 0 ? std::min<int64_t>(params.top_k, vocab) : vocab;
  auto by_logit = [&](int64_t a, int64_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); };
  if (keep < vocab || params.top_p < 1.0f) {
    std::partial_sort(order.begin(), order.begin() + keep, order.end(), by_logit);
  }
  std::vector<double> probs(keep);
  double kept_mass = 0;
  for (int64_t i = 0; i < keep; ++i) kept_mass += probs[i] = unnormalized[order[i]] * z_scale;
  if (params.top_p < 1.0f) {
    double cumulative = 0;
    int64_t cut = keep;
    for (int64_t i = 0; i < keep; ++i) {
      cumulative += probs[i] / kept_mass;
      if (cumulative >= params.top_p) {
        cut = i + 1;
        break;
      }
    }
    keep = cut;
    kept_mass = std::accumulate(probs.begin(), probs.begin() + keep, 0.0);
  }
  // The draw walks the kept tokens in ascending id order (the same rule as the untruncated walk above, and what the
  // GPU sampler does without sorting): the first kept token whose running probability exceeds uniform * kept mass;
  // the last kept id if rounding leaves none.
  std::vector<std::pair<int64_t, double>> kept(keep);
  for (int64_t i = 0; i < keep; ++i) kept[i] = {order[i], probs[i]};
  std::sort(kept.begin(), kept.end());
  double target = static_cast<double>(uniform) * kept_mass, acc = 0;
  int64_t chosen = kept[keep - 1].first;
  for (int64_t i = 0; i < keep; ++i) {
    acc += kept[i].second;
    if (target < acc) {
      chosen = kept[i].first;
      break;
    }
  }
  *logprob = logp(chosen);
  return chosen;
}

Generation generate_reference(Decoder& model, const std::vector<int64_t>& prompt, const SamplingParams& params) {
  SLIME_CHECK(!prompt.empty(), "generate: the prompt is empty");
  SLIME_CHECK(params.max_new_tokens >= 0, "generate: max_new_tokens must be >= 0");
  const ModelConfig& config = model.config();
  Generation out;
  std::vector<int64_t> sequence = prompt;
  out.finish_reason = "length";
  for (int64_t step = 0; step < params.max_new_tokens; ++step) {
    Tensor logits = model.forward_logits(PackedBatch::from_sequences({sequence}));
    const float* last = logits.data<float>() + (logits.dim(0) - 1) * config.padded_vocab_size;
    float logprob = 0;
    const float uniform = philox_uniform(params.seed, 0, static_cast<uint64_t>(step));
    int64_t token = sample_token(last, config.vocab_size, params, uniform, &logprob);
    out.tokens.push_back(token);
    out.logprobs.push_back(logprob);
    sequence.push_back(token);
    if (std::find(params.stop_token_ids.begin(), params.stop_token_ids.end(), token) != params.stop_token_ids.end()) {
      out.finish_reason = "stop";
      break;
    }
  }
  return out;
}

}  // namespace slime::model
