#include "model/config.h"

#include <cmath>

#include "core/error.h"

namespace slime::model {

const char* family_name(Family family) {
  switch (family) {
    case Family::Qwen2: return "qwen2";
    case Family::Qwen3: return "qwen3";
    case Family::Llama: return "llama";
  }
  return "?";
}

namespace {

Family detect_family(const json& config, const std::string& where, std::string* architecture) {
  std::string arch;
  if (json_has(config, "architectures")) {
    const json& list = config.at("architectures");
    SLIME_CHECK(list.is_array() && !list.empty() && list[0].is_string(), where,
                ": field 'architectures': expected a non-empty list of strings");
    arch = list[0].get<std::string>();
  }
  std::string model_type = json_string_or(config, "model_type", "", where);
  *architecture = arch;
  if (arch == "Qwen2ForCausalLM" || (arch.empty() && model_type == "qwen2")) return Family::Qwen2;
  if (arch == "Qwen3ForCausalLM" || (arch.empty() && model_type == "qwen3")) return Family::Qwen3;
  if (arch == "LlamaForCausalLM" || (arch.empty() && model_type == "llama")) return Family::Llama;
  SLIME_FAIL(where, ": unsupported architecture '", arch.empty() ? model_type : arch,
             "' (supported: Qwen2ForCausalLM, Qwen3ForCausalLM, LlamaForCausalLM)");
}

int64_t positive_int(const json& config, const std::string& key, const std::string& where) {
  int64_t v = json_int(config, key, where);
  SLIME_CHECK(v > 0, where, ": field '", key, "': expected a positive integer, got ", v);
  return v;
}

void read_rope(const json& config, const std::string& where, RopeConfig* rope) {
  // transformers >= 5: rope_parameters {rope_type, rope_theta, ...}; older: rope_theta + rope_scaling.
  json scaling;
  if (json_has(config, "rope_parameters")) {
    scaling = config.at("rope_parameters");
    SLIME_CHECK(scaling.is_object(), where, ": field 'rope_parameters': expected an object");
    rope->theta = json_number_or(scaling, "rope_theta", json_number_or(config, "rope_theta", 10000.0, where),
                                 where + " rope_parameters");
  } else {
    rope->theta = json_number_or(config, "rope_theta", 10000.0, where);
    if (json_has(config, "rope_scaling")) {
      scaling = config.at("rope_scaling");
      SLIME_CHECK(scaling.is_object(), where, ": field 'rope_scaling': expected an object or null");
    }
  }
  SLIME_CHECK(rope->theta > 0, where, ": rope_theta must be positive, got ", rope->theta);
  if (scaling.is_null()) return;
  const std::string sub = where + " rope scaling";
  std::string type = json_string_or(scaling, "rope_type", json_string_or(scaling, "type", "default", sub), sub);
  if (type == "default") return;
  SLIME_CHECK(type == "llama3", where, ": rope scaling type '", type,
              "' is not supported (supported: default, llama3)");
  rope->type = type;
  rope->factor = json_number(scaling, "factor", sub);
  rope->low_freq_factor = json_number(scaling, "low_freq_factor", sub);
  rope->high_freq_factor = json_number(scaling, "high_freq_factor", sub);
  rope->original_max_position_embeddings = json_int(scaling, "original_max_position_embeddings", sub);
  SLIME_CHECK(rope->factor > 0 && rope->high_freq_factor > rope->low_freq_factor, where,
              ": llama3 rope scaling needs factor > 0 and high_freq_factor > low_freq_factor");
  if (json_has(scaling, "partial_rotary_factor"))
    SLIME_CHECK(json_number(scaling, "partial_rotary_factor", sub) == 1.0, where,
                ": partial_rotary_factor != 1 is not supported");
}

}  // namespace

ModelConfig ModelConfig::from_hf_json(const json& config, const std::string& where) {
  SLIME_CHECK(config.is_object(), where, ": expected a JSON object");
  ModelConfig c;
  c.family = detect_family(config, where, &c.architecture);
  if (c.architecture.empty())
    c.architecture = c.family == Family::Qwen2 ? "Qwen2ForCausalLM"
                     : c.family == Family::Qwen3 ? "Qwen3ForCausalLM" : "LlamaForCausalLM";
  c.vocab_size = positive_int(config, "vocab_size", where);
  c.hidden_size = positive_int(config, "hidden_size", where);
  c.intermediate_size = positive_int(config, "intermediate_size", where);
  c.num_layers = positive_int(config, "num_hidden_layers", where);
  c.num_heads = positive_int(config, "num_attention_heads", where);
  c.num_kv_heads = json_has(config, "num_key_value_heads") ? positive_int(config, "num_key_value_heads", where)
                                                           : c.num_heads;
  SLIME_CHECK(c.num_heads % c.num_kv_heads == 0, where, ": num_attention_heads (", c.num_heads,
              ") must be a multiple of num_key_value_heads (", c.num_kv_heads, ")");
  if (json_has(config, "head_dim")) {
    c.head_dim = positive_int(config, "head_dim", where);
  } else {
    SLIME_CHECK(c.hidden_size % c.num_heads == 0, where, ": hidden_size (", c.hidden_size,
                ") is not divisible by num_attention_heads (", c.num_heads, ") and no head_dim is given");
    c.head_dim = c.hidden_size / c.num_heads;
  }
  SLIME_CHECK(c.head_dim % 2 == 0, where, ": head_dim must be even for RoPE, got ", c.head_dim);
  c.rms_norm_eps = json_number_or(config, "rms_norm_eps", 1e-6, where);
  c.tie_word_embeddings = json_bool_or(config, "tie_word_embeddings", false, where);
  c.max_position_embeddings = json_int_or(config, "max_position_embeddings", 4096, where);
  read_rope(config, where, &c.rope);

  std::string act = json_string_or(config, "hidden_act", "silu", where);
  SLIME_CHECK(act == "silu", where, ": hidden_act '", act, "' is not supported (SwiGLU needs silu)");
  SLIME_CHECK(!json_bool_or(config, "mlp_bias", false, where), where, ": mlp_bias = true is not supported");
  SLIME_CHECK(!json_bool_or(config, "use_sliding_window", false, where), where,
              ": use_sliding_window = true is not supported");
  if (json_has(config, "partial_rotary_factor"))
    SLIME_CHECK(json_number(config, "partial_rotary_factor", where) == 1.0, where,
                ": partial_rotary_factor != 1 is not supported");
  const bool attention_bias = json_bool_or(config, "attention_bias", false, where);
  switch (c.family) {
    case Family::Qwen2:
      c.qkv_bias = true;  // Qwen2 always biases q/k/v (and never o_proj)
      break;
    case Family::Qwen3:
      c.qk_norm = true;
      [[fallthrough]];
    case Family::Llama:
      SLIME_CHECK(!attention_bias, where, ": attention_bias = true (bias on q/k/v/o) is not supported for ",
                  family_name(c.family));
      break;
  }
  if (json_has(config, "bos_token_id")) c.bos_token_id = json_int(config, "bos_token_id", where);
  if (json_has(config, "eos_token_id")) {
    const json& eos = config.at("eos_token_id");
    if (eos.is_array()) {
      for (const json& e : eos) {
        SLIME_CHECK(e.is_number_integer(), where, ": field 'eos_token_id': expected integers");
        c.eos_token_ids.push_back(e.get<int64_t>());
      }
    } else {
      c.eos_token_ids.push_back(json_int(config, "eos_token_id", where));
    }
  }
  c.torch_dtype = json_string_or(config, "torch_dtype", json_string_or(config, "dtype", "float32", where), where);
  c.hf_json = config;
  c.pad_vocab(1);
  return c;
}

ModelConfig ModelConfig::from_hf_dir(const std::string& dir) {
  std::string path = path_join(dir, "config.json");
  SLIME_CHECK(path_exists(path), path, ": not found (a Hugging Face model directory needs config.json)");
  return from_hf_json(read_json_file(path), path);
}

json ModelConfig::to_hf_json() const {
  if (!hf_json.is_null()) return hf_json;
  json j;
  j["architectures"] = {architecture};
  j["model_type"] = family_name(family);
  j["vocab_size"] = vocab_size;
  j["hidden_size"] = hidden_size;
  j["intermediate_size"] = intermediate_size;
  j["num_hidden_layers"] = num_layers;
  j["num_attention_heads"] = num_heads;
  j["num_key_value_heads"] = num_kv_heads;
  j["head_dim"] = head_dim;
  j["rms_norm_eps"] = rms_norm_eps;
  j["hidden_act"] = "silu";
  j["max_position_embeddings"] = max_position_embeddings;
  j["tie_word_embeddings"] = tie_word_embeddings;
  j["rope_theta"] = rope.theta;
  if (rope.type == "llama3") {
    j["rope_scaling"] = {{"rope_type", "llama3"},
                         {"factor", rope.factor},
                         {"low_freq_factor", rope.low_freq_factor},
                         {"high_freq_factor", rope.high_freq_factor},
                         {"original_max_position_embeddings", rope.original_max_position_embeddings}};
  }
  if (family != Family::Qwen2) j["attention_bias"] = false;
  if (bos_token_id) j["bos_token_id"] = *bos_token_id;
  if (eos_token_ids.size() == 1) j["eos_token_id"] = eos_token_ids[0];
  if (eos_token_ids.size() > 1) j["eos_token_id"] = eos_token_ids;
  j["torch_dtype"] = torch_dtype;
  return j;
}

void ModelConfig::pad_vocab(int64_t divisible_by, int64_t tensor_parallel_size) {
  SLIME_CHECK(divisible_by >= 1 && tensor_parallel_size >= 1,
              "--make-vocab-size-divisible-by and the tensor-parallel size must be positive");
  int64_t multiple = divisible_by * tensor_parallel_size;
  padded_vocab_size = (vocab_size + multiple - 1) / multiple * multiple;
}

int64_t ModelConfig::num_parameters() const {
  int64_t per_layer = hidden_size * qkv_rows() + (qkv_bias ? qkv_rows() : 0) + num_heads * head_dim * hidden_size +
                      3 * hidden_size * intermediate_size + 2 * hidden_size + (qk_norm ? 2 * head_dim : 0);
  int64_t embeddings = vocab_size * hidden_size * (tie_word_embeddings ? 1 : 2);
  return embeddings + num_layers * per_layer + hidden_size;
}

void set_hf_dtype(json& config, const std::string& dtype) {
  bool set = false;
  for (const char* key : {"dtype", "torch_dtype"}) {
    if (config.contains(key)) {
      config[key] = dtype;
      set = true;
    }
  }
  if (!set) config["torch_dtype"] = dtype;
}

std::vector<float> rope_inv_freq(const ModelConfig& config) {
  const int64_t half = config.head_dim / 2;
  std::vector<float> inv_freq(half);
  const float base = static_cast<float>(config.rope.theta);
  for (int64_t i = 0; i < half; ++i) {
    // torch: 1.0 / (base ** (arange(0, dim, 2).float() / dim)), all in fp32
    float exponent = static_cast<float>(2 * i) / static_cast<float>(config.head_dim);
    inv_freq[i] = 1.0f / std::pow(base, exponent);
  }
  if (config.rope.type == "llama3") {
    const RopeConfig& r = config.rope;
    const float old_len = static_cast<float>(r.original_max_position_embeddings);
    const float low_wavelen = old_len / static_cast<float>(r.low_freq_factor);
    const float high_wavelen = old_len / static_cast<float>(r.high_freq_factor);
    const float factor = static_cast<float>(r.factor);
    for (float& f : inv_freq) {
      float wavelen = 2.0f * static_cast<float>(M_PI) / f;
      if (wavelen > low_wavelen) {
        f = f / factor;
      } else if (wavelen >= high_wavelen) {  // medium frequencies: interpolate
        float smooth = (old_len / wavelen - static_cast<float>(r.low_freq_factor)) /
                       static_cast<float>(r.high_freq_factor - r.low_freq_factor);
        f = (1.0f - smooth) * f / factor + smooth * f;
      }
    }
  }
  return inv_freq;
}

}  // namespace slime::model
