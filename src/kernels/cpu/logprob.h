// Token log-probabilities and entropy from logits, with temperature, over the true vocabulary, vocab-parallel.
//
// z = logits / temperature. With tensor parallelism each rank holds the logits of a slice of the (Megatron-padded)
// vocabulary: local column j is token vocab_begin + j; columns whose token id is >= vocab are padding and excluded.
// The softmax statistics are therefore computed in two partial passes with a reduction across ranks between them
// (max, then sums), as slime's _VocabParallelLogProbEntropy does:
//   lse_t = logsumexp(z_t);  logprob_t = z_t[target] - lse_t;  entropy_t = lse_t - E_p[z_t]
// Gradients: d logprob / dz = onehot - p,  d entropy / dz = -p (z - E_p[z]).
#pragma once

#include <cstdint>

namespace slime::cpu {

struct LogitsShape {
  int64_t tokens;           // rows
  int64_t padded;           // local columns (row stride)
  int64_t vocab;            // true (global) vocabulary size
  int64_t vocab_begin = 0;  // global token id of local column 0
  int64_t valid_columns() const;  // local columns that are real tokens
};

// Pass 1: row_max[T] = max over this rank's valid columns of z (-inf when it holds none).
template <class T>
void logprob_partial_max(const LogitsShape& shape, const T* logits, T inv_temperature, T* row_max);

// Pass 2, with the global row maximum: sum_exp[T] = sum exp(z - max), sum_exp_z[T] = sum exp(z - max) * z over this
// rank's valid columns, target_z[T] = z[target] if this rank holds the target, else 0.
template <class T>
void logprob_partial_sums(const LogitsShape& shape, const T* logits, const int64_t* targets, T inv_temperature,
                          const T* row_max, double* sum_exp, double* sum_exp_z, double* target_z);

// Single-rank convenience: logprob [T], entropy [T] (nullable), lse [T], mean_z [T] (nullable) = E_p[z].
template <class T>
void logprob_entropy_forward(const LogitsShape& shape, const T* logits, const int64_t* targets, T inv_temperature,
                             T* logprob, T* entropy, T* lse, T* mean_z = nullptr);

// dlogits [T, padded] (overwritten; padding columns get 0) from dlogprob [T] and dentropy [T] (either nullable),
// given the global lse and mean_z of the forward pass.
template <class T>
void logprob_entropy_backward(const LogitsShape& shape, const T* logits, const int64_t* targets, T inv_temperature,
                              const T* lse, const T* mean_z, const T* dlogprob, const T* dentropy, T* dlogits);

}  // namespace slime::cpu
