// slime-convert under mpirun -np 2: HF -> HDF5 -> HF is bit-exact on every golden model whatever the number of
// ranks converting, the model loaded from HDF5 gives the logits of the model loaded from safetensors, and inspect
// reports datasets and catches corruption.
#include <catch2/catch.hpp>
#include <cstring>
#include <dirent.h>
#include <filesystem>
#include <fstream>

#include "ckpt/checkpoint.h"
#include "ckpt/h5.h"
#include "ckpt/safetensors.h"
#include "ckpt_tools/convert.h"
#include "comm/mpi_utils.h"
#include "core/io.h"
#include "model/decoder.h"
#include "model/hf_mapping.h"

using namespace slime;
namespace fs = std::filesystem;

namespace {

std::string golden_root() {
  const char* src = std::getenv("SLIME_SOURCE_DIR");
  return std::string(src ? src : ".") + "/regression/hf_parity/golden";
}

std::vector<std::string> golden_models() {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(golden_root()))
    if (fs::exists(e.path() / "config.json")) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

std::string scratch(const std::string& name) {
  const std::string dir = "/tmp/slime_convert_test/" + name;
  if (comm::rank(MPI_COMM_WORLD) == 0) fs::remove_all(dir);
  MPI_Barrier(MPI_COMM_WORLD);
  return dir;
}

// Every tensor of two HF directories: same names, dtypes, shapes and bytes.
void require_same_hf(const std::string& a_dir, const std::string& b_dir) {
  ckpt::SafetensorsCheckpoint a = ckpt::SafetensorsCheckpoint::open_dir(a_dir);
  ckpt::SafetensorsCheckpoint b = ckpt::SafetensorsCheckpoint::open_dir(b_dir);
  REQUIRE(a.names() == b.names());
  for (const std::string& name : a.names()) {
    INFO(name);
    const ckpt::TensorInfo& ia = a.info(name);
    const ckpt::TensorInfo& ib = b.info(name);
    REQUIRE(ia.dtype == ib.dtype);
    REQUIRE(ia.shape == ib.shape);
    CHECK(std::memcmp(a.data(name), b.data(name), ia.nbytes()) == 0);
  }
  CHECK(read_json_file(a_dir + "/config.json") == read_json_file(b_dir + "/config.json"));
}

}  // namespace

TEST_CASE("HF -> HDF5 -> HF is bit-exact for the golden models, with 1 or 2 ranks converting") {
  MPI_Comm self_or_world[2];
  MPI_Comm_split(MPI_COMM_WORLD, comm::rank(MPI_COMM_WORLD) == 0 ? 0 : MPI_UNDEFINED, 0, &self_or_world[0]);
  self_or_world[1] = MPI_COMM_WORLD;
  for (const std::string& name : golden_models()) {
    const std::string hf = golden_root() + "/" + name;
    for (int to_ranks : {1, 2}) {
      for (int back_ranks : {1, 2}) {
        INFO(name << ": hf-to-mcore on " << to_ranks << " rank(s), mcore-to-hf on " << back_ranks);
        const std::string tag = name + "_" + std::to_string(to_ranks) + std::to_string(back_ranks);
        const std::string mcore = scratch(tag + "_mcore"), back = scratch(tag + "_hf");
        convert::HfToMcoreOptions to{hf, mcore, 128, 0};
        if (to_ranks == 2) convert::hf_to_mcore(to, MPI_COMM_WORLD);
        else if (self_or_world[0] != MPI_COMM_NULL) convert::hf_to_mcore(to, self_or_world[0]);
        MPI_Barrier(MPI_COMM_WORLD);
        convert::McoreToHfOptions from;
        from.load = mcore;
        from.out = back;
        if (back_ranks == 2) convert::mcore_to_hf(from, MPI_COMM_WORLD);
        else if (self_or_world[0] != MPI_COMM_NULL) convert::mcore_to_hf(from, self_or_world[0]);
        MPI_Barrier(MPI_COMM_WORLD);
        require_same_hf(hf, back);
        CHECK(fs::exists(back + (back_ranks == 2 ? "/model.safetensors.index.json" : "/model.safetensors")));
      }
    }
  }
  if (self_or_world[0] != MPI_COMM_NULL) MPI_Comm_free(&self_or_world[0]);
}

TEST_CASE("the model loaded from HDF5 gives the same logits as the one loaded from safetensors") {
  for (const std::string& name : golden_models()) {
    const std::string hf = golden_root() + "/" + name;
    const std::string mcore = scratch(name + "_logits");
    convert::hf_to_mcore({hf, mcore, 128, 0}, MPI_COMM_WORLD);  // converted with TP=2
    model::ModelConfig config = model::ModelConfig::from_hf_dir(hf);
    config.pad_vocab(128, 2);
    model::Decoder from_hf(config), from_h5(config);
    model::load_hf_weights(hf, config, from_hf.params());
    ckpt::LoadOptions options;
    options.load_optimizer = false;
    options.expect_config = &config;
    ckpt::load_checkpoint(mcore, 0, from_h5.params(), {}, comm::ParallelGroups::single(), options);
    model::PackedBatch batch = model::PackedBatch::from_sequences({{1, 2, 3, 4, 5, 6, 7}, {8, 9}});
    Tensor a = from_hf.forward_logits(batch), b = from_h5.forward_logits(batch);
    INFO(name);
    CHECK(std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0);
  }
}

TEST_CASE("inspect lists datasets with verified checksums and reports corruption") {
  const std::string hf = golden_root() + "/qwen3_sharded";
  const std::string mcore = scratch("inspect");
  convert::hf_to_mcore({hf, mcore, 128, 0}, MPI_COMM_WORLD);
  if (comm::rank(MPI_COMM_WORLD) == 0) {
    bool ok = false;
    const std::string report = convert::inspect(mcore, &ok);
    CHECK(ok);
    CHECK_THAT(report, Catch::Contains("decoder.layers.1.self_attention.linear_qkv.weight") &&
                           Catch::Contains("[256, 64]") && Catch::Contains("checksum ok") &&
                           Catch::Contains("@model_config") && Catch::Contains("Qwen3ForCausalLM"));
    // Corrupt one value of a dataset: inspect flags it, loading refuses it.
    const std::string file = ckpt::iteration_dir(mcore, 0) + "/model.h5";
    haddr_t offset;
    {
      h5::Handle f = h5::open_file(file, MPI_COMM_NULL);
      h5::Handle d = h5::open_dataset(f, "decoder.final_layernorm.weight", "test");
      offset = H5Dget_offset(d);
    }
    std::fstream io(file, std::ios::in | std::ios::out | std::ios::binary);
    io.seekp(offset + 3);
    io.put('\x7f');
    io.close();
    const std::string bad = convert::inspect(file, &ok);
    CHECK_FALSE(ok);
    CHECK_THAT(bad, Catch::Contains("decoder.final_layernorm.weight") && Catch::Contains("checksum mismatch"));
  }
  MPI_Barrier(MPI_COMM_WORLD);
}

TEST_CASE("mcore-to-hf errors: not a checkpoint, unknown iteration") {
  const std::string empty = scratch("empty");
  if (comm::rank(MPI_COMM_WORLD) == 0) make_directories(empty);
  MPI_Barrier(MPI_COMM_WORLD);
  convert::McoreToHfOptions from;
  from.load = empty;
  from.out = scratch("empty_out");
  CHECK_THROWS_WITH(convert::mcore_to_hf(from, MPI_COMM_WORLD), Catch::Contains("not a checkpoint"));
  from.iteration = 5;
  CHECK_THROWS_WITH(convert::mcore_to_hf(from, MPI_COMM_WORLD), Catch::Contains("no checkpoint of iteration 5"));
}
