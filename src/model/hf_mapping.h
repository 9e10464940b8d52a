// Hugging Face <-> Megatron-core parameter layouts, and loading/exporting HF safetensors checkpoints.
//
// Every Megatron parameter is assembled from row blocks of HF tensors (their trailing dimensions agree):
//   linear_qkv.weight/bias  rows grouped per KV head g: [q heads of g | k_g | v_g]   <- q_proj, k_proj, v_proj
//   linear_fc1.weight       [gate; up]                                              <- gate_proj, up_proj
//   word_embeddings/output  rows [0, vocab) from HF, padding rows [vocab, padded) zero
// One table of row copies drives both directions, so import and export cannot disagree.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"
#include "model/config.h"
#include "model/params.h"

namespace slime::model {

struct RowCopy {
  std::string hf_name;
  int64_t hf_row;        // first row in the HF tensor
  int64_t megatron_row;  // first row in the Megatron tensor
  int64_t rows;
};

struct ParamMapping {
  std::string megatron_name;
  Shape megatron_shape;
  std::vector<RowCopy> copies;  // rows not covered by any copy are zero (vocab padding)
};

// HF tensor names and shapes a model with this config consists of.
std::vector<std::pair<std::string, Shape>> hf_tensor_shapes(const ModelConfig& config);
// The row-copy table for every Megatron parameter, in registry order.
std::vector<ParamMapping> hf_param_mappings(const ModelConfig& config);

// Loads <dir>/config.json + safetensors (single or sharded) into `params` (fp32; F32/BF16/F16/F64 accepted).
// Every expected tensor must be present with its exact shape; unexpected tensors are an error, except the
// tied lm_head.weight and rotary inv_freq buffers, which HF sometimes stores. Errors name the file and tensor.
// A critic's registry (with a value head, output_layer.bias) takes the body only: lm_head is skipped and the value
// head is left to the caller.
void load_hf_weights(const std::string& dir, const ModelConfig& config, ParamRegistry& params);

// HF-named tensors (unfused, unpadded, fp32) of the parameter values, or of their gradients.
std::vector<std::pair<std::string, Tensor>> export_hf_tensors(const ModelConfig& config, const ParamRegistry& params,
                                                              bool gradients = false);

// Writes a HF model directory: config.json + safetensors (sharded above max_shard_bytes) in `dtype` (F32 or BF16).
void save_hf_checkpoint(const std::string& dir, const ModelConfig& config, const ParamRegistry& params,
                        DType dtype = DType::F32, uint64_t max_shard_bytes = 5ull << 30);

}  // namespace slime::model
