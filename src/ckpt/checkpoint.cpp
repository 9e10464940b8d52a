#include "ckpt/checkpoint.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>

#include "ckpt/h5.h"
#include "comm/mpi_utils.h"
#include "core/error.h"
#include "core/log.h"

namespace slime::ckpt {
namespace fs = std::filesystem;
namespace {

constexpr const char* kModelFile = "model.h5";
constexpr const char* kOptimizerFile = "optimizer.h5";
constexpr const char* kPartialSuffix = ".partial";
const char* const kMoments[] = {"exp_avg", "exp_avg_sq"};

// Elements [global, global + count) of the full tensor sit at [local, local + count) of a local buffer.
using Pieces = std::vector<model::ShardRun>;

Pieces model_pieces(const model::Param& p) { return model::shard_runs(p); }

// The owned optimizer range [begin, end) of the shard, as pieces relative to the moment buffers.
Pieces optimizer_pieces(const OptimizerShard& s) {
  Pieces pieces;
  for (const model::ShardRun& r : model::shard_runs(*s.param)) {
    const int64_t a = std::max(r.local, s.begin), b = std::min(r.local + r.count, s.end);
    if (a < b) pieces.push_back({r.global + (a - r.local), a - s.begin, b - a});
  }
  return pieces;
}

uint64_t checksum_of(const float* local, const Pieces& pieces) {
  uint64_t sum = 0;
  for (const model::ShardRun& r : pieces)
    for (int64_t i = 0; i < r.count; ++i) sum += element_checksum(r.global + i, local[r.local + i]);
  return sum;
}

std::vector<std::pair<int64_t, int64_t>> file_runs(const Pieces& pieces) {
  std::vector<std::pair<int64_t, int64_t>> runs;
  for (const model::ShardRun& r : pieces) runs.emplace_back(r.global, r.count);
  return runs;
}

int64_t piece_count(const Pieces& pieces) {
  int64_t n = 0;
  for (const model::ShardRun& r : pieces) n += r.count;
  return n;
}

// Collective: creates the dataset, writes this rank's pieces (none when !writer), stores the checksum.
void write_tensor(hid_t parent, const std::string& name, const Shape& shape, const float* local,
                  const Pieces& all_pieces, bool writer, const comm::Group& pool, const std::string& where) {
  const Pieces pieces = writer ? all_pieces : Pieces{};
  const std::string what = where + " dataset '" + name + "'";
  h5::Handle dataset = h5::create_dataset_f32(parent, name, shape, where);
  h5::Handle space = h5::select_runs(dataset, shape, file_runs(pieces), what);
  std::vector<float> packed(piece_count(pieces));
  int64_t k = 0;
  for (const model::ShardRun& r : pieces) {
    std::memcpy(packed.data() + k, local + r.local, r.count * sizeof(float));
    k += r.count;
  }
  h5::write_selection(dataset, space, packed.data(), k, !pool.single(), what);
  const uint64_t checksum = pool.sum_u64(checksum_of(local, pieces));
  h5::write_u64_attribute(dataset, "checksum", checksum, what);
}

// Collective: reads this rank's pieces into `local` after checking the shape; verifies the checksum over the
// pieces of the ranks where `canonical` is true (they must cover every element exactly once).
void read_tensor(hid_t parent, const std::string& name, const Shape& shape, float* local, const Pieces& pieces,
                 bool canonical, const comm::Group& pool, const std::string& where) {
  const std::string what = where + " dataset '" + name + "'";
  h5::Handle dataset = h5::open_dataset(parent, name, where);
  const std::vector<int64_t> stored = h5::dataset_shape(dataset, what);
  SLIME_CHECK(stored == shape, what, " has shape ", shape_str(stored), ", the model expects ", shape_str(shape));
  h5::Handle space = h5::select_runs(dataset, shape, file_runs(pieces), what);
  std::vector<float> packed(piece_count(pieces));
  h5::read_selection(dataset, space, packed.data(), static_cast<int64_t>(packed.size()), !pool.single(), what);
  int64_t k = 0;
  for (const model::ShardRun& r : pieces) {
    std::memcpy(local + r.local, packed.data() + k, r.count * sizeof(float));
    k += r.count;
  }
  const uint64_t expected = h5::read_u64_attribute(dataset, "checksum", what);
  const uint64_t actual = pool.sum_u64(canonical ? checksum_of(local, pieces) : 0);
  SLIME_CHECK(actual == expected, what, ": checksum mismatch (the file is corrupt)");
}

// Every rank's string, in rank order, on every rank.
std::vector<std::string> allgather_strings(const std::string& mine, const comm::Group& group) {
  if (group.single()) return {mine};
  int length = static_cast<int>(mine.size());
  std::vector<int> lengths(group.size), displs(group.size);
  mpiCheck(MPI_Allgather(&length, 1, MPI_INT, lengths.data(), 1, MPI_INT, group.comm));
  int total = 0;
  for (int r = 0; r < group.size; ++r) {
    displs[r] = total;
    total += lengths[r];
  }
  std::string all(total, '\0');
  mpiCheck(MPI_Allgatherv(mine.data(), length, MPI_CHAR, all.data(), lengths.data(), displs.data(), MPI_CHAR,
                          group.comm));
  std::vector<std::string> out;
  for (int r = 0; r < group.size; ++r) out.push_back(all.substr(displs[r], lengths[r]));
  return out;
}

std::vector<int64_t> list_iterations(const std::string& root) {
  std::vector<int64_t> iterations;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(root, ec)) {
    const std::string name = entry.path().filename().string();
    if (!entry.is_directory() || name.rfind("iter_", 0) != 0 || name.size() != 12) continue;
    if (name.find_first_not_of("0123456789", 5) != std::string::npos) continue;
    iterations.push_back(std::stoll(name.substr(5)));
  }
  std::sort(iterations.begin(), iterations.end());
  return iterations;
}

std::string describe_available(const std::string& root) {
  std::vector<int64_t> its = list_iterations(root);
  if (its.empty()) return "no complete iterations there";
  std::string s = "complete iterations there:";
  for (int64_t it : its) s += " " + std::to_string(it);
  return s;
}

// Rank 0: make iteration_dir(root, iteration) the latest, drop what keep_last_n no longer keeps.
void commit(const std::string& root, int64_t iteration, const std::optional<int64_t>& keep_last_n) {
  const std::string final_dir = iteration_dir(root, iteration), partial = final_dir + kPartialSuffix;
  const std::string replaced = final_dir + ".replaced";
  if (fs::exists(final_dir)) {
    fs::remove_all(replaced);
    fs::rename(final_dir, replaced);
  }
  fs::rename(partial, final_dir);
  fs::remove_all(replaced);
  write_file_atomic(tracker_path(root), std::to_string(iteration) + "\n");
  if (keep_last_n && *keep_last_n > 0) {
    std::vector<int64_t> its = list_iterations(root);
    for (size_t i = 0; i + static_cast<size_t>(*keep_last_n) < its.size(); ++i) {
      if (its[i] == iteration) continue;
      fs::remove_all(iteration_dir(root, its[i]));
      SLIME_INFO("checkpoint: removed ", iteration_dir(root, its[i]), " (--keep-last-n ", *keep_last_n, ")");
    }
  }
}

}  // namespace

uint64_t element_checksum(int64_t global_index, float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, 4);
  uint64_t z = static_cast<uint64_t>(global_index) * 0x9E3779B97F4A7C15ull + bits;  // splitmix64 finaliser
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

std::string iteration_dir(const std::string& root, int64_t iteration) {
  char name[32];
  std::snprintf(name, sizeof(name), "iter_%07lld", static_cast<long long>(iteration));
  return path_join(root, name);
}

std::string tracker_path(const std::string& root) { return path_join(root, "latest_checkpointed_iteration.txt"); }

void check_same_model(const json& stored_config, const model::ModelConfig& m, const std::string& where) {
  const model::ModelConfig s = model::ModelConfig::from_hf_json(stored_config, where + " (stored model_config)");
  auto same = [&](const char* field, auto a, auto b) {
    SLIME_CHECK(a == b, where, ": the checkpoint's model has ", field, " = ", a, ", this model has ", b);
  };
  same("architecture", s.architecture, m.architecture);
  same("vocab_size", s.vocab_size, m.vocab_size);
  same("hidden_size", s.hidden_size, m.hidden_size);
  same("intermediate_size", s.intermediate_size, m.intermediate_size);
  same("num_hidden_layers", s.num_layers, m.num_layers);
  same("num_attention_heads", s.num_heads, m.num_heads);
  same("num_key_value_heads", s.num_kv_heads, m.num_kv_heads);
  same("head_dim", s.head_dim, m.head_dim);
  same("tie_word_embeddings", s.tie_word_embeddings, m.tie_word_embeddings);
}

void save_checkpoint(const std::string& root, const CheckpointState& state, const model::ParamRegistry& params,
                     const std::vector<OptimizerShard>& optimizer, const comm::ParallelGroups& groups,
                     const SaveOptions& options) {
  const comm::Group& pool = groups.pool;
  const std::string final_dir = iteration_dir(root, state.iteration), partial = final_dir + kPartialSuffix;
  if (pool.rank == 0) {
    make_directories(root);
    fs::remove_all(partial);  // leftovers of an attempt that crashed
    make_directories(partial);
  }
  pool.barrier();

  // The RNG states of every rank, gathered so that every rank writes the same attribute.
  json rng = json::array();
  for (const std::string& s : allgather_strings(state.rng.dump(), pool)) rng.push_back(json::parse(s));
  {
    const std::string path = path_join(partial, kModelFile);
    h5::Handle file = h5::create_file(path, pool.comm);
    h5::write_int_attribute(file, "format_version", kCheckpointFormatVersion, path);
    h5::write_int_attribute(file, "iteration", state.iteration, path);
    h5::write_int_attribute(file, "rollout_id", state.rollout_id, path);
    h5::write_int_attribute(file, "consumed_samples", state.consumed_samples, path);
    h5::write_string_attribute(file, "model_config", state.model_config.dump(2), path);
    h5::write_string_attribute(file, "megatron", state.megatron.dump(2), path);
    h5::write_string_attribute(file, "args", state.args.dump(2), path);
    h5::write_string_attribute(file, "trainer", state.trainer.dump(2), path);
    h5::write_string_attribute(file, "rng", rng.dump(), path);
    for (const model::Param& p : params.all()) {
      const bool writer = groups.dp.rank == 0 && (!p.replicated() || groups.tp.rank == 0);
      write_tensor(file, p.name, p.global_shape, p.value.data<float>(), model_pieces(p), writer, pool, path);
    }
  }
  if (options.save_optimizer) {
    const std::string path = path_join(partial, kOptimizerFile);
    std::map<const model::Param*, const OptimizerShard*> shard_of;
    for (const OptimizerShard& s : optimizer) shard_of[s.param] = &s;
    h5::Handle file = h5::create_file(path, pool.comm);
    h5::write_int_attribute(file, "format_version", kCheckpointFormatVersion, path);
    h5::write_int_attribute(file, "step", state.optimizer_step, path);
    for (int m = 0; m < 2; ++m) {
      h5::Handle group = h5::create_group(file, kMoments[m], path);
      const std::string where = path + ":/" + kMoments[m];
      for (const model::Param& p : params.all()) {
        auto it = shard_of.find(&p);
        const bool writer = it != shard_of.end() && (!p.replicated() || groups.tp.rank == 0);
        const Pieces pieces = it != shard_of.end() ? optimizer_pieces(*it->second) : Pieces{};
        const float* local = it == shard_of.end() ? nullptr : (m == 0 ? it->second->exp_avg : it->second->exp_avg_sq);
        write_tensor(group, p.name, p.global_shape, local, pieces, writer, pool, where);
      }
    }
  }
  pool.barrier();
  if (pool.rank == 0) {
    commit(root, state.iteration, options.keep_last_n);
    SLIME_INFO("checkpoint: saved iteration ", state.iteration, " to ", final_dir);
  }
  pool.barrier();
}

std::optional<int64_t> find_checkpoint(const std::string& root, std::optional<int64_t> step) {
  if (step) {
    SLIME_CHECK(path_exists(path_join(iteration_dir(root, *step), kModelFile)), iteration_dir(root, *step),
                ": no checkpoint of iteration ", *step, " (", describe_available(root), ")");
    return step;
  }
  const std::string tracker = tracker_path(root);
  if (!path_exists(tracker)) return std::nullopt;
  std::string text = read_text_file(tracker);
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ' || text.back() == '\r')) text.pop_back();
  SLIME_CHECK(!text.empty() && text.find_first_not_of("0123456789") == std::string::npos, tracker,
              ": expected an iteration number, found '", text, "'");
  const int64_t iteration = std::stoll(text);
  SLIME_CHECK(path_exists(path_join(iteration_dir(root, iteration), kModelFile)), tracker, " names iteration ",
              iteration, " but ", iteration_dir(root, iteration), "/", kModelFile, " does not exist (",
              describe_available(root), "; pick one with --ckpt-step)");
  return iteration;
}

namespace {

CheckpointState read_state(hid_t file, const std::string& path) {
  const int64_t version = h5::read_int_attribute(file, "format_version", path);
  SLIME_CHECK(version == kCheckpointFormatVersion, path, ": checkpoint format version ", version,
              ", this build reads version ", kCheckpointFormatVersion);
  CheckpointState s;
  s.iteration = h5::read_int_attribute(file, "iteration", path);
  s.rollout_id = h5::read_int_attribute(file, "rollout_id", path);
  s.consumed_samples = h5::read_int_attribute(file, "consumed_samples", path);
  auto parse = [&](const char* name) {
    const std::string text = h5::read_string_attribute(file, name, path);
    try {
      return json::parse(text);
    } catch (const json::parse_error& e) {
      SLIME_FAIL(path, ": attribute '", name, "' is not valid JSON: ", e.what());
    }
  };
  s.model_config = parse("model_config");
  s.megatron = parse("megatron");
  s.args = parse("args");
  s.trainer = parse("trainer");
  s.rng = parse("rng");
  return s;
}

}  // namespace

CheckpointState read_checkpoint_state(const std::string& root, int64_t iteration) {
  const std::string path = path_join(iteration_dir(root, iteration), kModelFile);
  h5::Handle file = h5::open_file(path, MPI_COMM_NULL);
  return read_state(file, path);
}

CheckpointState load_checkpoint(const std::string& root, int64_t iteration, model::ParamRegistry& params,
                                const std::vector<OptimizerShard>& optimizer, const comm::ParallelGroups& groups,
                                const LoadOptions& options) {
  const comm::Group& pool = groups.pool;
  const std::string dir = iteration_dir(root, iteration);
  const std::string path = path_join(dir, kModelFile);
  SLIME_CHECK(path_exists(path), path, ": not found (", describe_available(root), ")");
  CheckpointState state;
  {
    h5::Handle file = h5::open_file(path, pool.comm);
    state = read_state(file, path);
    if (options.expect_config) check_same_model(state.model_config, *options.expect_config, path);
    // The datasets must be exactly the model's parameters.
    const std::vector<std::string> stored = h5::list_datasets(file, path);
    const std::set<std::string> stored_set(stored.begin(), stored.end());
    const std::set<std::string> skip(options.skip_params.begin(), options.skip_params.end());
    for (const model::Param& p : params.all())
      SLIME_CHECK(skip.count(p.name) || stored_set.count(p.name), path, ": missing dataset '", p.name, "'");
    for (const std::string& name : stored)
      SLIME_CHECK(!skip.empty() || params.find(name), path, ": dataset '", name, "' is not a parameter of this model");
    for (model::Param& p : params.all()) {
      if (skip.count(p.name)) continue;
      const bool canonical = groups.dp.rank == 0 && (!p.replicated() || groups.tp.rank == 0);
      read_tensor(file, p.name, p.global_shape, p.value.data<float>(), model_pieces(p), canonical, pool, path);
    }
  }
  if (options.load_optimizer) {
    const std::string opt_path = path_join(dir, kOptimizerFile);
    SLIME_CHECK(path_exists(opt_path), opt_path, ": not found (saved with --no-save-optim? load with --no-load-optim "
                                                 "or --finetune to start the optimizer afresh)");
    std::map<const model::Param*, const OptimizerShard*> shard_of;
    for (const OptimizerShard& s : optimizer) shard_of[s.param] = &s;
    h5::Handle file = h5::open_file(opt_path, pool.comm);
    state.optimizer_step = h5::read_int_attribute(file, "step", opt_path);
    for (int m = 0; m < 2; ++m) {
      h5::Handle group = h5::open_group(file, kMoments[m], opt_path);
      const std::string where = opt_path + ":/" + kMoments[m];
      for (model::Param& p : params.all()) {
        SLIME_CHECK(options.skip_params.empty(), "load_checkpoint: skip_params goes with load_optimizer = false");
        auto it = shard_of.find(&p);
        const Pieces pieces = it != shard_of.end() ? optimizer_pieces(*it->second) : Pieces{};
        float* local = it == shard_of.end() ? nullptr : (m == 0 ? it->second->exp_avg : it->second->exp_avg_sq);
        const bool canonical = it != shard_of.end() && (!p.replicated() || groups.tp.rank == 0);
        read_tensor(group, p.name, p.global_shape, local, pieces, canonical, pool, where);
      }
    }
  }
  return state;
}

Tensor read_global_tensor(const std::string& path, const std::string& group, const std::string& name) {
  h5::Handle file = h5::open_file(path, MPI_COMM_NULL);
  h5::Handle parent = group.empty() ? h5::Handle() : h5::open_group(file, group, path);
  const hid_t where_id = group.empty() ? file.id() : parent.id();
  const std::string where = group.empty() ? path : path + ":/" + group;
  h5::Handle dataset = h5::open_dataset(where_id, name, where);
  const std::vector<int64_t> shape = h5::dataset_shape(dataset, where + " dataset '" + name + "'");
  Tensor t = Tensor::empty(shape, DType::F32);
  read_tensor(where_id, name, shape, t.data<float>(), {{0, 0, t.numel()}}, true, comm::Group{}, where);
  return t;
}

std::vector<std::string> list_tensors(const std::string& path, const std::string& group) {
  h5::Handle file = h5::open_file(path, MPI_COMM_NULL);
  if (group.empty()) return h5::list_datasets(file, path);
  h5::Handle parent = h5::open_group(file, group, path);
  return h5::list_datasets(parent, path + ":/" + group);
}

}  // namespace slime::ckpt
