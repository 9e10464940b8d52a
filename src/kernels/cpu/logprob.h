// Token log-probabilities and entropy from logits, with temperature, over the true vocabulary.
//
// z = logits / temperature over columns [0, vocab); columns [vocab, padded) are Megatron's vocab padding and are
// excluded (they are not tokens). logprob_t = z[target_t] - logsumexp(z); entropy_t = logsumexp(z) - sum p z.
// Gradients (slime's _VocabParallelLogProbEntropy): d logprob / dz = onehot - p, d entropy / dz = -p (z - E_p[z]).
#pragma once

#include <cstdint>

namespace slime::cpu {

struct LogitsShape {
  int64_t tokens;   // rows
  int64_t padded;   // row stride (Megatron padded vocab)
  int64_t vocab;    // true vocabulary size <= padded
};

// logits [T, padded], targets [T] -> logprob [T], entropy [T] (nullable), lse [T] (of z, kept for backward).
template <class T>
void logprob_entropy_forward(const LogitsShape& shape, const T* logits, const int64_t* targets, T inv_temperature,
                             T* logprob, T* entropy, T* lse);

// dlogits [T, padded] (overwritten; padding columns get 0) from dlogprob [T] and dentropy [T] (nullable).
template <class T>
void logprob_entropy_backward(const LogitsShape& shape, const T* logits, const int64_t* targets, T inv_temperature,
                              const T* lse, const T* dlogprob, const T* dentropy, T* dlogits);

}  // namespace slime::cpu
