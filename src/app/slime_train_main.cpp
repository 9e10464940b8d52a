// slime-train: the RL post-training job, one MPI program (see docs/architecture.md).
//
// Every rank parses and validates the same options (command line and --config YAML). Errors name the option or
// file; a rank that fails aborts the whole job with its message. Then the ranks split into the trainer and rollout
// pools and run the RL loop (app/rl_job.h; docs/usage.md).
#include <mpi.h>

#include <Kokkos_Core.hpp>
#include <cstdio>
#include <string>
#include <vector>

#include "app/early_exit.h"
#include "app/rl_job.h"
#include "core/args.h"
#include "core/error.h"
#include "core/io.h"
#include "core/log.h"
#include "model/config.h"
#include "tokenizer/tokenizer.h"

namespace {

void check_hf_checkpoint(const std::string& dir) {
  using namespace slime;
  model::ModelConfig config = model::ModelConfig::from_hf_dir(dir);
  SLIME_INFO0("model ", config.architecture, ": ", config.num_layers, " layers, hidden ", config.hidden_size,
              ", heads ", config.num_heads, "/", config.num_kv_heads, " (head_dim ", config.head_dim, "), vocab ",
              config.vocab_size, ", ", config.num_parameters() / 1e6, "M parameters");
  std::string tokenizer_path = path_join(dir, "tokenizer.json");
  SLIME_CHECK(path_exists(tokenizer_path), tokenizer_path, ": not found (--hf-checkpoint must hold the tokenizer)");
  tokenizer::Tokenizer tok = tokenizer::Tokenizer::from_file(tokenizer_path);
  SLIME_INFO0("tokenizer ", tokenizer_path, ": ", tok.vocab_size(), " ids");
}

}  // namespace

int main(int argc, char** argv) {
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
  int rank = 0, world = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  slime::log::set_rank(rank);
  int exit_code = 0;
  try {
    Kokkos::ScopeGuard kokkos;  // no argv: Kokkos would answer --help itself
    std::vector<std::string> args(argv + 1, argv + argc);
    if (args.size() == 1 && args[0] == "--help-markdown") {
      if (rank == 0) std::fputs(slime::format_help_markdown().c_str(), stdout);
    } else {
      slime::ParsedArgs parsed = slime::parse_args(args);
      if (parsed.help_requested) {
        if (rank == 0) std::fputs(slime::format_help().c_str(), stdout);
      } else {
        slime::validate_args(parsed.args);
        if (parsed.args.exit_signal_handler) slime::app::install_exit_signal_handlers();
        slime::log::set_level(slime::log::parse_level(parsed.args.log_level));
        if (rank == 0) std::fputs(slime::format_args_summary(parsed.args).c_str(), stdout);
        std::fflush(stdout);
        SLIME_INFO0("world size ", world);
        if (parsed.args.hf_checkpoint) check_hf_checkpoint(*parsed.args.hf_checkpoint);
        exit_code = slime::app::run_rl_job(parsed.args, MPI_COMM_WORLD);
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "slime-train: error (rank %d of %d): %s\n", rank, world, e.what());
    std::fflush(stderr);
    exit_code = 2;
    if (world > 1) MPI_Abort(MPI_COMM_WORLD, exit_code);
  }
  MPI_Finalize();
  return exit_code;
}
