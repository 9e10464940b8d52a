// Checkpoint conversions behind slime-convert (all callable in-process, collective where noted):
//   hf_to_mcore   HF safetensors + config.json -> our HDF5 Megatron checkpoint (iteration 0, model only), with the
//                 HF config stored so the reverse needs no other input. Run on N ranks, rank r converts its
//                 tensor-parallel shard (TP = N) and writes it as hyperslabs.
//   mcore_to_hf   HDF5 checkpoint -> HF safetensors + config.json (+ tokenizer files from an origin HF dir).
//                 Run on N ranks, the parameters are split among them; each writes its own shard file and rank 0
//                 the index and config.
//   inspect       every dataset (shape, dtype, checksum verified) and attribute of a checkpoint, as text.
//   init_random   a HF model directory with random weights from a config.json.
#pragma once

#include <mpi.h>

#include <cstdint>
#include <optional>
#include <string>

namespace slime::convert {

struct HfToMcoreOptions {
  std::string hf_dir;
  std::string save;
  int64_t make_vocab_size_divisible_by = 128;
  int64_t iteration = 0;
};
void hf_to_mcore(const HfToMcoreOptions& options, MPI_Comm comm);  // collective

struct McoreToHfOptions {
  std::string load;                        // a checkpoint root (with the tracker) or an iteration directory
  std::optional<int64_t> iteration;        // default: the tracker's
  std::string out;
  std::string origin_hf_dir;               // tokenizer files (and generation_config.json) are copied from here
  std::string dtype;                       // float32 | bfloat16 | "" = the stored config's torch_dtype
};
void mcore_to_hf(const McoreToHfOptions& options, MPI_Comm comm);  // collective

// Returns the report; `ok` is false when a checksum does not match.
std::string inspect(const std::string& path, bool* ok);

void init_random(const std::string& config_path, const std::string& out_dir, uint64_t seed, float stddev,
                 const std::string& tokenizer_dir, const std::string& dtype);

}  // namespace slime::convert
