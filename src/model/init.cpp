#include "model/init.h"

#include <algorithm>

#include "core/rng.h"

namespace slime::model {
namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

uint64_t param_stream(const std::string& name) {
  uint64_t hash = 1469598103934665603ull;
  for (unsigned char ch : name) {
    hash ^= ch;
    hash *= 1099511628211ull;
  }
  return hash;
}

void init_random(const ModelConfig& config, ParamRegistry& params, uint64_t seed, float stddev) {
  for (Param& p : params.all()) {
    // Drawn over the full tensor and then sharded, so every tensor-parallel layout gets the same model.
    Tensor global = Tensor::empty(p.global_shape, DType::F32);
    float* v = global.data<float>();
    const int64_t n = global.numel();
    if (ends_with(p.name, "layer_norm_weight") || ends_with(p.name, "layernorm.weight")) {
      std::fill(v, v + n, 1.0f);
    } else if (ends_with(p.name, ".bias")) {
      std::fill(v, v + n, 0.0f);
    } else {
      const uint64_t stream = param_stream(p.name);
      for (int64_t i = 0; i < n; ++i) v[i] = stddev * philox_normal(seed, stream, static_cast<uint64_t>(i));
      if ((p.name == "embedding.word_embeddings.weight" || p.name == "output_layer.weight") &&
          p.global_shape[0] == config.padded_vocab_size) {
        const int64_t width = global.dim(1);
        std::fill(v + config.vocab_size * width, v + n, 0.0f);  // vocab padding rows
      }
    }
    extract_shard(p, global, p.value);
  }
}

}  // namespace slime::model
