// Data-parallel micro-batch schedule (see dp_schedule.h). Follows slime/utils/dp_schedule.py,
// seqlen_balancing.py and flops_utils.py step by step, including their tie-breaking and the order in which they
// add floating-point numbers, so that a schedule is the one slime would produce for the same input.
#include "train/dp_schedule.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <utility>

#include "core/error.h"

namespace slime::train {

// ============================================================================================================
// FLOPs estimate (slime/utils/flops_utils.py)
// ============================================================================================================

namespace {

// Python integers never overflow; 128-bit integers cover every product below (tokens x hidden x vocab ...).
__extension__ typedef __int128 Int128;

// Python's int -> float conversion is correctly rounded, as is GCC's __int128 -> double.
double to_double(Int128 value) { return static_cast<double>(value); }

// calculate_layer_flops for one layer whose MLP is `ffn_width` wide, evaluated as Python evaluates it:
// ((qkv + attention) + output) + mlp, where qkv, output and mlp are integers and attention is a float.
double layer_flops(const FlopsModel& model, int64_t seq_length, int64_t ffn_width) {
  const Int128 L = seq_length, hidden = model.hidden_size, heads = model.num_attention_heads;
  const Int128 groups = model.num_query_groups, head_dim = model.kv_channels;
  const Int128 q_flops = 2 * L * hidden * heads * head_dim;
  const Int128 kv_flops = 2 * 2 * L * hidden * groups * head_dim;
  const Int128 qkv_flops = q_flops + kv_flops;
  // Causal QK^T counts half the square (a true division in Python), then A*V.
  double attention_flops = to_double(2 * heads * L * L * head_dim) / 2.0;
  attention_flops += to_double(heads * L * L * head_dim);
  const Int128 output_flops = 2 * L * hidden * hidden;
  const Int128 mlp_flops = 2 * L * hidden * Int128(ffn_width) * 3;
  double total = to_double(qkv_flops) + attention_flops;
  total += to_double(output_flops);
  total += to_double(mlp_flops);
  return total;
}

}  // namespace

void validate_flops_model(const FlopsModel& model) {
  const std::pair<const char*, int64_t> sizes[] = {{"num_layers", model.num_layers},
                                                   {"hidden_size", model.hidden_size},
                                                   {"num_attention_heads", model.num_attention_heads},
                                                   {"num_query_groups", model.num_query_groups},
                                                   {"kv_channels", model.kv_channels},
                                                   {"ffn_hidden_size", model.ffn_hidden_size},
                                                   {"vocab_size", model.vocab_size}};
  for (const auto& [name, value] : sizes)
    SLIME_CHECK(value > 0, "FLOPs model: ", name, " must be positive, got ", value);
  SLIME_CHECK(model.num_experts >= 0, "FLOPs model: num_experts must be >= 0 (0 = dense), got ", model.num_experts);
  if (model.num_experts == 0) return;
  SLIME_CHECK(model.moe_ffn_hidden_size > 0, "FLOPs model: moe_ffn_hidden_size must be positive for an MoE model, got ",
              model.moe_ffn_hidden_size);
  SLIME_CHECK(model.moe_router_topk > 0, "FLOPs model: moe_router_topk must be positive for an MoE model, got ",
              model.moe_router_topk);
  SLIME_CHECK(model.moe_shared_expert_intermediate_size >= 0,
              "FLOPs model: moe_shared_expert_intermediate_size must be >= 0, got ",
              model.moe_shared_expert_intermediate_size);
  if (model.moe_layer_pattern.empty()) {
    SLIME_CHECK(model.moe_layer_freq > 0, "FLOPs model: moe_layer_freq must be positive, got ", model.moe_layer_freq);
  } else {
    SLIME_CHECK(static_cast<int64_t>(model.moe_layer_pattern.size()) == model.num_layers,
                "FLOPs model: moe_layer_pattern has ", model.moe_layer_pattern.size(), " entries but num_layers is ",
                model.num_layers);
    for (size_t layer = 0; layer < model.moe_layer_pattern.size(); ++layer)
      SLIME_CHECK(model.moe_layer_pattern[layer] >= 0, "FLOPs model: moe_layer_pattern[", layer,
                  "] must be 0 (dense) or positive (MoE), got ", model.moe_layer_pattern[layer]);
  }
}

double forward_flops(const FlopsModel& model, int64_t seq_length) {
  int64_t num_dense_layers = model.num_layers, num_moe_layers = 0;
  int64_t moe_ffn_width = 0;
  if (model.num_experts > 0) {
    moe_ffn_width = model.moe_ffn_hidden_size * model.moe_router_topk + model.moe_shared_expert_intermediate_size;
    num_dense_layers = 0;
    if (!model.moe_layer_pattern.empty()) {
      for (int64_t freq : model.moe_layer_pattern) (freq > 0 ? num_moe_layers : num_dense_layers) += 1;
    } else {
      for (int64_t layer = 0; layer < model.num_layers; ++layer)
        (layer % model.moe_layer_freq == 0 ? num_moe_layers : num_dense_layers) += 1;
    }
  }
  double total = 0.0;
  if (num_dense_layers > 0)
    total += layer_flops(model, seq_length, model.ffn_hidden_size) * static_cast<double>(num_dense_layers);
  if (num_moe_layers > 0) total += layer_flops(model, seq_length, moe_ffn_width) * static_cast<double>(num_moe_layers);
  const Int128 lm_head_flops = 2 * Int128(seq_length) * model.hidden_size * model.vocab_size;
  total += to_double(lm_head_flops);
  return total;
}

// ============================================================================================================
// Karmarkar-Karp, first-fit packing, bin splitting (slime/utils/seqlen_balancing.py)
// ============================================================================================================

namespace {

struct WeightedItem {
  int64_t index = 0;
  double cost = 0;
  bool operator<(const WeightedItem& other) const {
    return index != other.index ? index < other.index : cost < other.cost;
  }
};

// One set of a partial partition. `sum` is accumulated item by item, as slime does, so floating-point sums and
// therefore tie-breaks match.
struct PartialSet {
  double sum = 0;
  std::vector<WeightedItem> items;
  void add(const WeightedItem& item) {
    items.push_back(item);
    sum += item.cost;
  }
};

// slime's Set.__lt__: by sum, then item count, then the item lists (index, cost) lexicographically.
bool set_less(const PartialSet& a, const PartialSet& b) {
  if (a.sum != b.sum) return a.sum < b.sum;
  if (a.items.size() != b.items.size()) return a.items.size() < b.items.size();
  return a.items < b.items;
}

// A k-way partial partition; sets are kept in decreasing order (stable among equals, like sorted(reverse=True)).
struct PartialPartition {
  std::vector<PartialSet> sets;
  void sort_sets() {
    std::stable_sort(sets.begin(), sets.end(), [](const PartialSet& a, const PartialSet& b) { return set_less(b, a); });
  }
  double spread() const { return sets.front().sum - sets.back().sum; }
  // Largest differencing: the heaviest set takes the other's lightest, and so on.
  void merge(const PartialPartition& other) {
    const size_t k = sets.size();
    for (size_t i = 0; i < k; ++i)
      for (const WeightedItem& item : other.sets[k - 1 - i].items) sets[i].add(item);
    sort_sets();
  }
};

// slime's State.__lt__ for its min-heap: the partition with the largest spread comes first, then the one whose
// heaviest set is the largest.
bool comes_first(const PartialPartition& a, const PartialPartition& b) {
  const double spread_a = a.spread(), spread_b = b.spread();
  if (spread_a != spread_b) return spread_a > spread_b;
  return set_less(b.sets.front(), a.sets.front());
}

// Heap comparator for std::push_heap / pop_heap, whose top is the element no other "comes first" before.
bool heap_order(const PartialPartition& a, const PartialPartition& b) { return comes_first(b, a); }

}  // namespace

std::vector<std::vector<int64_t>> karmarkar_karp(const std::vector<double>& costs, int64_t parts, bool equal_size) {
  const int64_t num_items = static_cast<int64_t>(costs.size());
  SLIME_CHECK(parts >= 1, "karmarkar_karp: number of partitions must be positive, got ", parts);
  SLIME_CHECK(num_items >= parts, "karmarkar_karp: ", num_items, " items cannot fill ", parts, " non-empty partitions");
  SLIME_CHECK(!equal_size || num_items % parts == 0, "karmarkar_karp: equal-size partitions need the item count (",
              num_items, ") to be a multiple of the partition count (", parts, ")");
  for (int64_t i = 0; i < num_items; ++i)
    SLIME_CHECK(std::isfinite(costs[i]), "karmarkar_karp: cost of item ", i, " is not finite (", costs[i], ")");

  // Items by increasing (cost, index).
  std::vector<WeightedItem> sorted_items(num_items);
  for (int64_t i = 0; i < num_items; ++i) sorted_items[i] = {i, costs[i]};
  std::sort(sorted_items.begin(), sorted_items.end(), [](const WeightedItem& a, const WeightedItem& b) {
    return a.cost != b.cost ? a.cost < b.cost : a.index < b.index;
  });

  // Starting partial partitions: one item each, or (equal_size) `parts` consecutive items, one per set.
  std::vector<PartialPartition> heap;
  const int64_t group = equal_size ? parts : 1;
  for (int64_t offset = 0; offset < num_items; offset += group) {
    PartialPartition start;
    start.sets.resize(parts);
    for (int64_t i = 0; i < group; ++i) start.sets[i].add(sorted_items[offset + i]);
    start.sort_sets();
    heap.push_back(std::move(start));
    std::push_heap(heap.begin(), heap.end(), heap_order);
  }

  while (heap.size() > 1) {
    std::pop_heap(heap.begin(), heap.end(), heap_order);
    PartialPartition first = std::move(heap.back());
    heap.pop_back();
    std::pop_heap(heap.begin(), heap.end(), heap_order);
    PartialPartition second = std::move(heap.back());
    heap.pop_back();
    first.merge(second);
    heap.push_back(std::move(first));
    std::push_heap(heap.begin(), heap.end(), heap_order);
  }

  std::vector<std::vector<int64_t>> partitions;
  std::vector<bool> seen(num_items, false);
  for (const PartialSet& set : heap.front().sets) {
    std::vector<int64_t> indices;
    for (const WeightedItem& item : set.items) {
      SLIME_ASSERT(!seen[item.index], "item ", item.index, " placed twice");
      seen[item.index] = true;
      indices.push_back(item.index);
    }
    SLIME_ASSERT(!indices.empty(), "Karmarkar-Karp left a partition empty (", num_items, " items, ", parts, " parts)");
    SLIME_ASSERT(!equal_size || static_cast<int64_t>(indices.size()) * parts == num_items,
                 "equal-size partition holds ", indices.size(), " of ", num_items, " items");
    std::sort(indices.begin(), indices.end());
    partitions.push_back(std::move(indices));
  }
  SLIME_ASSERT(std::all_of(seen.begin(), seen.end(), [](bool placed) { return placed; }), "an item was not placed");
  return partitions;
}

std::vector<std::vector<int64_t>> first_fit_pack(const std::vector<int64_t>& lengths, int64_t max_tokens_per_bin) {
  std::vector<std::vector<int64_t>> bins;
  std::vector<int64_t> bin_tokens;
  for (int64_t index = 0; index < static_cast<int64_t>(lengths.size()); ++index) {
    const int64_t length = lengths[index];
    size_t bin = 0;
    while (bin < bins.size() && bin_tokens[bin] + length > max_tokens_per_bin) ++bin;
    if (bin == bins.size()) {
      bins.emplace_back();
      bin_tokens.push_back(0);
    }
    bins[bin].push_back(index);
    bin_tokens[bin] += length;
  }
  return bins;
}

void expand_bins_by_splitting(std::vector<std::vector<int64_t>>& bins, int64_t target_count,
                              const std::vector<int64_t>& lengths) {
  while (static_cast<int64_t>(bins.size()) < target_count) {
    // The multi-item bin with the most tokens; among equals the last one (slime takes max of (tokens, position)).
    int64_t chosen = -1, chosen_tokens = 0;
    for (int64_t b = 0; b < static_cast<int64_t>(bins.size()); ++b) {
      if (bins[b].size() < 2) continue;
      int64_t tokens = 0;
      for (int64_t index : bins[b]) tokens += lengths[index];
      if (chosen < 0 || tokens >= chosen_tokens) {
        chosen = b;
        chosen_tokens = tokens;
      }
    }
    if (chosen < 0) return;  // only single-item bins left

    // Longest first (stable), each to the lighter half, the left one on a tie.
    std::vector<int64_t> by_length = bins[chosen];
    std::stable_sort(by_length.begin(), by_length.end(), [&](int64_t a, int64_t b) { return lengths[a] > lengths[b]; });
    std::vector<int64_t> halves[2];
    int64_t half_tokens[2] = {0, 0};
    for (int64_t index : by_length) {
      const int half = half_tokens[0] <= half_tokens[1] ? 0 : 1;
      halves[half].push_back(index);
      half_tokens[half] += lengths[index];
    }
    bins[chosen] = std::move(halves[0]);
    bins.push_back(std::move(halves[1]));
  }
}

// ============================================================================================================
// The schedule (slime/utils/dp_schedule.py)
// ============================================================================================================

namespace {

void validate_options(const std::vector<int64_t>& total_lengths, const std::vector<int64_t>& rollout_ids,
                      const ScheduleOptions& options) {
  SLIME_CHECK(total_lengths.size() == rollout_ids.size(), "DP schedule: total_lengths has ", total_lengths.size(),
              " entries but rollout_ids has ", rollout_ids.size(), "; expected one rollout id per sample");
  SLIME_CHECK(options.global_batch_size > 0, "--global-batch-size must be positive, got ", options.global_batch_size);
  SLIME_CHECK(options.micro_batch_size > 0, "--micro-batch-size must be positive, got ", options.micro_batch_size);
  SLIME_CHECK(options.dp_size > 0, "DP schedule: data-parallel size must be positive, got ", options.dp_size);
  if (options.use_dynamic_batch_size) {
    SLIME_CHECK(options.max_tokens_per_gpu.has_value(),
                "--use-dynamic-batch-size needs --max-tokens-per-gpu (the token cap of a micro-batch)");
    SLIME_CHECK(*options.max_tokens_per_gpu > 0, "--max-tokens-per-gpu must be positive, got ",
                *options.max_tokens_per_gpu);
  }
  SLIME_CHECK(!options.balance_by_flops || options.use_dynamic_batch_size,
              "--balance-by-flops requires --use-dynamic-batch-size");
  if (options.balance_data || options.balance_by_flops) validate_flops_model(options.flops);
  for (size_t i = 0; i < total_lengths.size(); ++i)
    SLIME_CHECK(total_lengths[i] > 0, "DP schedule: sample ", i, " has total length ", total_lengths[i],
                "; expected a positive token count (prompt + response)");
}

// Step 2 of the schedule: a step's samples packed into micro-batches, as local indices into `step_lengths`.
std::vector<std::vector<int64_t>> pack_step(const std::vector<int64_t>& step_lengths,
                                            const std::vector<double>& step_flops, const ScheduleOptions& options) {
  const int64_t num_samples = static_cast<int64_t>(step_lengths.size());
  if (!options.use_dynamic_batch_size) {
    std::vector<std::vector<int64_t>> chunks;
    for (int64_t start = 0; start < num_samples; start += options.micro_batch_size) {
      std::vector<int64_t>& chunk = chunks.emplace_back();
      for (int64_t i = start; i < std::min(start + options.micro_batch_size, num_samples); ++i) chunk.push_back(i);
    }
    return chunks;
  }
  const int64_t max_tokens = *options.max_tokens_per_gpu;
  if (!options.balance_by_flops) return first_fit_pack(step_lengths, max_tokens);
  // As many micro-batches as the token cap asks for, balanced by FLOPs (the cap itself is not enforced).
  int64_t total_tokens = 0;
  for (int64_t length : step_lengths) total_tokens += length;
  const int64_t num_microbatches = std::max<int64_t>(1, (total_tokens + max_tokens - 1) / max_tokens);
  if (num_microbatches >= num_samples) {
    std::vector<std::vector<int64_t>> singles;
    for (int64_t i = 0; i < num_samples; ++i) singles.push_back({i});
    return singles;
  }
  return karmarkar_karp(step_flops, num_microbatches, /*equal_size=*/false);
}

}  // namespace

std::vector<StepSchedule> build_dp_schedule(const std::vector<int64_t>& total_lengths,
                                            const std::vector<int64_t>& rollout_ids, const ScheduleOptions& options) {
  validate_options(total_lengths, rollout_ids, options);
  const int64_t dp_size = options.dp_size;
  // slime's argument validation sets --balance-data whenever --balance-by-flops is given.
  // Every use of FLOPs goes with rank balancing.
  const bool balance_ranks = options.balance_data || options.balance_by_flops;

  // Samples grouped by rollout id, rollouts in order of first appearance.
  std::vector<std::vector<int64_t>> rollouts;
  std::map<int64_t, size_t> rollout_position;
  for (int64_t sample = 0; sample < static_cast<int64_t>(rollout_ids.size()); ++sample) {
    auto [it, inserted] = rollout_position.emplace(rollout_ids[sample], rollouts.size());
    if (inserted) rollouts.emplace_back();
    rollouts[it->second].push_back(sample);
  }
  const int64_t num_rollouts = static_cast<int64_t>(rollouts.size());
  const int64_t num_steps = num_rollouts / options.global_batch_size;
  SLIME_CHECK(num_steps >= 1, "DP schedule: num_rollouts (", num_rollouts, ") < --global-batch-size (",
              options.global_batch_size, "); a training step needs global_batch_size rollouts");

  std::vector<StepSchedule> schedule;
  for (int64_t step = 0; step < num_steps; ++step) {
    // This step's samples (global indices) and their lengths / FLOPs, indexed locally.
    std::vector<int64_t> step_samples;
    for (int64_t r = step * options.global_batch_size; r < (step + 1) * options.global_batch_size; ++r)
      step_samples.insert(step_samples.end(), rollouts[r].begin(), rollouts[r].end());
    const int64_t num_samples = static_cast<int64_t>(step_samples.size());
    SLIME_CHECK(num_samples >= dp_size, "DP schedule: step ", step, " has ", num_samples,
                " samples but data-parallel size is ", dp_size, "; each rank needs at least one sample per step");
    std::vector<int64_t> step_lengths(num_samples);
    std::vector<double> step_flops;
    for (int64_t i = 0; i < num_samples; ++i) step_lengths[i] = total_lengths[step_samples[i]];
    if (balance_ranks)
      for (int64_t length : step_lengths) step_flops.push_back(forward_flops(options.flops, length));

    // 1. Pack.
    std::vector<std::vector<int64_t>> bins = pack_step(step_lengths, step_flops, options);

    // 2. Round the micro-batch count up to a multiple of dp_size.
    const int64_t packed = static_cast<int64_t>(bins.size());
    const int64_t target = std::max((packed + dp_size - 1) / dp_size * dp_size, dp_size);
    if (target != packed) {
      SLIME_CHECK(options.use_dynamic_batch_size, "DP schedule (static batching): step ", step, " has ", num_samples,
                  " samples = ", packed, " micro-batches of --micro-batch-size ", options.micro_batch_size,
                  ", not a multiple of the data-parallel size ", dp_size,
                  "; choose sizes so that samples per step % (micro_batch_size * dp_size) == 0");
      expand_bins_by_splitting(bins, target, step_lengths);
      SLIME_CHECK(static_cast<int64_t>(bins.size()) == target, "DP schedule (dynamic batching): step ", step,
                  " has only ", num_samples, " samples, which make ", bins.size(), " micro-batches at most; ", target,
                  " are needed for ", dp_size, " data-parallel ranks");
    }
    const int64_t num_bins = static_cast<int64_t>(bins.size());

    // 3. Distribute micro-batches to ranks, num_bins / dp_size each.
    std::vector<std::vector<int64_t>> rank_bins;
    if (balance_ranks) {
      std::vector<double> bin_flops;
      for (const auto& bin : bins) {
        double flops = 0.0;
        for (int64_t i : bin) flops += step_flops[i];
        bin_flops.push_back(flops);
      }
      rank_bins = karmarkar_karp(bin_flops, dp_size, /*equal_size=*/true);
    } else {
      rank_bins.resize(dp_size);
      for (int64_t b = 0; b < num_bins; ++b) rank_bins[b % dp_size].push_back(b);
    }

    // 4. Micro-batches in global sample indices.
    StepSchedule& out = schedule.emplace_back();
    out.per_rank.resize(dp_size);
    out.num_microbatches = num_bins / dp_size;
    out.num_rollouts = options.global_batch_size;
    out.num_samples = num_samples;
    for (int64_t rank = 0; rank < dp_size; ++rank) {
      SLIME_ASSERT(static_cast<int64_t>(rank_bins[rank].size()) == out.num_microbatches, "rank ", rank, " got ",
                   rank_bins[rank].size(), " micro-batches, expected ", out.num_microbatches);
      for (int64_t b : rank_bins[rank]) {
        MicroBatch& microbatch = out.per_rank[rank].emplace_back();
        for (int64_t i : bins[b]) {
          microbatch.samples.push_back(step_samples[i]);
          microbatch.tokens += step_lengths[i];
        }
        out.num_tokens += microbatch.tokens;
      }
    }
  }
  return schedule;
}

std::vector<int64_t> rank_samples(const std::vector<StepSchedule>& schedule, int64_t dp_rank) {
  std::vector<int64_t> samples;
  for (const StepSchedule& step : schedule) {
    SLIME_CHECK(dp_rank >= 0 && dp_rank < static_cast<int64_t>(step.per_rank.size()), "rank_samples: DP rank ", dp_rank,
                " out of range [0, ", step.per_rank.size(), ")");
    for (const MicroBatch& microbatch : step.per_rank[dp_rank])
      samples.insert(samples.end(), microbatch.samples.begin(), microbatch.samples.end());
  }
  return samples;
}

}  // namespace slime::train
