// slime-report's library on small hand-made metrics files: parsing (blank lines, strings and nulls skipped, a
// redone step's later line wins), the summary numbers (worked out by hand in the comments), SFT and --train-async
// runs, the .dat files and summary.md of a --no-plots report, and every error (bad lines, missing run directory or
// metrics.jsonl, gnuplot missing, failing or writing nothing). Real PNGs: regression/obs/report_test.sh.
#include "obs/report.h"

#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <string>

#include "core/error.h"
#include "core/io.h"
#include "obs/obs_test_util.h"

using namespace slime::obs;
using Catch::Matchers::Contains;

using slime::obs::testing::TempDir;

namespace {

// Steps 0..6 and an evaluation before training. Step 1 is written twice (the second line, after a blank line,
// wins: reward 0.3 not 0.2, eval 0.75 not 0.5, tokens/s 3000 not 2000). Step 4 has no perf metrics, step 6 no
// reward and no loss, step 3 a null mfu and no update_weights_time.
const char* kMetrics =
    R"({"eval/math":0.25,"eval/math/response_len/mean":100,"eval/math/truncated_ratio":0.1,"perf/eval_time":2.0,"phase":"eval_before_train"}
{"rollout_id":0,"rollout/raw_reward":0.1,"perf/rollout_time":1,"perf/train_time":2,"perf/update_weights_time":0.5,"perf/step_time":4,"perf/tokens_per_sec":1000,"train/loss":0.5,"train/pg_loss":0.5}
{"rollout_id":1,"rollout/raw_reward":0.2,"perf/rollout_time":1,"perf/train_time":2,"perf/step_time":3.5,"perf/tokens_per_sec":2000,"train/loss":0.4,"eval/math":0.5,"perf/eval_time":0.5}

{"rollout_id":1,"rollout/raw_reward":0.3,"perf/rollout_time":1,"perf/train_time":3,"perf/update_weights_time":0.5,"perf/eval_time":1,"perf/step_time":6,"perf/tokens_per_sec":3000,"train/loss":0.3,"eval/math":0.75,"eval/math/response_len/mean":90}
{"rollout_id":2,"rollout/raw_reward":0.5,"perf/rollout_time":2,"perf/train_time":2,"perf/update_weights_time":1,"perf/step_time":4,"eval/math":0.75}
{"rollout_id":3,"rollout/raw_reward":0.2,"perf/rollout_time":1,"perf/train_time":2,"perf/step_time":3.5,"perf/tokens_per_sec":2000,"train/loss":0.2,"perf/mfu":null,"note":"text"}
{"rollout_id":4,"rollout/raw_reward":0.4}
{"rollout_id":5,"rollout/raw_reward":0.6,"perf/rollout_time":1,"perf/train_time":1,"perf/update_weights_time":1,"perf/step_time":3,"train/loss":0.1,"eval/math":0.6}
{"rollout_id":6,"perf/rollout_time":1,"perf/train_time":2,"perf/update_weights_time":0,"perf/step_time":3.5}
)";

std::string read(const std::string& path) { return slime::read_text_file(path); }

}  // namespace

TEST_CASE("read_metrics: blank lines, later line wins, non-numbers skipped", "[obs][report]") {
  TempDir dir("read");
  const RunMetrics run = read_metrics(dir.write("metrics.jsonl", kMetrics));
  CHECK(run.records == 9);
  REQUIRE(run.steps.size() == 7);
  CHECK(run.redone_steps == std::vector<int64_t>{1});
  REQUIRE(run.before_train);
  CHECK(run.before_train->at("eval/math") == 0.25);
  CHECK(run.before_train->count("phase") == 0);
  CHECK(run.steps.at(1).at("rollout/raw_reward") == 0.3);
  CHECK(run.steps.at(1).at("perf/tokens_per_sec") == 3000);
  CHECK(run.steps.at(1).count("rollout_id") == 0);
  CHECK(run.steps.at(3).count("perf/mfu") == 0);  // null
  CHECK(run.steps.at(3).count("note") == 0);      // a string
  CHECK(run.steps.at(4).size() == 1);
  CHECK(eval_names(run) == std::vector<std::string>{"math"});  // not math/response_len/mean or math/truncated_ratio

  const auto reward = series(run, "rollout/raw_reward");
  REQUIRE(reward.size() == 6);  // step 6 has none
  CHECK(reward[1].step == 1);
  CHECK(reward[1].value == 0.3);
  CHECK(reward.back().step == 5);
}

TEST_CASE("summarize: eval, reward windows, time split, throughput, loss", "[obs][report]") {
  TempDir dir("summary");
  const RunSummary s = summarize(read_metrics(dir.write("metrics.jsonl", kMetrics)));
  CHECK(s.steps == 7);
  CHECK(s.first_step == 0);
  CHECK(s.last_step == 6);
  CHECK(s.redone_steps == std::vector<int64_t>{1});
  CHECK_FALSE(s.sft);
  CHECK(s.eval_before_train);

  // eval/math: 0.25 before training, 0.75 (step 1), 0.75 (step 2), 0.6 (step 5); best is the earlier 0.75.
  REQUIRE(s.evals.size() == 1);
  const EvalStats& e = s.evals[0];
  CHECK(e.name == "math");
  CHECK(e.evaluations == 4);
  CHECK(e.first.step == kBeforeTraining);
  CHECK(e.first.value == 0.25);
  CHECK(e.last.step == 5);
  CHECK(e.last.value == 0.6);
  CHECK(e.best.step == 1);
  CHECK(e.best.value == 0.75);

  // Rewards 0.1 0.3 0.5 0.2 0.4 0.6 (steps 0-5): first 5 -> 1.5 / 5, last 5 -> 2.0 / 5.
  CHECK(s.reward_window == 5);
  REQUIRE(s.reward_first);
  CHECK(*s.reward_first == Approx(0.3));
  CHECK(*s.reward_last == Approx(0.4));

  // Steps with a step time: 0 1 2 3 5 6 (six). rollout 1+1+2+1+1+1 = 7, train 2+3+2+2+1+2 = 12,
  // update 0.5+0.5+1+0+1+0 = 3, eval 0+1+0+0+0+0 = 1, step 4+6+4+3.5+3+3.5 = 24,
  // other 0.5+0.5+0(5 > 4: clamped)+0.5+0+0.5 = 2.
  REQUIRE(s.time);
  CHECK(s.time->steps == 6);
  CHECK_FALSE(s.time->rollout_overlapped);
  CHECK(s.time->rollout == Approx(7.0 / 6));
  CHECK(s.time->train == Approx(2.0));
  CHECK(s.time->update_weights == Approx(0.5));
  CHECK(s.time->eval == Approx(1.0 / 6));
  CHECK(s.time->other == Approx(1.0 / 3));
  CHECK(s.time->step == Approx(4.0));

  // tokens/s: 1000, 3000 (the redone step 1), 2000 -> 2000. Loss: step 5 is the last with one.
  REQUIRE(s.tokens_per_sec);
  CHECK(*s.tokens_per_sec == Approx(2000));
  CHECK_FALSE(s.tokens_per_gpu_per_sec);
  CHECK_FALSE(s.mfu);
  REQUIRE(s.final_loss);
  CHECK(s.final_loss->step == 5);
  CHECK(s.final_loss->value == 0.1);

  const std::string md = summary_markdown(s, "runs/x", {{"reward.png", "Reward", true, ""},
                                                         {"kl.png", "KL", false, "train/ppo_kl absent"}});
  CHECK_THAT(md, Contains("# Run report: `runs/x`"));
  CHECK_THAT(md, Contains("training steps: 7 (rollout_id 0 to 6), 1 redone after a resume"));
  CHECK_THAT(md, Contains("0.3000 (mean of the first 5 steps) -> 0.4000 (mean of the last 5)"));
  CHECK_THAT(md, Contains("| `eval/math` | 4 | 0.2500 (before training) | 0.6000 (step 5) | 0.7500 (step 1) |"));
  CHECK_THAT(md, Contains("| rollout | `perf/rollout_time` | 1.167 | 29.2% |"));
  CHECK_THAT(md, Contains("| train | `perf/train_time` | 2.000 | 50.0% |"));
  CHECK_THAT(md, Contains("| update weights | `perf/update_weights_time` | 0.500 | 12.5% |"));
  CHECK_THAT(md, Contains("| eval | `perf/eval_time` | 0.167 | 4.2% |"));
  CHECK_THAT(md, Contains("| other | step minus the above, at least 0 | 0.333 | 8.3% |"));
  CHECK_THAT(md, Contains("| **step** | `perf/step_time` | 4.000 | 100.0% |"));
  CHECK_THAT(md, Contains("rollout generation: 2000 tokens/s"));
  CHECK_THAT(md, Contains("final `train/loss`: 0.1 (step 5)"));
  CHECK_THAT(md, Contains("![Reward](reward.png)"));
  CHECK_THAT(md, Contains("- kl.png: train/ppo_kl absent"));
}

TEST_CASE("summarize: an SFT run has no reward; --train-async splits on the buffer wait", "[obs][report]") {
  TempDir dir("kinds");
  const RunSummary sft = summarize(read_metrics(dir.write("sft.jsonl",
      R"({"rollout_id":0,"rollout/raw_reward":0.0,"train/loss":4.2,"perf/step_time":0.2,"perf/train_time":0.15}
{"rollout_id":1,"rollout/raw_reward":0.0,"train/loss":3.9,"perf/step_time":0.2,"perf/train_time":0.15}
)")));
  CHECK(sft.sft);
  CHECK_FALSE(sft.reward_first);
  CHECK(sft.evals.empty());
  CHECK_FALSE(sft.eval_before_train);
  CHECK_THAT(summary_markdown(sft, "d", {}), Contains("an SFT run"));

  // Rollout 3 s next to train 3 s in a 3.5 s step: overlapped (6 > 1.1 x 3.5). The rollout part is the 0.25 s
  // wait, other = 3.5 - 0.25 - 3 = 0.25.
  const RunSummary async = summarize(read_metrics(dir.write("async.jsonl",
      R"({"rollout_id":0,"rollout/raw_reward":0.5,"train/pg_loss":0,"perf/rollout_time":3,"perf/buffer_wait_time":0.25,"perf/train_time":3,"perf/step_time":3.5}
)")));
  CHECK_FALSE(async.sft);
  REQUIRE(async.time);
  CHECK(async.time->rollout_overlapped);
  CHECK(async.time->rollout == 0.25);
  CHECK(async.time->other == Approx(0.25));
  CHECK_THAT(summary_markdown(async, "d", {}), Contains("rollout (trainer waiting) | `perf/buffer_wait_time`"));
}

TEST_CASE("read_metrics: bad lines are errors naming file:line", "[obs][report]") {
  TempDir dir("bad");
  const std::string good = R"({"rollout_id":0,"train/loss":1})";
  CHECK_THROWS_WITH(read_metrics(dir.write("a.jsonl", good + "\n\n{\"rollout_id\":1,\n")),
                    Contains("a.jsonl:3: malformed JSON"));
  CHECK_THROWS_WITH(read_metrics(dir.write("b.jsonl", good + "\n[1, 2]\n")),
                    Contains("b.jsonl:2: expected a JSON object, got array"));
  CHECK_THROWS_WITH(read_metrics(dir.write("c.jsonl", "{\"rollout_id\":\"3\"}\n")),
                    Contains("c.jsonl:1: rollout_id: expected integer, got string"));
  CHECK_THROWS_WITH(read_metrics(dir.write("d.jsonl", "{\"rollout_id\":-2}\n")),
                    Contains("d.jsonl:1: rollout_id: expected >= 0"));
  CHECK_THROWS_WITH(read_metrics(dir.path + "/none.jsonl"), Contains("none.jsonl: no such file"));
  // Blank and whitespace-only lines (and CRLF endings) are fine.
  CHECK(read_metrics(dir.write("e.jsonl", "\n  \n" + good + "\r\n\r\n")).steps.size() == 1);
}

TEST_CASE("make_report --no-plots: .dat/.gp files and summary.md", "[obs][report]") {
  TempDir dir("noplots");
  dir.write("metrics.jsonl", kMetrics);
  ReportOptions options;
  options.run_dir = dir.path;
  options.plots = false;
  options.moving_average = 2;
  options.gnuplot = "/nonexistent/gnuplot";  // not needed without plots
  const ReportResult result = make_report(options);
  CHECK(result.out_dir == dir.path + "/report");
  CHECK(result.terminal.empty());
  REQUIRE(result.plots.size() == 8);
  for (const auto& plot : result.plots) {
    const std::string stem = plot.file.substr(0, plot.file.size() - 4);
    CHECK(slime::path_exists(result.out_dir + "/" + stem + ".gp") == plot.made);
    CHECK(slime::path_exists(result.out_dir + "/" + stem + ".dat") == plot.made);
    CHECK_FALSE(slime::path_exists(result.out_dir + "/" + plot.file));
    CHECK(plot.made == (plot.file != "kl.png" && plot.file != "entropy.png"));
  }
  // Rewards 0.1 0.3 0.5 0.2 0.4 0.6 and their 2-step moving average 0.1 0.2 0.4 0.35 0.3 0.5.
  const std::string reward = read(result.out_dir + "/reward.dat");
  CHECK_THAT(reward, Contains("# index 0: rollout/raw_reward\n# step value\n0 0.1\n1 0.3\n2 0.5\n3 0.2\n4 0.4\n"
                              "5 0.6\n"));
  CHECK_THAT(reward, Contains("# index 1: moving average (2 steps)\n# step value\n0 0.1\n1 0.2\n2 0.4\n3 0.35\n4 0.3\n"
                              "5 0.5\n"));
  CHECK_THAT(read(result.out_dir + "/eval.dat"), Contains("# step value\n-1 0.25\n1 0.75\n2 0.75\n5 0.6\n"));
  CHECK_THAT(read(result.out_dir + "/time_split.dat"), Contains("\n2 2.000000 2.000000 1.000000 0.000000 0.000000 "
                                                                "4.000000\n"));
  const std::string gp = read(result.out_dir + "/reward.gp");
  CHECK_THAT(gp, Contains("set output 'reward.png'"));
  CHECK_THAT(gp, Contains("plot 'reward.dat' index 0 using 1:2"));
  const std::string md = read(result.summary_path);
  CHECK_THAT(md, Contains("Not drawn (--no-plots)"));
  CHECK_THAT(md, Contains("- kl.png: train/ppo_kl, train/kl_loss absent"));
  CHECK_THAT(md, Contains("- entropy.png: train/entropy_loss absent"));

  // A skipped plot's stale files from an earlier report are removed.
  dir.write("report/kl.png", "old");
  make_report(options);
  CHECK_FALSE(slime::path_exists(result.out_dir + "/kl.png"));
}

TEST_CASE("make_report errors: run dir, metrics.jsonl, gnuplot", "[obs][report]") {
  TempDir dir("errors");
  ReportOptions options;
  options.run_dir = dir.path + "/missing";
  CHECK_THROWS_WITH(make_report(options), Contains("missing does not exist"));
  options.run_dir = dir.path;
  CHECK_THROWS_WITH(make_report(options), Contains("has no metrics.jsonl"));

  dir.write("metrics.jsonl", "\n\n");
  CHECK_THROWS_WITH(make_report(options), Contains("metrics.jsonl: no records"));
  dir.write("metrics.jsonl", kMetrics);
  options.gnuplot = "/nonexistent/gnuplot";
  CHECK_THROWS_WITH(make_report(options), Contains("apt-get install gnuplot-nox"));
  options.gnuplot = "slime-no-such-gnuplot";
  CHECK_THROWS_WITH(make_report(options), Contains("'slime-no-such-gnuplot' was not found on PATH"));

  // A gnuplot that has the terminals (-e 'set terminal ...' succeeds) but fails on the scripts.
  const std::string fake = dir.write("fake-gnuplot", "#!/bin/sh\n[ \"$1\" = -e ] && exit 0\n"
                                                     "echo \"line 3: boom in $1\" >&2\nexit 1\n");
  REQUIRE(::chmod(fake.c_str(), 0755) == 0);
  options.gnuplot = fake;
  CHECK_THROWS_WITH(make_report(options), Contains("gnuplot failed on " + dir.path + "/report/reward.gp (exit "
                                                   "status 1):\nline 3: boom in reward.gp"));
  // One that succeeds without writing the PNG.
  const std::string silent = dir.write("silent-gnuplot", "#!/bin/sh\nexit 0\n");
  REQUIRE(::chmod(silent.c_str(), 0755) == 0);
  options.gnuplot = silent;
  CHECK_THROWS_WITH(make_report(options), Contains("but wrote no " + dir.path + "/report/reward.png"));

  options.moving_average = 0;
  CHECK_THROWS_WITH(make_report(options), Contains("--moving-average"));
}
