// The rollout engine's greedy continuations equal transformers' model.generate(do_sample=False) for the golden
// models (greedy.safetensors from make_greedy_golden.py), with all prompts in flight at once through a small KV
// cache (chunked prefill, prefix reuse) — token by token, as long as the reference's top-1/top-2 margin is not a
// near-tie (every margin recorded is far above fp32 rounding).
#include <catch2/catch.hpp>
#include <cstdio>
#include <dirent.h>
#include <string>
#include <vector>

#include "ckpt/safetensors.h"
#include "core/io.h"
#include "model/config.h"
#include "model/decoder.h"
#include "model/hf_mapping.h"
#include "rollout/engine.h"

using namespace slime;

namespace {

std::string golden_root() {
  const char* src = std::getenv("SLIME_SOURCE_DIR");
  return std::string(src ? src : ".") + "/regression/hf_parity/golden";
}

std::vector<int64_t> ints(const Tensor& t) { return std::vector<int64_t>(t.data<int64_t>(), t.data<int64_t>() + t.numel()); }

}  // namespace

TEST_CASE("engine greedy decoding matches transformers' greedy continuation on the golden models") {
  std::vector<std::string> models;
  if (DIR* dir = opendir(golden_root().c_str())) {
    while (dirent* e = readdir(dir))
      if (path_exists(golden_root() + "/" + e->d_name + "/greedy.safetensors")) models.push_back(e->d_name);
    closedir(dir);
  }
  REQUIRE(models.size() >= 4);
  for (const std::string& name : models) {
    const std::string dir = golden_root() + "/" + name;
    model::ModelConfig config = model::ModelConfig::from_hf_dir(dir);
    config.pad_vocab(128);
    model::Decoder model(config);
    model::load_hf_weights(dir, config, model.params());
    ckpt::SafetensorsFile golden = ckpt::SafetensorsFile::open(dir + "/greedy.safetensors");
    const std::vector<int64_t> prompt_tokens = ints(golden.read("prompt_tokens"));
    const std::vector<int64_t> offsets = ints(golden.read("prompt_offsets"));
    const Tensor expected = golden.read("tokens"), margins = golden.read("margins");
    const int64_t prompts = expected.dim(0), steps = expected.dim(1);

    rollout::EngineConfig engine_config;
    engine_config.num_blocks = 64;
    engine_config.block_size = 4;
    engine_config.max_batched_tokens = 24;  // the 33-token prompt is prefilled in two chunks
    rollout::Engine engine(model, engine_config);
    std::vector<rollout::GenerateRequest> requests(prompts);
    for (int64_t p = 0; p < prompts; ++p) {
      requests[p].prompt.assign(prompt_tokens.begin() + offsets[p], prompt_tokens.begin() + offsets[p + 1]);
      requests[p].params.temperature = 0;
      requests[p].params.max_new_tokens = steps;
      requests[p].params.ignore_eos = true;
    }
    const std::vector<rollout::GenerateOutput> outputs = engine.generate(requests);
    int64_t compared = 0;
    for (int64_t p = 0; p < prompts; ++p) {
      for (int64_t t = 0; t < steps; ++t) {
        if (margins.data<double>()[p * steps + t] < 1e-4) break;  // a near-tie: the rest may legitimately differ
        INFO(name << " prompt " << p << " step " << t);
        REQUIRE(outputs[p].tokens.at(t) == expected.data<int64_t>()[p * steps + t]);
        ++compared;
      }
    }
    std::printf("greedy_parity %-18s %lld/%lld tokens equal to transformers\n", name.c_str(),
                static_cast<long long>(compared), static_cast<long long>(prompts * steps));
    CHECK(compared == prompts * steps);
  }
}
