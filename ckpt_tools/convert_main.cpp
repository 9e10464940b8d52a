// slime-convert: checkpoint tools (see convert.h). Runs under mpirun/srun with several ranks for the conversions.
//   slime-convert hf-to-mcore --hf-dir D --save OUT [--make-vocab-size-divisible-by N]
//   slime-convert mcore-to-hf --load DIR [--iteration N] --out D [--origin-hf-dir D] [--dtype T]
//   slime-convert inspect PATH
//   slime-convert init-random --config config.json --out D [--seed S] [--std X] [--tokenizer-dir D]
#include <mpi.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>

#include "ckpt_tools/convert.h"
#include "comm/mpi_utils.h"
#include "core/error.h"
#include "core/log.h"

using namespace slime;

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  const int rank = comm::rank(MPI_COMM_WORLD), world = comm::size(MPI_COMM_WORLD);
  log::set_rank(rank);
  CLI::App app{"slime-convert: checkpoint tools for slime-hpc (HF safetensors <-> HDF5 Megatron checkpoints)"};
  app.require_subcommand(1);

  convert::HfToMcoreOptions to_mcore;
  CLI::App* hf2m = app.add_subcommand("hf-to-mcore", "HF safetensors + config.json -> HDF5 Megatron checkpoint");
  hf2m->add_option("--hf-dir", to_mcore.hf_dir, "Hugging Face model directory")->required();
  hf2m->add_option("--save", to_mcore.save, "checkpoint root to write (iter_0000000/ + tracker)")->required();
  hf2m->add_option("--make-vocab-size-divisible-by", to_mcore.make_vocab_size_divisible_by,
                   "pad the vocabulary to a multiple of this x the number of ranks")->capture_default_str();

  convert::McoreToHfOptions to_hf;
  CLI::App* m2hf = app.add_subcommand("mcore-to-hf", "HDF5 Megatron checkpoint -> HF safetensors + config.json");
  m2hf->add_option("--load", to_hf.load, "checkpoint root or iter_XXXXXXX directory")->required();
  int64_t iteration = -1;
  m2hf->add_option("--iteration", iteration, "iteration to convert (default: the latest)");
  m2hf->add_option("--out", to_hf.out, "Hugging Face directory to write")->required();
  m2hf->add_option("--origin-hf-dir", to_hf.origin_hf_dir, "copy tokenizer files from this HF directory");
  m2hf->add_option("--dtype", to_hf.dtype, "float32 or bfloat16 (default: the stored config's torch_dtype)");

  std::string inspect_path;
  CLI::App* insp = app.add_subcommand("inspect", "datasets (shape, dtype, checksum) and attributes of a checkpoint");
  insp->add_option("path", inspect_path, "checkpoint root, iter_XXXXXXX directory or .h5 file")->required();

  std::string config_path, out_dir, tokenizer_dir, dtype = "float32";
  uint64_t seed = 1234;
  float stddev = 0.02f;
  CLI::App* init = app.add_subcommand("init-random", "write a HF model directory with random weights");
  init->add_option("--config", config_path, "HF config.json describing the model")->required();
  init->add_option("--out", out_dir, "output directory")->required();
  init->add_option("--seed", seed, "random seed")->capture_default_str();
  init->add_option("--std", stddev, "standard deviation of the weights")->capture_default_str();
  init->add_option("--tokenizer-dir", tokenizer_dir, "copy tokenizer.json and tokenizer_config.json from here");
  init->add_option("--dtype", dtype, "float32 or bfloat16")->capture_default_str();

  int code = 0;
  try {
    app.parse(argc, argv);
    if (*hf2m) {
      convert::hf_to_mcore(to_mcore, MPI_COMM_WORLD);
      if (rank == 0) std::printf("wrote %s (iteration %lld, %d rank(s))\n", to_mcore.save.c_str(),
                                 static_cast<long long>(to_mcore.iteration), world);
    } else if (*m2hf) {
      if (iteration >= 0) to_hf.iteration = iteration;
      convert::mcore_to_hf(to_hf, MPI_COMM_WORLD);
      if (rank == 0) std::printf("wrote %s (%d rank(s))\n", to_hf.out.c_str(), world);
    } else if (*insp) {
      if (rank == 0) {
        bool ok = true;
        std::fputs(convert::inspect(inspect_path, &ok).c_str(), stdout);
        if (!ok) code = 3;
      }
    } else if (*init) {
      if (rank == 0) convert::init_random(config_path, out_dir, seed, stddev, tokenizer_dir, dtype);
    }
  } catch (const CLI::ParseError& e) {
    code = rank == 0 ? app.exit(e) : (e.get_exit_code() == 0 ? 0 : 2);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "slime-convert: error (rank %d of %d): %s\n", rank, world, e.what());
    std::fflush(stderr);
    if (world > 1) MPI_Abort(MPI_COMM_WORLD, 2);
    code = 2;
  }
  MPI_Finalize();
  return code;
}
