// slime-convert: checkpoint tools. Subcommands:
//   init-random   a Hugging Face model directory with random weights from a config.json (demos, benchmarks, tests)
// The HF <-> Megatron/HDF5 conversions (hf-to-mcore, mcore-to-hf, inspect) arrive with the checkpoint issue.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>
#include <string>

#include "core/error.h"
#include "core/io.h"
#include "model/config.h"
#include "model/decoder.h"
#include "model/hf_mapping.h"
#include "model/init.h"

using namespace slime;

namespace {

void copy_file(const std::string& from, const std::string& to) {
  std::ifstream in(from, std::ios::binary);
  SLIME_CHECK(in, from, ": cannot open");
  std::ofstream out(to, std::ios::binary | std::ios::trunc);
  SLIME_CHECK(out, to, ": cannot create");
  out << in.rdbuf();
  SLIME_CHECK(out.good(), to, ": write failed");
}

void init_random_model(const std::string& config_path, const std::string& out_dir, uint64_t seed, float stddev,
                       const std::string& tokenizer_dir, const std::string& dtype) {
  SLIME_CHECK(dtype == "float32" || dtype == "bfloat16", "--dtype: expected float32 or bfloat16, got '", dtype, "'");
  model::ModelConfig config = model::ModelConfig::from_hf_json(read_json_file(config_path), config_path);
  model::Decoder decoder(config);
  model::init_random(config, decoder.params(), seed, stddev);
  model::save_hf_checkpoint(out_dir, config, decoder.params(), dtype == "bfloat16" ? DType::BF16 : DType::F32);
  if (!tokenizer_dir.empty()) {
    for (const char* name : {"tokenizer.json", "tokenizer_config.json"}) {
      std::string src = path_join(tokenizer_dir, name);
      SLIME_CHECK(path_exists(src), src, ": not found (--tokenizer-dir must hold tokenizer.json and "
                                         "tokenizer_config.json)");
      copy_file(src, path_join(out_dir, name));
    }
  }
  std::printf("wrote %s: %s, %.2fM parameters, seed %llu, std %g, %s\n", out_dir.c_str(), config.architecture.c_str(),
              config.num_parameters() / 1e6, static_cast<unsigned long long>(seed), stddev, dtype.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"slime-convert: checkpoint tools for slime-hpc"};
  app.require_subcommand(1);

  CLI::App* init = app.add_subcommand("init-random", "write a HF model directory with random weights");
  std::string config_path, out_dir, tokenizer_dir, dtype = "float32";
  uint64_t seed = 1234;
  float stddev = 0.02f;
  init->add_option("--config", config_path, "HF config.json describing the model")->required();
  init->add_option("--out", out_dir, "output directory")->required();
  init->add_option("--seed", seed, "random seed")->capture_default_str();
  init->add_option("--std", stddev, "standard deviation of the weights")->capture_default_str();
  init->add_option("--tokenizer-dir", tokenizer_dir, "copy tokenizer.json and tokenizer_config.json from here");
  init->add_option("--dtype", dtype, "float32 or bfloat16")->capture_default_str();

  CLI11_PARSE(app, argc, argv);
  try {
    if (*init) init_random_model(config_path, out_dir, seed, stddev, tokenizer_dir, dtype);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "slime-convert: error: %s\n", e.what());
    return 2;
  }
  return 0;
}
