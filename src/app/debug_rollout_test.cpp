// --save-debug-rollout-data files: round trip (samples and metrics exactly), the path template, subsampling by
// whole groups, and every damaged file refused with a message naming it.
#include "app/debug_rollout.h"

#include <stdlib.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <string>

#include "core/error.h"
#include "core/io.h"

using namespace slime;
using Catch::Matchers::Contains;

namespace {

app::DebugRollout sample_rollout() {
  app::DebugRollout r;
  for (int64_t i = 0; i < 6; ++i) {
    buffer::BufferedSample b;
    b.sample.tokens = {1, 2, 3, 4 + i};
    b.sample.response_length = 2;
    b.sample.loss_mask = {1.0f, 0.0f};
    b.sample.reward = 0.25f * static_cast<float>(i);
    b.sample.rollout_logprobs = {-0.5f, -1.25f};
    b.index = i;
    b.group_index = i / 2;  // 3 groups of 2
    b.weight_version = 7;
    r.samples.push_back(b);
  }
  r.metrics = {{"rollout/raw_reward", 0.625}, {"perf/rollout_time", 1.5}};
  return r;
}

std::string temp_dir() {
  std::string path = "/tmp/slime_debug_rollout_test.XXXXXX";
  REQUIRE(::mkdtemp(path.data()) != nullptr);
  return path;
}

}  // namespace

TEST_CASE("debug rollout files round-trip and subsample by whole groups") {
  const std::string dir = temp_dir();
  CHECK(app::debug_rollout_path(dir + "/r_{rollout_id}/x_{rollout_id}.bin", 12) == dir + "/r_12/x_12.bin");
  const std::string path = app::debug_rollout_path(dir + "/sub/r_{rollout_id}.bin", 3);
  const app::DebugRollout saved = sample_rollout();
  app::save_debug_rollout(path, 3, saved);
  const app::DebugRollout loaded = app::load_debug_rollout(path, 3);
  REQUIRE(loaded.samples.size() == 6);
  for (size_t i = 0; i < 6; ++i) {
    CHECK(loaded.samples[i].sample.tokens == saved.samples[i].sample.tokens);
    CHECK(loaded.samples[i].sample.loss_mask == saved.samples[i].sample.loss_mask);
    CHECK(loaded.samples[i].sample.reward == saved.samples[i].sample.reward);
    CHECK(loaded.samples[i].sample.rollout_logprobs == saved.samples[i].sample.rollout_logprobs);
    CHECK(loaded.samples[i].group_index == saved.samples[i].group_index);
    CHECK(loaded.samples[i].weight_version == 7);
  }
  CHECK(loaded.metrics == saved.metrics);
  // 0.5 of 3 groups -> ceil(1.5) = 2 whole groups (4 samples).
  CHECK(app::load_debug_rollout(path, 3, 0.5).samples.size() == 4);
  CHECK_THROWS_WITH(app::load_debug_rollout(path, 3, 1.5), Contains("must be in (0, 1]"));
  std::filesystem::remove_all(dir);
}

TEST_CASE("damaged or mismatched debug rollout files are refused, naming the file") {
  const std::string dir = temp_dir();
  const std::string path = dir + "/r.bin";
  app::save_debug_rollout(path, 3, sample_rollout());
  const std::string bytes = read_text_file(path);
  CHECK_THROWS_WITH(app::load_debug_rollout(dir + "/missing.bin", 0), Contains("no such debug rollout file"));
  CHECK_THROWS_WITH(app::load_debug_rollout(path, 4), Contains("holds rollout 3, expected rollout 4"));
  write_file_atomic(path, bytes.substr(0, bytes.size() - 5));
  CHECK_THROWS_WITH(app::load_debug_rollout(path, 3), Contains(path));
  write_file_atomic(path, "NOTSLIME" + bytes.substr(8));
  CHECK_THROWS_WITH(app::load_debug_rollout(path, 3), Contains("not a slime-hpc debug rollout file"));
  write_file_atomic(path, bytes + "x");
  CHECK_THROWS_WITH(app::load_debug_rollout(path, 3), Contains("trailing bytes"));
  std::filesystem::remove_all(dir);
}
