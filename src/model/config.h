// Model configuration of the decoder families we support, read from a Hugging Face config.json.
//
// Qwen2/Qwen2.5 (QKV bias), Qwen3 (QK-norm, explicit head_dim) and Llama 3 (rope_scaling "llama3") are one
// architecture with switches: pre-norm RMSNorm blocks, RoPE, grouped-query attention, SwiGLU MLP, optional tied
// embeddings. Both config.json styles are read: transformers < 5 (top-level rope_theta + rope_scaling) and >= 5
// (rope_parameters). Anything outside what we implement is an error naming the file and the field.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/io.h"

namespace slime::model {

enum class Family { Qwen2, Qwen3, Llama };
const char* family_name(Family family);

struct RopeConfig {
  double theta = 10000.0;
  std::string type = "default";  // "default" or "llama3"
  // llama3 scaling (transformers' _compute_llama3_parameters)
  double factor = 1.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  int64_t original_max_position_embeddings = 8192;
};

struct ModelConfig {
  Family family = Family::Qwen2;
  std::string architecture;  // e.g. "Qwen2ForCausalLM"
  int64_t vocab_size = 0;    // true vocabulary (rows of the HF embedding)
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_layers = 0;
  int64_t num_heads = 0;
  int64_t num_kv_heads = 0;  // = Megatron num_query_groups
  int64_t head_dim = 0;      // = Megatron kv_channels
  double rms_norm_eps = 1e-6;
  RopeConfig rope;
  bool tie_word_embeddings = false;
  bool qkv_bias = false;     // Qwen2: q/k/v projections carry a bias
  bool qk_norm = false;      // Qwen3: RMSNorm over head_dim on q and k before RoPE
  int64_t max_position_embeddings = 4096;
  std::optional<int64_t> bos_token_id;
  std::vector<int64_t> eos_token_ids;
  std::string torch_dtype = "float32";
  // Megatron: vocabulary padded to a multiple of make_vocab_size_divisible_by * TP (set by pad_vocab).
  int64_t padded_vocab_size = 0;
  // The config.json this came from (kept so exports write it back unchanged).
  json hf_json;

  int64_t qkv_rows() const { return (num_heads + 2 * num_kv_heads) * head_dim; }
  int64_t heads_per_group() const { return num_heads / num_kv_heads; }
  // Parameter count of the model (true vocab, tied embedding counted once).
  int64_t num_parameters() const;

  static ModelConfig from_hf_json(const json& config, const std::string& where);
  static ModelConfig from_hf_dir(const std::string& dir);  // <dir>/config.json
  // A config.json for this config (hf_json if set, else built from the fields).
  json to_hf_json() const;
  // Sets padded_vocab_size = vocab rounded up to a multiple of divisible_by * tp (Megatron's rule).
  void pad_vocab(int64_t divisible_by, int64_t tensor_parallel_size = 1);
};

// Records the weights' dtype ("float32", "bfloat16") in a config.json the way the file already does it:
// transformers >= 5 writes "dtype", older versions "torch_dtype" (used when the file has neither).
void set_hf_dtype(json& config, const std::string& dtype);

// RoPE inverse frequencies [head_dim / 2] exactly as transformers computes them (fp32), with llama3 scaling.
std::vector<float> rope_inv_freq(const ModelConfig& config);

}  // namespace slime::model
