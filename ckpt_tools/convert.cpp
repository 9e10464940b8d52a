#include "ckpt_tools/convert.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <sstream>

#include "ckpt/checkpoint.h"
#include "ckpt/h5.h"
#include "ckpt/safetensors.h"
#include "comm/mpi_utils.h"
#include "comm/parallel.h"
#include "core/error.h"
#include "core/io.h"
#include "core/log.h"
#include "model/config.h"
#include "model/decoder.h"
#include "model/hf_mapping.h"
#include "model/init.h"

namespace slime::convert {
namespace fs = std::filesystem;
namespace {

void copy_if_exists(const std::string& from_dir, const std::string& to_dir, const std::string& name) {
  const std::string src = path_join(from_dir, name);
  if (path_exists(src)) fs::copy_file(src, path_join(to_dir, name), fs::copy_options::overwrite_existing);
}

Tensor to_dtype(const Tensor& f32, DType dtype) {
  if (dtype == DType::F32) return f32;
  Tensor out = Tensor::empty(f32.shape(), DType::BF16);
  const float* src = f32.data<float>();
  uint16_t* dst = static_cast<uint16_t*>(out.raw());
  for (int64_t i = 0; i < f32.numel(); ++i) dst[i] = f32_to_bf16(src[i]);
  return out;
}

// A checkpoint root (with the tracker) or an iteration directory -> (root, iteration).
std::pair<std::string, int64_t> resolve_checkpoint(const std::string& load, std::optional<int64_t> iteration) {
  std::string path = load;
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  const std::string name = fs::path(path).filename().string();
  if (name.rfind("iter_", 0) == 0 && path_exists(path_join(path, "model.h5")) && !iteration) {
    return {fs::path(path).parent_path().string(), std::stoll(name.substr(5))};
  }
  std::optional<int64_t> found = ckpt::find_checkpoint(path, iteration);
  SLIME_CHECK(found, path, ": not a checkpoint (no latest_checkpointed_iteration.txt; pass an iter_XXXXXXX "
                           "directory or --iteration)");
  return {path, *found};
}

}  // namespace

void hf_to_mcore(const HfToMcoreOptions& options, MPI_Comm comm) {
  const int ranks = comm::size(comm);
  comm::ParallelGroups groups = comm::ParallelGroups::create(comm, ranks);  // TP = all ranks
  model::ModelConfig config = model::ModelConfig::from_hf_dir(options.hf_dir);
  config.pad_vocab(options.make_vocab_size_divisible_by, ranks);
  model::Decoder decoder(config, groups.tp);
  model::load_hf_weights(options.hf_dir, config, decoder.params());
  ckpt::CheckpointState state;
  state.iteration = options.iteration;
  state.model_config = config.to_hf_json();
  state.megatron = {{"padded_vocab_size", config.padded_vocab_size},
                    {"make_vocab_size_divisible_by", options.make_vocab_size_divisible_by},
                    {"tensor_model_parallel_size", ranks},
                    {"source", "slime-convert hf-to-mcore " + options.hf_dir}};
  ckpt::SaveOptions save;
  save.save_optimizer = false;
  ckpt::save_checkpoint(options.save, state, decoder.params(), {}, groups, save);
  groups.release();
}

void mcore_to_hf(const McoreToHfOptions& options, MPI_Comm comm) {
  const int rank = comm::rank(comm), ranks = comm::size(comm);
  const auto [root, iteration] = resolve_checkpoint(options.load, options.iteration);
  const std::string model_file = path_join(ckpt::iteration_dir(root, iteration), "model.h5");
  const ckpt::CheckpointState state = ckpt::read_checkpoint_state(root, iteration);
  model::ModelConfig config = model::ModelConfig::from_hf_json(state.model_config, model_file + " model_config");
  const std::string dtype_name = options.dtype.empty() ? config.torch_dtype : options.dtype;
  SLIME_CHECK(dtype_name == "float32" || dtype_name == "bfloat16", "--dtype: expected float32 or bfloat16, got '",
              dtype_name, "'");
  const DType dtype = dtype_name == "bfloat16" ? DType::BF16 : DType::F32;
  if (rank == 0) make_directories(options.out);
  MPI_Barrier(comm);

  // Split the Megatron parameters over the ranks, balancing bytes (largest first onto the lightest rank).
  const std::vector<model::ParamMapping> mappings = model::hf_param_mappings(config);
  std::vector<int> owner(mappings.size());
  {
    std::vector<size_t> order(mappings.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
      return shape_numel(mappings[a].megatron_shape) > shape_numel(mappings[b].megatron_shape);
    });
    std::vector<int64_t> load(ranks, 0);
    for (size_t i : order) {
      owner[i] = static_cast<int>(std::min_element(load.begin(), load.end()) - load.begin());
      load[owner[i]] += shape_numel(mappings[i].megatron_shape);
    }
  }
  const auto hf_shapes = model::hf_tensor_shapes(config);
  std::map<std::string, Shape> hf_shape(hf_shapes.begin(), hf_shapes.end());
  const std::string file_name =
      ranks == 1 ? std::string(ckpt::kSafetensorsSingleFile) : ckpt::safetensors_shard_name(rank, ranks);
  std::vector<std::pair<std::string, Tensor>> mine;
  std::map<std::string, std::string> weight_map;
  for (size_t i = 0; i < mappings.size(); ++i) {
    const model::ParamMapping& m = mappings[i];
    const std::string owner_file =
        ranks == 1 ? std::string(ckpt::kSafetensorsSingleFile) : ckpt::safetensors_shard_name(owner[i], ranks);
    for (const model::RowCopy& c : m.copies) weight_map[c.hf_name] = owner_file;
    if (owner[i] != rank) continue;
    Tensor global = ckpt::read_global_tensor(model_file, "", m.megatron_name);
    SLIME_CHECK(global.dim(0) >= m.megatron_shape[0], model_file, ": dataset '", m.megatron_name, "' has ",
                global.dim(0), " rows, the stored config implies ", m.megatron_shape[0]);
    const int64_t width = global.numel() / global.dim(0);
    std::map<std::string, Tensor> parts;
    for (const model::RowCopy& c : m.copies) {
      auto it = parts.find(c.hf_name);
      if (it == parts.end()) it = parts.emplace(c.hf_name, Tensor::zeros(hf_shape.at(c.hf_name), DType::F32)).first;
      std::memcpy(it->second.data<float>() + c.hf_row * width, global.data<float>() + c.megatron_row * width,
                  c.rows * width * sizeof(float));
    }
    for (auto& [name, t] : parts) mine.emplace_back(name, to_dtype(t, dtype));
  }
  ckpt::write_safetensors(path_join(options.out, file_name), mine, {{"format", "pt"}});
  MPI_Barrier(comm);
  if (rank == 0) {
    if (ranks > 1) {
      int64_t total = 0;
      for (const auto& [name, shape] : hf_shapes) total += shape_numel(shape) * static_cast<int64_t>(dtype_size(dtype));
      json index = {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
      write_file_atomic(path_join(options.out, ckpt::kSafetensorsIndexFile), index.dump(2) + "\n");
    }
    json hf = state.model_config;
    model::set_hf_dtype(hf, dtype_name);
    write_file_atomic(path_join(options.out, "config.json"), hf.dump(2) + "\n");
    if (!options.origin_hf_dir.empty()) {
      for (const char* name : {"tokenizer.json", "tokenizer_config.json", "generation_config.json",
                               "special_tokens_map.json", "chat_template.jinja", "vocab.json", "merges.txt"})
        copy_if_exists(options.origin_hf_dir, options.out, name);
    }
  }
  MPI_Barrier(comm);
}

std::string inspect(const std::string& path, bool* ok) {
  *ok = true;
  std::vector<std::string> files;
  if (fs::is_regular_file(path)) {
    files.push_back(path);
  } else {
    const auto [root, iteration] = resolve_checkpoint(path, std::nullopt);
    const std::string dir = ckpt::iteration_dir(root, iteration);
    for (const char* name : {"model.h5", "optimizer.h5"})
      if (path_exists(path_join(dir, name))) files.push_back(path_join(dir, name));
  }
  std::ostringstream out;
  for (const std::string& file : files) {
    out << "== " << file << "\n";
    h5::Handle handle = h5::open_file(file, MPI_COMM_NULL);
    for (const std::string& attr : h5::list_attributes(handle, file)) {
      std::string value;
      try {
        value = h5::read_string_attribute(handle, attr, file);
      } catch (const Error&) {
        value = std::to_string(h5::read_int_attribute(handle, attr, file));
      }
      if (value.size() > 400) value = value.substr(0, 400) + " ...";
      out << "  @" << attr << " = " << value << "\n";
    }
    std::vector<std::string> groups = {""};
    if (h5::exists(handle, "exp_avg")) groups = {"exp_avg", "exp_avg_sq"};
    int64_t total = 0;
    for (const std::string& group : groups) {
      for (const std::string& name : ckpt::list_tensors(file, group)) {
        const std::string full = group.empty() ? name : group + "/" + name;
        std::string status = "checksum ok";
        Tensor t;
        try {
          t = ckpt::read_global_tensor(file, group, name);
          total += t.numel();
        } catch (const Error& e) {
          status = std::string("ERROR: ") + e.what();
          *ok = false;
        }
        char line[512];
        std::snprintf(line, sizeof(line), "  %-60s F32 %-16s %s\n", full.c_str(),
                      t.defined() ? shape_str(t.shape()).c_str() : "?", status.c_str());
        out << line;
      }
    }
    out << "  " << total << " values\n";
  }
  return out.str();
}

void init_random(const std::string& config_path, const std::string& out_dir, uint64_t seed, float stddev,
                 const std::string& tokenizer_dir, const std::string& dtype) {
  SLIME_CHECK(dtype == "float32" || dtype == "bfloat16", "--dtype: expected float32 or bfloat16, got '", dtype, "'");
  model::ModelConfig config = model::ModelConfig::from_hf_json(read_json_file(config_path), config_path);
  model::Decoder decoder(config);
  model::init_random(config, decoder.params(), seed, stddev);
  model::save_hf_checkpoint(out_dir, config, decoder.params(), dtype == "bfloat16" ? DType::BF16 : DType::F32);
  if (!tokenizer_dir.empty()) {
    for (const char* name : {"tokenizer.json", "tokenizer_config.json"}) {
      const std::string src = path_join(tokenizer_dir, name);
      SLIME_CHECK(path_exists(src), src, ": not found (--tokenizer-dir must hold tokenizer.json and "
                                         "tokenizer_config.json)");
      fs::copy_file(src, path_join(out_dir, name), fs::copy_options::overwrite_existing);
    }
  }
}

}  // namespace slime::convert
