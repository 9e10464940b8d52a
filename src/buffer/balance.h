// Sequence-length balancing of a rollout over data-parallel ranks (slime's --balance-data,
// get_seqlen_balanced_partitions): Karmarkar-Karp largest differencing over `parts`-way partitions.
#pragma once

#include <cstdint>
#include <vector>

namespace slime::buffer {

// Splits samples 0..n-1 with the given token counts into `parts` parts of near-equal token sums. Returns, per part,
// the sample indices in ascending order; every sample appears exactly once; parts are ordered by their smallest
// index (empty parts, possible when n < parts and !equal_size, come last). equal_size: every part holds n / parts
// samples (an error naming n and parts when that does not divide). Deterministic: ties break by sample index.
std::vector<std::vector<int64_t>> balance_by_tokens(const std::vector<int64_t>& token_counts, int parts,
                                                    bool equal_size);

}  // namespace slime::buffer
