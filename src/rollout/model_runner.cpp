#include "rollout/model_runner.h"

#include <cstring>

#include "comm/mpi_utils.h"
#include "core/error.h"
#include "core/rng.h"
#include "rollout/engine.h"
#ifdef SLIME_HAVE_CUDA
#include "rollout/cuda_model_runner.h"
#endif

namespace slime::rollout {

model::SamplingParams next_token_sampling(const Sequence& seq, float* uniform) {
  model::SamplingParams sp;
  sp.temperature = seq.params.temperature;
  sp.top_k = seq.params.top_k;
  sp.top_p = seq.params.top_p;
  *uniform = philox_uniform(seq.params.seed, 0, static_cast<uint64_t>(seq.num_generated()));
  return sp;
}

CpuModelRunner::CpuModelRunner(model::Decoder& model, const EngineConfig& config) : model_(model) {
  cache_ = model::KvCache::allocate(model_.config(), model_.tp().size, config.num_blocks, config.block_size);
}

std::vector<SampledToken> CpuModelRunner::run(const std::vector<ScheduledChunk>& chunks) {
  cpu::PagedSequences seqs;
  seqs.cu_seqlens = {0};
  std::vector<int64_t> tokens, logit_rows;
  for (const ScheduledChunk& c : chunks) {
    for (int64_t i = 0; i < c.count; ++i) {
      tokens.push_back(c.seq->tokens[c.start + i]);
      seqs.positions.push_back(c.start + i);
    }
    seqs.cu_seqlens.push_back(static_cast<int64_t>(tokens.size()));
    seqs.context_lens.push_back(c.start + c.count);
    seqs.block_tables.push_back(c.seq->block_table);
    if (c.samples) logit_rows.push_back(seqs.cu_seqlens.back() - 1);
  }
  Tensor logits = model_.forward_paged(seqs, tokens, cache_, logit_rows);
  const comm::Group& tp = model_.tp();
  if (!tp.single() && !logit_rows.empty()) {  // vocab-parallel logits: rank r holds columns [r V/TP, (r+1) V/TP)
    const int64_t rows = logits.dim(0), local = logits.dim(1);
    gathered_.resize(static_cast<size_t>(rows * local * tp.size));
    mpiCheck(MPI_Allgather(logits.raw(), static_cast<int>(rows * local), MPI_FLOAT, gathered_.data(),
                           static_cast<int>(rows * local), MPI_FLOAT, tp.comm));
    logits = Tensor::empty({rows, local * tp.size}, DType::F32);
    for (int r = 0; r < tp.size; ++r)
      for (int64_t i = 0; i < rows; ++i)
        std::memcpy(logits.data<float>() + i * local * tp.size + r * local,
                    gathered_.data() + (r * rows + i) * local, static_cast<size_t>(local) * sizeof(float));
  }
  const int64_t padded = logits.dim(1), vocab = model_.config().vocab_size;
  std::vector<SampledToken> out;
  int64_t row = 0;
  for (const ScheduledChunk& c : chunks) {
    if (!c.samples) continue;
    float uniform = 0;
    const model::SamplingParams sp = next_token_sampling(*c.seq, &uniform);
    SampledToken s;
    s.token = model::sample_token(logits.data<float>() + row++ * padded, vocab, sp, uniform, &s.logprob);
    out.push_back(s);
  }
  return out;
}

std::unique_ptr<ModelRunner> make_model_runner(model::Decoder& model, EngineConfig& config) {
  if (config.max_context_len <= 0) config.max_context_len = model.config().max_position_embeddings;
  if (config.backend == EngineBackend::Cpu) {
    SLIME_CHECK(config.num_blocks > 0, "rollout engine: the KV cache has no blocks (--sglang-max-total-tokens or "
                                       "--sglang-mem-fraction-static too small)");
    return std::make_unique<CpuModelRunner>(model, config);
  }
#ifdef SLIME_HAVE_CUDA
  return std::make_unique<CudaModelRunner>(model, config);
#else
  SLIME_FAIL("rollout engine: the cuda backend needs a build with the CUDA toolkit (nvcc was not found when this "
             "binary was configured); use --backend cpu");
#endif
}

}  // namespace slime::rollout
