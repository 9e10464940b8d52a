// Data-parallel micro-batch schedule of one rollout: which samples form each optimizer step, how each step's
// samples are packed into micro-batches, and which DP rank runs each micro-batch. Same semantics as slime's
// slime/utils/dp_schedule.py ("pack first, distribute second") and slime/utils/seqlen_balancing.py:
//   1. group samples by rollout id (first-occurrence order), cut the rollouts into steps of global_batch_size
//      rollouts; trailing rollouts that do not fill a step are dropped;
//   2. pack each step's samples into micro-batches: fixed chunks of micro_batch_size (static), first-fit under
//      max_tokens_per_gpu (dynamic; an oversized sample sits alone), or Karmarkar-Karp on estimated FLOPs
//      (dynamic + balance_by_flops; may exceed the token cap);
//   3. round the micro-batch count up to a multiple of dp_size by splitting the largest bins (dynamic only;
//      a static count that is not a multiple is an error);
//   4. hand dp_size equal shares of micro-batches to the ranks: Karmarkar-Karp on estimated FLOPs
//      (balance_data) or strided round-robin.
// Every DP rank ends up with the same number of micro-batches per step. Ties are broken exactly as slime breaks
// them, so the same input gives slime's schedule. Not covered: context parallelism (slime multiplies the cap by
// cp_size) and virtual pipeline stages (slime rounds to dp_size * microbatch_group_size_per_vp_stage).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

namespace slime::train {

// Model shape for the forward-FLOPs estimate that weighs samples when balancing (slime/utils/flops_utils.py,
// Megatron names). The estimate of one sequence of L tokens is a*L + b*L^2: QKV, output and MLP projections
// and the LM head are linear in L, causal attention is quadratic. Multi-latent attention is not modelled.
struct FlopsModel {
  int64_t num_layers = 0;
  int64_t hidden_size = 0;
  int64_t num_attention_heads = 0;
  int64_t num_query_groups = 0;  // KV heads
  int64_t kv_channels = 0;       // head dim
  int64_t ffn_hidden_size = 0;   // dense MLP width (gate/up/down counted as 3 GEMMs)
  int64_t vocab_size = 0;
  // Mixture of experts: num_experts == 0 means a dense model. An MoE layer's MLP width is
  // moe_ffn_hidden_size * moe_router_topk + moe_shared_expert_intermediate_size. Which layers are MoE:
  // moe_layer_pattern (one entry a layer, > 0 = MoE) when given, else every layer i with i % moe_layer_freq == 0.
  int64_t num_experts = 0;
  int64_t moe_ffn_hidden_size = 0;
  int64_t moe_router_topk = 0;
  int64_t moe_shared_expert_intermediate_size = 0;
  int64_t moe_layer_freq = 1;
  std::vector<int64_t> moe_layer_pattern;
};

// Checks that the shape is usable (every size positive, MoE fields consistent); errors name the field.
void validate_flops_model(const FlopsModel& model);

// Estimated forward FLOPs of one sequence of `seq_length` tokens (slime's calculate_fwd_flops([seq_length])),
// computed in the same order as slime so the value is the same double.
double forward_flops(const FlopsModel& model, int64_t seq_length);

struct ScheduleOptions {
  int64_t global_batch_size = 0;  // rollouts per optimizer step
  int64_t micro_batch_size = 1;   // samples per micro-batch (static batching)
  bool use_dynamic_batch_size = false;
  std::optional<int64_t> max_tokens_per_gpu;  // token cap per micro-batch (dynamic batching)
  bool balance_data = false;                  // assign micro-batches to ranks by Karmarkar-Karp on FLOPs
  bool balance_by_flops = false;              // dynamic only: pack micro-batches by Karmarkar-Karp on FLOPs
  int64_t dp_size = 1;
  FlopsModel flops;  // needed only with balance_data or balance_by_flops
};

struct MicroBatch {
  std::vector<int64_t> samples;  // global sample indices (into total_lengths), in packing order
  int64_t tokens = 0;            // sum of their total lengths
};

struct StepSchedule {
  std::vector<std::vector<MicroBatch>> per_rank;  // [dp_size][num_microbatches]
  int64_t num_microbatches = 0;                   // per rank, the same on every rank
  int64_t num_rollouts = 0;                       // = global_batch_size (slime's global_batch_sizes[step])
  int64_t num_samples = 0;                        // training samples in the step, over all ranks
  int64_t num_tokens = 0;                         // total length of those samples
};

// The schedule of one rollout. total_lengths[i] = prompt + response tokens of sample i; rollout_ids[i] = its
// rollout id (fan-out siblings share one, and stay in one step). Throws slime::Error naming the option on bad
// input: size mismatch, non-positive sizes or lengths, fewer rollouts than global_batch_size, dynamic batching
// without max_tokens_per_gpu, a static step not divisible into dp_size equal shares, a step with fewer samples
// than dp_size, a missing FLOPs model when balancing.
std::vector<StepSchedule> build_dp_schedule(const std::vector<int64_t>& total_lengths,
                                            const std::vector<int64_t>& rollout_ids, const ScheduleOptions& options);

// slime's per-rank view of a schedule: the global sample indices rank `dp_rank` owns, step after step and
// micro-batch after micro-batch (slime's partitions[dp_rank]).
std::vector<int64_t> rank_samples(const std::vector<StepSchedule>& schedule, int64_t dp_rank);

// ---- building blocks (slime/utils/seqlen_balancing.py) ----

// Karmarkar-Karp (largest differencing) split of items with the given costs into `parts` sets, each returned
// as ascending item indices, sets in decreasing order of total cost. equal_size: every set gets
// costs.size() / parts items (which must divide). Needs costs.size() >= parts; no set is empty.
std::vector<std::vector<int64_t>> karmarkar_karp(const std::vector<double>& costs, int64_t parts, bool equal_size);

// First-fit packing: each item goes to the first bin whose sum stays <= max_tokens_per_bin, else opens a bin.
// An item larger than the cap ends up alone.
std::vector<std::vector<int64_t>> first_fit_pack(const std::vector<int64_t>& lengths, int64_t max_tokens_per_bin);

// Grows `bins` to `target_count` by repeatedly splitting the multi-item bin with the most tokens (the last one
// among equals) into two halves balanced by tokens; the right half is appended. Stops early when every bin is
// a single item.
void expand_bins_by_splitting(std::vector<std::vector<int64_t>>& bins, int64_t target_count,
                              const std::vector<int64_t>& lengths);

}  // namespace slime::train
