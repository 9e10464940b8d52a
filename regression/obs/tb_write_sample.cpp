// Writes a known set of scalars with TensorBoardWriter for regression/obs/tensorboard_test.sh: several tags over
// steps 0..kSteps-1, three values in one event per step, int64 steps beyond 2^32 (and a negative one: a ten-byte
// varint), and non-finite values. The values written (as doubles, before the float32 rounding of the file) go to
// EXPECTED_JSON as {"scalars": {tag: [[step, value], ...]}, "multi_value_events": n, "event_file": path};
// non-finite values as the strings "nan", "inf", "-inf".
//   tb_write_sample LOG_DIR EXPECTED_JSON
#include <cmath>
#include <cstdio>
#include <limits>
#include <nlohmann/json.hpp>

#include "core/io.h"
#include "obs/tensorboard.h"

namespace {

constexpr int kSteps = 25;

nlohmann::json json_value(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  return value;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: tb_write_sample LOG_DIR EXPECTED_JSON\n");
    return 2;
  }
  try {
    nlohmann::json expected = {{"scalars", nlohmann::json::object()}, {"multi_value_events", 0}};
    auto& scalars = expected["scalars"];
    auto record = [&](const std::string& tag, int64_t step, double value) {
      scalars[tag].push_back({step, json_value(value)});
    };

    slime::obs::TensorBoardWriter writer(argv[1]);
    expected["event_file"] = writer.path();
    for (int64_t step = 0; step < kSteps; ++step) {
      const double loss = 2.0 / (1.0 + step) + 1e-3 * step;
      writer.add_scalar("train/loss", loss, step);
      record("train/loss", step, loss);
      const double lr = 1e-6 * (step + 1);
      writer.add_scalar("train/lr", lr, step);
      record("train/lr", step, lr);
      // Three values in one Event.
      const std::vector<slime::obs::ScalarValue> rollout = {
          {"rollout/reward_mean", std::sin(0.3 * step)},
          {"rollout/reward_std", 0.1 * step},
          {"perf/tokens_per_second", 1e5 + 123.456 * step}};
      writer.add_scalars(rollout, step);
      for (const auto& [tag, value] : rollout) record(tag, step, value);
      expected["multi_value_events"] = expected["multi_value_events"].get<int>() + 1;
    }
    const int64_t big_steps[] = {(int64_t{1} << 32) + 7, (int64_t{1} << 40) + 3, std::numeric_limits<int64_t>::max(),
                                 -1};
    for (const int64_t step : big_steps) {
      const double value = static_cast<double>(step % 1000) + 0.25;
      writer.add_scalar("misc/big_step", value, step);
      record("misc/big_step", step, value);
    }
    const double non_finite[] = {std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity(),
                                 -std::numeric_limits<double>::infinity()};
    for (int i = 0; i < 3; ++i) {
      writer.add_scalar("misc/non_finite", non_finite[i], i);
      record("misc/non_finite", i, non_finite[i]);
    }
    writer.close();
    slime::write_file_atomic(argv[2], expected.dump(1) + "\n");
    std::printf("wrote %s\n", writer.path().c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tb_write_sample: %s\n", e.what());
    return 1;
  }
  return 0;
}
