// Random initialisation of a model's parameters, reproducible from a seed.
//
// Each parameter draws from its own Philox stream keyed by a hash of its name, so the values do not depend on
// registration order or on how the model is sharded. Weights ~ N(0, std^2) (HF's initializer_range), norm weights 1,
// biases 0, vocabulary padding rows 0.
#pragma once

#include <cstdint>

#include "model/config.h"
#include "model/params.h"

namespace slime::model {

void init_random(const ModelConfig& config, ParamRegistry& params, uint64_t seed, float stddev = 0.02f);

// The stream id a parameter name draws from (FNV-1a of the name).
uint64_t param_stream(const std::string& name);

}  // namespace slime::model
