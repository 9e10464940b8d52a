// Trainer options with effects beyond the loss: frozen parameters, reference-model updates, LM-head chunking, and
// options the trainer refuses rather than ignores.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <exception>

#include "comm/parallel.h"
#include "train/trainer.h"
#include "train/trainer_test_util.h"

using namespace slime;
using namespace slime::train;
using namespace slime::train::testing;

namespace {

std::vector<std::string> options(std::vector<std::string> extra) {
  std::vector<std::string> o = {"--hf-checkpoint", golden_model("qwen2_tied"), "--rollout-batch-size", "4",
                                "--n-samples-per-prompt", "2", "--global-batch-size", "8", "--num-rollout", "2",
                                "--lr", "1e-2", "--lr-decay-style", "constant", "--micro-batch-size", "4",
                                "--debug-train-only", "--backend", "cpu"};
  o.insert(o.end(), extra.begin(), extra.end());
  return o;
}

}  // namespace

TEST_CASE("--freeze-params-name-list and --only-train-params-name-list leave matching parameters untouched") {
  for (const auto& extra : std::vector<std::vector<std::string>>{
           {"--freeze-params-name-list", "embedding", "layers\\.0\\."},
           {"--only-train-params-name-list", "layers\\.1\\.", "final_layernorm"}}) {
    std::vector<std::string> sft = extra;
    sft.insert(sft.end(), {"--loss-type", "sft_loss"});  // every parameter gets a gradient
    Trainer trainer(make_args(options(sft)), comm::ParallelGroups::single());
    model::ParamRegistry& params = trainer.model().params();
    const Tensor before = params.flat_values().clone();
    trainer.train_rollout(0, synthetic_rollout(4, 2, 1000, 7));
    for (const model::Param& p : params.all()) {
      const bool frozen = p.name.find("embedding") != std::string::npos ||
                          p.name.find("layers.0.") != std::string::npos;
      const bool same = std::memcmp(p.value.raw(), static_cast<const float*>(before.raw()) + p.flat_offset,
                                    p.value.nbytes()) == 0;
      INFO(extra[0] << ": " << p.name);
      CHECK(same == frozen);
    }
  }
  CHECK_THROWS_WITH(Trainer(make_args(options({"--freeze-params-name-list", "("})), comm::ParallelGroups::single()),
                    Catch::Contains("--freeze-params-name-list: '(' is not a valid regular expression"));
}

TEST_CASE("--ref-update-interval moves the reference model to the actor") {
  Trainer trainer(make_args(options({"--ref-load", golden_model("qwen2_tied"), "--use-kl-loss", "--kl-loss-coef",
                                     "0.1", "--ref-update-interval", "1"})),
                  comm::ParallelGroups::single());
  RolloutTrainResult first = trainer.train_rollout(0, synthetic_rollout(4, 2, 1000, 1));
  CHECK(first.steps[0].at("train/kl_loss") == Approx(0.0).margin(1e-12));  // actor == reference at the start
  RolloutTrainResult second = trainer.train_rollout(1, synthetic_rollout(4, 2, 1000, 2));
  CHECK(second.steps[0].at("train/kl_loss") == Approx(0.0).margin(1e-12));  // reference updated after rollout 0

  Trainer fixed_ref(make_args(options({"--ref-load", golden_model("qwen2_tied"), "--use-kl-loss", "--kl-loss-coef",
                                       "0.1"})),
                    comm::ParallelGroups::single());
  fixed_ref.train_rollout(0, synthetic_rollout(4, 2, 1000, 1));
  CHECK(std::abs(fixed_ref.train_rollout(1, synthetic_rollout(4, 2, 1000, 2)).steps[0].at("train/kl_loss")) > 1e-6);
}

TEST_CASE("--log-probs-chunk-size changes memory, not results") {
  Trainer whole(make_args(options({})), comm::ParallelGroups::single());
  Trainer chunked(make_args(options({"--log-probs-chunk-size", "5"})), comm::ParallelGroups::single());
  REQUIRE(chunked.model().lm_head_chunk_rows() == 5);
  const auto samples = synthetic_rollout(4, 2, 1000, 3);
  const RolloutTrainResult a = whole.train_rollout(0, samples), b = chunked.train_rollout(0, samples);
  CHECK(a.steps[0].at("train/loss") == Approx(b.steps[0].at("train/loss")).epsilon(1e-6));
  const Tensor& va = whole.model().params().flat_values();
  const Tensor& vb = chunked.model().params().flat_values();
  CHECK(relative_difference(va, vb) < 1e-6);
}

TEST_CASE("training options that are not implemented are refused, not ignored") {
  auto refused = [](std::vector<std::string> extra, const char* needle) {
    CHECK_THROWS_WITH(Trainer(make_args(options(extra)), comm::ParallelGroups::single()), Catch::Contains(needle));
  };
  refused({"--custom-loss-function-path", "x.so:loss", "--loss-type", "custom_loss"}, "plug-in hooks");
  refused({"--custom-advantage-function-path", "x.so:adv"}, "--custom-advantage-function-path");
}

TEST_CASE("periodic actions (--save-interval, --eval-interval) fire as slime's should_run_periodic_action") {
  // every 3 rollouts: after rollouts 2, 5, 8; plus the epoch boundary (every 4) and, for saves, the last (9 of 10)
  std::vector<int64_t> saves, evals;
  for (int64_t r = 0; r < 10; ++r) {
    if (periodic_action_due(3, r, 10, 4, true)) saves.push_back(r);
    if (periodic_action_due(3, r, 10, 4, false)) evals.push_back(r);
  }
  CHECK(saves == std::vector<int64_t>{2, 3, 5, 7, 8, 9});
  CHECK(evals == std::vector<int64_t>{2, 3, 5, 7, 8});
  CHECK_FALSE(periodic_action_due(std::nullopt, 9, 10, 4, true));
}

TEST_CASE("--backend cuda: the actor on the GPU where there is one, a clear refusal where there is none") {
  try {
    Trainer trainer(make_args(options({"--backend", "cuda"})), comm::ParallelGroups::single());
    const RolloutTrainResult r = trainer.train_rollout(0, synthetic_rollout(4, 2, 1000, 3));
    CHECK(std::isfinite(r.steps[0].at("train/loss")));  // a GPU machine: it trains
  } catch (const std::exception& e) {
    CHECK_THAT(e.what(), Catch::Contains("--backend cuda: no CUDA GPU is visible") ||
                             Catch::Contains("--backend cuda: this build of slime-hpc has no CUDA backend"));
  }
}
