// slime-report: plots (drawn by gnuplot) and a one-page Markdown summary of a training run's metrics.jsonl.
//   RunMetrics run = read_metrics("runs/demo/rl/metrics.jsonl");   // parsed, a redone step's later line wins
//   RunSummary s = summarize(run);                                   // the numbers summary.md shows
//   ReportOptions options;
//   options.run_dir = "runs/demo/rl";
//   make_report(options);                       // runs/demo/rl/report/: <plot>.png/.dat/.gp and summary.md
// Each plot is a .dat (the data) and a .gp (the gnuplot script, run from the output directory) next to its .png,
// so a user can edit and re-run one with `cd report && gnuplot reward.gp`. docs/observability.md describes them.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace slime::obs {

// The numeric values of one metrics line ("phase" and other strings, booleans and nulls are left out).
using MetricValues = std::map<std::string, double>;

struct RunMetrics {
  std::string path;
  std::map<int64_t, MetricValues> steps;     // rollout_id -> the values of the LAST line written for it
  std::optional<MetricValues> before_train;  // the evaluation before training (a line without rollout_id)
  int64_t records = 0;                       // non-blank lines read
  std::vector<int64_t> redone_steps;         // rollout_ids written more than once (a resume repeated them)
};

// Reads a metrics.jsonl. Blank lines are skipped; a line that is not a JSON object, or whose rollout_id is not an
// integer, is an error naming "<path>:<line>".
RunMetrics read_metrics(const std::string& path);

struct StepValue {
  int64_t step = 0;  // rollout_id; kBeforeTraining for the evaluation before training
  double value = 0;
};
inline constexpr int64_t kBeforeTraining = -1;

// The steps that have `key`, in step order.
std::vector<StepValue> series(const RunMetrics& run, const std::string& key);
// See RunSummary::sft.
bool is_sft_run(const RunMetrics& run);
// Eval set names: keys "eval/<name>" with no further '/' (eval/<name>/response_len/mean is not an accuracy),
// from the steps and the evaluation before training, sorted.
std::vector<std::string> eval_names(const RunMetrics& run);

struct EvalStats {
  std::string name;  // the <name> of eval/<name>
  StepValue first, last, best;  // first includes the evaluation before training; best: highest, earliest on ties
  int64_t evaluations = 0;
};

// Mean seconds per step, over the steps that have perf/step_time (a component missing on a step counts 0 there).
struct TimeSplit {
  int64_t steps = 0;
  double step = 0;                // mean perf/step_time
  double rollout = 0;             // mean perf/rollout_time, or perf/buffer_wait_time when rollout_overlapped
  double train = 0;               // perf/train_time
  double update_weights = 0;      // perf/update_weights_time
  double eval = 0;                // perf/eval_time
  double other = 0;               // mean of max(0, step - rollout - train - update_weights - eval)
  // The rollouts ran alongside training (--train-async): rollout + train + ... exceeds the step by more than 10%
  // over the run. The rollout part of the split is then the trainer's wait for it (perf/buffer_wait_time).
  bool rollout_overlapped = false;
};

struct RunSummary {
  std::string metrics_path;
  int64_t records = 0;
  int64_t steps = 0;  // distinct rollout_ids
  int64_t first_step = 0, last_step = 0;
  std::vector<int64_t> redone_steps;
  bool eval_before_train = false;
  std::vector<EvalStats> evals;
  // An SFT run: no train/pg_loss or train/ppo_kl, and rollout/raw_reward 0 at every step (slime-hpc's SFT rollout
  // records a zero reward). Its reward is left out of the summary and the plots.
  bool sft = false;
  // rollout/raw_reward: the mean of the first and of the last `reward_window` (= min(5, steps with a reward)) steps.
  int64_t reward_window = 0;
  std::optional<double> reward_first, reward_last;
  std::optional<TimeSplit> time;
  std::optional<double> tokens_per_sec, tokens_per_gpu_per_sec, mfu;  // means over the steps that have them
  std::optional<StepValue> final_loss;                                 // train/loss of the last step with one
};

RunSummary summarize(const RunMetrics& run);
// The per-step time split summarize() averages (same rules), one entry per step that has perf/step_time.
struct StepTimes {
  int64_t step = 0;
  double rollout = 0, train = 0, update_weights = 0, eval = 0, other = 0, step_time = 0;
};
std::vector<StepTimes> step_times(const RunMetrics& run, bool* rollout_overlapped = nullptr);

struct PlotOutcome {
  std::string file;    // "reward.png"
  std::string title;   // what it shows
  bool made = false;   // false: every metric it draws is absent
  std::string reason;  // why it was skipped: the metrics it looked for
};

// summary.md: `plots` lists what make_report wrote (and skipped), embedded as images when `drawn` (false:
// --no-plots, only the .dat/.gp files exist); `run_dir` is shown as given.
std::string summary_markdown(const RunSummary& summary, const std::string& run_dir,
                             const std::vector<PlotOutcome>& plots, bool drawn = true);

struct ReportOptions {
  std::string run_dir;        // holds metrics.jsonl (a path to a .jsonl file is accepted too)
  std::string out_dir;        // default <run_dir>/report
  int64_t moving_average = 10;  // window of the reward's trailing moving average, in steps
  std::string gnuplot = "gnuplot";  // program name (searched on PATH) or path
  bool plots = true;          // false: write the .dat/.gp files and summary.md, run no gnuplot
};

struct ReportResult {
  std::string out_dir;
  std::string summary_path;
  std::string terminal;  // "pngcairo" or "png" (empty without plots)
  std::vector<PlotOutcome> plots;
};

// Errors (slime::Error): run_dir or metrics.jsonl missing, a malformed line, gnuplot not installed (the message
// says how to install it), gnuplot failing on a script (the message has its stderr), a PNG not written.
ReportResult make_report(const ReportOptions& options);

}  // namespace slime::obs
