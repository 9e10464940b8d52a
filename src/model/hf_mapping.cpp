#include "model/hf_mapping.h"

#include <cstring>
#include <map>
#include <set>

#include "ckpt/safetensors.h"
#include "core/error.h"
#include "core/io.h"
#include "core/log.h"

namespace slime::model {
namespace {

std::string hf_layer(int64_t layer, const std::string& suffix) { return cat("model.layers.", layer, ".", suffix); }
std::string mg_layer(int64_t layer, const std::string& suffix) {
  return cat("decoder.layers.", layer, ".", suffix);
}

bool ignorable_hf_tensor(const std::string& name, const ModelConfig& config) {
  if (name.size() >= 9 && name.compare(name.size() - 9, 9, ".inv_freq") == 0) return true;
  return config.tie_word_embeddings && name == "lm_head.weight";
}

// Megatron's per-KV-group row order for the fused QKV projection (weight rows or bias entries).
std::vector<RowCopy> qkv_copies(const ModelConfig& c, int64_t layer, const std::string& kind) {
  const int64_t d = c.head_dim, per_group = c.heads_per_group();
  std::vector<RowCopy> copies;
  for (int64_t g = 0; g < c.num_kv_heads; ++g) {
    const int64_t base = g * (per_group + 2) * d;
    copies.push_back({hf_layer(layer, "self_attn.q_proj." + kind), g * per_group * d, base, per_group * d});
    copies.push_back({hf_layer(layer, "self_attn.k_proj." + kind), g * d, base + per_group * d, d});
    copies.push_back({hf_layer(layer, "self_attn.v_proj." + kind), g * d, base + (per_group + 1) * d, d});
  }
  return copies;
}

ParamMapping whole(const std::string& megatron, const Shape& shape, const std::string& hf) {
  return {megatron, shape, {{hf, 0, 0, shape[0]}}};
}

}  // namespace

std::vector<std::pair<std::string, Shape>> hf_tensor_shapes(const ModelConfig& c) {
  const int64_t h = c.hidden_size, d = c.head_dim, F = c.intermediate_size;
  std::vector<std::pair<std::string, Shape>> shapes;
  shapes.push_back({"model.embed_tokens.weight", {c.vocab_size, h}});
  for (int64_t l = 0; l < c.num_layers; ++l) {
    shapes.push_back({hf_layer(l, "input_layernorm.weight"), {h}});
    shapes.push_back({hf_layer(l, "self_attn.q_proj.weight"), {c.num_heads * d, h}});
    shapes.push_back({hf_layer(l, "self_attn.k_proj.weight"), {c.num_kv_heads * d, h}});
    shapes.push_back({hf_layer(l, "self_attn.v_proj.weight"), {c.num_kv_heads * d, h}});
    if (c.qkv_bias) {
      shapes.push_back({hf_layer(l, "self_attn.q_proj.bias"), {c.num_heads * d}});
      shapes.push_back({hf_layer(l, "self_attn.k_proj.bias"), {c.num_kv_heads * d}});
      shapes.push_back({hf_layer(l, "self_attn.v_proj.bias"), {c.num_kv_heads * d}});
    }
    if (c.qk_norm) {
      shapes.push_back({hf_layer(l, "self_attn.q_norm.weight"), {d}});
      shapes.push_back({hf_layer(l, "self_attn.k_norm.weight"), {d}});
    }
    shapes.push_back({hf_layer(l, "self_attn.o_proj.weight"), {h, c.num_heads * d}});
    shapes.push_back({hf_layer(l, "post_attention_layernorm.weight"), {h}});
    shapes.push_back({hf_layer(l, "mlp.gate_proj.weight"), {F, h}});
    shapes.push_back({hf_layer(l, "mlp.up_proj.weight"), {F, h}});
    shapes.push_back({hf_layer(l, "mlp.down_proj.weight"), {h, F}});
  }
  shapes.push_back({"model.norm.weight", {h}});
  if (!c.tie_word_embeddings) shapes.push_back({"lm_head.weight", {c.vocab_size, h}});
  return shapes;
}

std::vector<ParamMapping> hf_param_mappings(const ModelConfig& c) {
  const int64_t h = c.hidden_size, d = c.head_dim, F = c.intermediate_size;
  std::vector<ParamMapping> maps;
  maps.push_back({"embedding.word_embeddings.weight",
                  {c.padded_vocab_size, h},
                  {{"model.embed_tokens.weight", 0, 0, c.vocab_size}}});
  for (int64_t l = 0; l < c.num_layers; ++l) {
    maps.push_back(whole(mg_layer(l, "self_attention.linear_qkv.layer_norm_weight"), {h},
                         hf_layer(l, "input_layernorm.weight")));
    maps.push_back({mg_layer(l, "self_attention.linear_qkv.weight"), {c.qkv_rows(), h}, qkv_copies(c, l, "weight")});
    if (c.qkv_bias)
      maps.push_back({mg_layer(l, "self_attention.linear_qkv.bias"), {c.qkv_rows()}, qkv_copies(c, l, "bias")});
    if (c.qk_norm) {
      maps.push_back(whole(mg_layer(l, "self_attention.q_layernorm.weight"), {d}, hf_layer(l, "self_attn.q_norm.weight")));
      maps.push_back(whole(mg_layer(l, "self_attention.k_layernorm.weight"), {d}, hf_layer(l, "self_attn.k_norm.weight")));
    }
    maps.push_back(whole(mg_layer(l, "self_attention.linear_proj.weight"), {h, c.num_heads * d},
                         hf_layer(l, "self_attn.o_proj.weight")));
    maps.push_back(whole(mg_layer(l, "mlp.linear_fc1.layer_norm_weight"), {h},
                         hf_layer(l, "post_attention_layernorm.weight")));
    maps.push_back({mg_layer(l, "mlp.linear_fc1.weight"),
                    {2 * F, h},
                    {{hf_layer(l, "mlp.gate_proj.weight"), 0, 0, F}, {hf_layer(l, "mlp.up_proj.weight"), 0, F, F}}});
    maps.push_back(whole(mg_layer(l, "mlp.linear_fc2.weight"), {h, F}, hf_layer(l, "mlp.down_proj.weight")));
  }
  maps.push_back(whole("decoder.final_layernorm.weight", {h}, "model.norm.weight"));
  if (!c.tie_word_embeddings)
    maps.push_back({"output_layer.weight", {c.padded_vocab_size, h}, {{"lm_head.weight", 0, 0, c.vocab_size}}});
  return maps;
}

void load_hf_weights(const std::string& dir, const ModelConfig& config, ParamRegistry& params) {
  ckpt::SafetensorsCheckpoint checkpoint = ckpt::SafetensorsCheckpoint::open_dir(dir);
  const bool value_head = params.find("output_layer.bias") != nullptr;  // a critic: no LM head to load
  std::map<std::string, Shape> expected;
  for (const auto& [name, shape] : hf_tensor_shapes(config))
    if (!(value_head && name == "lm_head.weight")) expected[name] = shape;
  // Every tensor in the checkpoint must be one we expect, with the shape and a floating dtype.
  for (const std::string& name : checkpoint.names()) {
    if (ignorable_hf_tensor(name, config) || (value_head && name == "lm_head.weight")) continue;
    auto it = expected.find(name);
    SLIME_CHECK(it != expected.end(), checkpoint.file_of(name), ": unexpected tensor '", name, "' (not part of a ",
                config.architecture, " with this config.json)");
    const ckpt::TensorInfo& info = checkpoint.info(name);
    SLIME_CHECK(info.shape == it->second, checkpoint.file_of(name), ": tensor '", name, "' has shape ",
                shape_str(info.shape), ", config.json implies ", shape_str(it->second));
    SLIME_CHECK(info.dtype == DType::F32 || info.dtype == DType::BF16 || info.dtype == DType::F16 ||
                    info.dtype == DType::F64,
                checkpoint.file_of(name), ": tensor '", name, "' has dtype ", dtype_name(info.dtype),
                ", expected a floating type (F32, BF16, F16, F64)");
  }
  for (const auto& [name, shape] : expected)
    SLIME_CHECK(checkpoint.contains(name), dir, ": tensor '", name, "' is missing from the checkpoint");

  std::map<std::string, Tensor> cache;  // each HF tensor converted to fp32 once
  auto hf_tensor = [&](const std::string& name) -> const Tensor& {
    auto it = cache.find(name);
    if (it == cache.end()) it = cache.emplace(name, checkpoint.read(name).to_f32()).first;
    return it->second;
  };
  for (const ParamMapping& m : hf_param_mappings(config)) {
    if (value_head && m.megatron_name == "output_layer.weight") continue;
    Param& p = params.at(m.megatron_name);
    SLIME_ASSERT(p.global_shape == m.megatron_shape, m.megatron_name);
    // Assemble the full Megatron tensor, then keep this rank's tensor-parallel shard of it.
    Tensor global = Tensor::zeros(m.megatron_shape, DType::F32);
    const int64_t row_width = global.numel() / m.megatron_shape[0];
    for (const RowCopy& copy : m.copies) {
      const Tensor& src = hf_tensor(copy.hf_name);
      std::memcpy(global.data<float>() + copy.megatron_row * row_width,
                  src.data<float>() + copy.hf_row * row_width, copy.rows * row_width * sizeof(float));
    }
    extract_shard(p, global, p.value);
    // Tensors used by a single parameter are no longer needed.
    for (const RowCopy& copy : m.copies) cache.erase(copy.hf_name);
  }
  if (config.tie_word_embeddings && checkpoint.contains("lm_head.weight"))
    SLIME_DEBUG(dir, ": ignoring lm_head.weight (tie_word_embeddings = true)");
}

std::vector<std::pair<std::string, Tensor>> export_hf_tensors(const ModelConfig& config, const ParamRegistry& params,
                                                              bool gradients) {
  std::map<std::string, Tensor> out;
  for (const auto& [name, shape] : hf_tensor_shapes(config)) out[name] = Tensor::zeros(shape, DType::F32);
  for (const ParamMapping& m : hf_param_mappings(config)) {
    const Param& p = params.at(m.megatron_name);
    SLIME_CHECK(p.local_shape() == p.global_shape, "export_hf_tensors needs whole tensors (tensor-parallel size 1); ",
                p.name, " is a shard");
    const Tensor& src = gradients ? p.grad : p.value;
    const int64_t row_width = src.numel() / m.megatron_shape[0];
    for (const RowCopy& copy : m.copies) {
      Tensor& dst = out.at(copy.hf_name);
      std::memcpy(dst.data<float>() + copy.hf_row * row_width, src.data<float>() + copy.megatron_row * row_width,
                  copy.rows * row_width * sizeof(float));
    }
  }
  std::vector<std::pair<std::string, Tensor>> ordered;
  for (const auto& [name, shape] : hf_tensor_shapes(config)) ordered.emplace_back(name, out.at(name));
  return ordered;
}

void save_hf_checkpoint(const std::string& dir, const ModelConfig& config, const ParamRegistry& params, DType dtype,
                        uint64_t max_shard_bytes) {
  SLIME_CHECK(dtype == DType::F32 || dtype == DType::BF16, "save_hf_checkpoint: dtype must be F32 or BF16");
  make_directories(dir);
  auto tensors = export_hf_tensors(config, params, false);
  if (dtype == DType::BF16) {
    for (auto& [name, t] : tensors) {
      Tensor b = Tensor::empty(t.shape(), DType::BF16);
      const float* src = t.data<float>();
      uint16_t* dst = static_cast<uint16_t*>(b.raw());
      for (int64_t i = 0; i < t.numel(); ++i) dst[i] = f32_to_bf16(src[i]);
      t = b;
    }
  }
  json hf = config.to_hf_json();
  set_hf_dtype(hf, dtype == DType::BF16 ? "bfloat16" : "float32");
  ckpt::write_safetensors_dir(dir, tensors, max_shard_bytes);
  write_file_atomic(path_join(dir, "config.json"), hf.dump(2) + "\n");
}

}  // namespace slime::model
