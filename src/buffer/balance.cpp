// Karmarkar-Karp largest differencing for k-way partitions, as slime's seqlen_balancing.py (from verl) does it:
// start with one state per sample (or, for equal sizes, one per run of k consecutive samples in sorted order, one
// sample in each part), then repeatedly merge the two states of largest spread (max part sum - min part sum),
// pairing the heaviest part of one with the lightest of the other, until one state is left.
#include "buffer/balance.h"

#include <algorithm>
#include <queue>

#include "core/error.h"

namespace slime::buffer {

namespace {

struct Part {
  int64_t sum = 0;
  std::vector<int64_t> items;
};

// Parts sorted heaviest first (ties: more items first, then smaller first item) so merges are deterministic.
struct State {
  std::vector<Part> parts;
  int64_t spread() const { return parts.front().sum - parts.back().sum; }
};

bool heavier(const Part& a, const Part& b) {
  if (a.sum != b.sum) return a.sum > b.sum;
  if (a.items.size() != b.items.size()) return a.items.size() > b.items.size();
  const int64_t first_a = a.items.empty() ? INT64_MAX : a.items.front();
  const int64_t first_b = b.items.empty() ? INT64_MAX : b.items.front();
  return first_a < first_b;
}

void sort_parts(State& s) { std::sort(s.parts.begin(), s.parts.end(), heavier); }

// Heap entry: states live in a vector and the heap orders their handles (no copies of item lists).
struct Handle {
  int64_t spread;
  int64_t order;  // creation order
  size_t state;
};

struct LowerPriority {  // std::priority_queue pops the largest: largest spread, then the oldest state
  bool operator()(const Handle& a, const Handle& b) const {
    if (a.spread != b.spread) return a.spread < b.spread;
    return a.order > b.order;
  }
};

}  // namespace

std::vector<std::vector<int64_t>> balance_by_tokens(const std::vector<int64_t>& token_counts, int parts,
                                                    bool equal_size) {
  SLIME_CHECK(parts >= 1, "balance_by_tokens: parts must be >= 1, got ", parts);
  const int64_t n = static_cast<int64_t>(token_counts.size());
  for (int64_t i = 0; i < n; ++i)
    SLIME_CHECK(token_counts[i] >= 0, "balance_by_tokens: sample ", i, " has a negative token count ",
                token_counts[i]);
  if (equal_size)
    SLIME_CHECK(n % parts == 0, "balance_by_tokens: equal-size parts need the sample count to divide evenly: ", n,
                " samples over ", parts, " parts");

  std::vector<int64_t> sorted(n);
  for (int64_t i = 0; i < n; ++i) sorted[i] = i;
  std::stable_sort(sorted.begin(), sorted.end(),
                   [&](int64_t a, int64_t b) { return token_counts[a] < token_counts[b]; });

  std::vector<State> states;
  std::priority_queue<Handle, std::vector<Handle>, LowerPriority> heap;
  int64_t order = 0;
  const int64_t step = equal_size ? parts : 1;
  for (int64_t start = 0; start < n; start += step) {
    State s;
    s.parts.resize(parts);
    for (int64_t j = 0; j < step; ++j) {
      const int64_t index = sorted[start + j];
      s.parts[j].sum = token_counts[index];
      s.parts[j].items.push_back(index);
    }
    sort_parts(s);
    heap.push({s.spread(), order++, states.size()});
    states.push_back(std::move(s));
  }

  std::vector<std::vector<int64_t>> result(parts);
  if (heap.empty()) return result;
  while (heap.size() > 1) {
    State& a = states[heap.top().state];
    heap.pop();
    State& b = states[heap.top().state];
    heap.pop();
    for (int p = 0; p < parts; ++p) {  // heaviest of a with lightest of b
      Part& into = a.parts[p];
      Part& from = b.parts[parts - 1 - p];
      into.sum += from.sum;
      into.items.insert(into.items.end(), from.items.begin(), from.items.end());
    }
    b.parts.clear();
    sort_parts(a);
    heap.push({a.spread(), order++, static_cast<size_t>(&a - states.data())});
  }

  State& final_state = states[heap.top().state];
  for (int p = 0; p < parts; ++p) {
    result[p] = std::move(final_state.parts[p].items);
    std::sort(result[p].begin(), result[p].end());
  }
  std::stable_sort(result.begin(), result.end(), [](const std::vector<int64_t>& a, const std::vector<int64_t>& b) {
    if (a.empty() != b.empty()) return b.empty();
    return !a.empty() && a.front() < b.front();
  });
  if (equal_size)
    for (int p = 0; p < parts; ++p)
      SLIME_ASSERT(static_cast<int64_t>(result[p].size()) == n / parts, "part ", p, " holds ", result[p].size(),
                   " samples, expected ", n / parts);
  return result;
}

}  // namespace slime::buffer
