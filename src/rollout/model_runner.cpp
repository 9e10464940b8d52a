#include "rollout/model_runner.h"

namespace slime::rollout {

Tensor ModelRunner::run(const std::vector<ScheduledChunk>& chunks) {
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
  return model_.forward_paged(seqs, tokens, cache_, logit_rows);
}

}  // namespace slime::rollout
