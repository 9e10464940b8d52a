// slime-report's library: metrics.jsonl -> deduplicated steps -> summary numbers, and per plot a .dat (one block
// per series, `index i` in gnuplot, so a sparse series such as an eval set still draws as one connected line) and
// a .gp script run by the gnuplot program from the output directory.
#include "obs/report.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "core/io.h"

namespace slime::obs {
namespace {

using nlohmann::json;

std::string fmt(const char* format, double value) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, value);
  return buf;
}

double value_or(const MetricValues& values, const std::string& key, double fallback) {
  auto it = values.find(key);
  return it == values.end() ? fallback : it->second;
}

double mean(const std::vector<double>& values) {
  double sum = 0;
  for (double v : values) sum += v;
  return values.empty() ? 0.0 : sum / static_cast<double>(values.size());
}

std::optional<double> mean_of(const RunMetrics& run, const std::string& key) {
  std::vector<double> values;
  for (const auto& p : series(run, key)) values.push_back(p.value);
  if (values.empty()) return std::nullopt;
  return mean(values);
}

std::string step_name(int64_t step) {
  return step == kBeforeTraining ? std::string("before training") : cat("step ", step);
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------------
// metrics.jsonl -> RunMetrics -> RunSummary

RunMetrics read_metrics(const std::string& path) {
  SLIME_CHECK(path_exists(path), path, ": no such file (slime-train writes metrics.jsonl into its --save directory)");
  const std::string text = read_text_file(path);
  RunMetrics run;
  run.path = path;
  std::map<int64_t, int64_t> times_written;
  std::istringstream in(text);
  std::string line;
  for (int64_t number = 1; std::getline(in, line); ++number) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = cat(path, ":", number);
    json record;
    try {
      record = json::parse(line);
    } catch (const json::parse_error& e) {
      SLIME_FAIL(where, ": malformed JSON: ", e.what());
    }
    SLIME_CHECK(record.is_object(), where, ": expected a JSON object, got ", json_type_name(record));
    MetricValues values;
    for (auto it = record.begin(); it != record.end(); ++it)
      if (it.value().is_number() && it.key() != "rollout_id") values[it.key()] = it.value().get<double>();
    ++run.records;
    auto id = record.find("rollout_id");
    if (id == record.end()) {
      run.before_train = std::move(values);  // a repeated evaluation before training: the later one wins too
      continue;
    }
    SLIME_CHECK(id->is_number_integer(), where, ": rollout_id: expected integer, got ", json_type_name(*id));
    const int64_t step = id->get<int64_t>();
    SLIME_CHECK(step >= 0, where, ": rollout_id: expected >= 0, got ", step);
    run.steps[step] = std::move(values);
    if (++times_written[step] == 2) run.redone_steps.push_back(step);
  }
  std::sort(run.redone_steps.begin(), run.redone_steps.end());
  return run;
}

std::vector<StepValue> series(const RunMetrics& run, const std::string& key) {
  std::vector<StepValue> points;
  for (const auto& [step, values] : run.steps) {
    auto it = values.find(key);
    if (it != values.end()) points.push_back({step, it->second});
  }
  return points;
}

bool is_sft_run(const RunMetrics& run) {
  const std::vector<StepValue> reward = series(run, "rollout/raw_reward");
  return !reward.empty() && series(run, "train/pg_loss").empty() && series(run, "train/ppo_kl").empty() &&
         std::all_of(reward.begin(), reward.end(), [](const StepValue& p) { return p.value == 0.0; });
}

namespace {

// An eval key's points, the evaluation before training first (at kBeforeTraining).
std::vector<StepValue> eval_series(const RunMetrics& run, const std::string& key) {
  std::vector<StepValue> points;
  if (run.before_train) {
    auto it = run.before_train->find(key);
    if (it != run.before_train->end()) points.push_back({kBeforeTraining, it->second});
  }
  for (const auto& p : series(run, key)) points.push_back(p);
  return points;
}

}  // namespace

std::vector<std::string> eval_names(const RunMetrics& run) {
  std::vector<std::string> names;
  auto collect = [&](const MetricValues& values) {
    for (const auto& [key, value] : values)
      if (key.rfind("eval/", 0) == 0 && key.size() > 5 && key.find('/', 5) == std::string::npos)
        names.push_back(key.substr(5));
  };
  if (run.before_train) collect(*run.before_train);
  for (const auto& [step, values] : run.steps) collect(values);
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  return names;
}

std::vector<StepTimes> step_times(const RunMetrics& run, bool* rollout_overlapped) {
  std::vector<StepTimes> times;
  double parts = 0, steps = 0;
  bool have_wait = false;
  for (const auto& [step, values] : run.steps) {
    if (!values.count("perf/step_time")) continue;
    StepTimes t;
    t.step = step;
    t.step_time = values.at("perf/step_time");
    t.rollout = value_or(values, "perf/rollout_time", 0);
    t.train = value_or(values, "perf/train_time", 0);
    t.update_weights = value_or(values, "perf/update_weights_time", 0);
    t.eval = value_or(values, "perf/eval_time", 0);
    parts += t.rollout + t.train + t.update_weights + t.eval;
    steps += t.step_time;
    have_wait = have_wait || values.count("perf/buffer_wait_time");
    times.push_back(t);
  }
  // --train-async: the next rollout is generated while this step trains, so rollout_time is not on the step's
  // critical path; what the step spends on the rollout is the trainer's wait for it.
  const bool overlapped = have_wait && parts > 1.1 * steps;
  for (StepTimes& t : times) {
    if (overlapped) t.rollout = value_or(run.steps.at(t.step), "perf/buffer_wait_time", 0);
    t.other = std::max(0.0, t.step_time - t.rollout - t.train - t.update_weights - t.eval);
  }
  if (rollout_overlapped) *rollout_overlapped = overlapped;
  return times;
}

RunSummary summarize(const RunMetrics& run) {
  RunSummary s;
  s.metrics_path = run.path;
  s.records = run.records;
  s.steps = static_cast<int64_t>(run.steps.size());
  if (!run.steps.empty()) {
    s.first_step = run.steps.begin()->first;
    s.last_step = run.steps.rbegin()->first;
  }
  s.redone_steps = run.redone_steps;
  for (const std::string& name : eval_names(run)) {
    const std::vector<StepValue> points = eval_series(run, "eval/" + name);
    if (points.empty()) continue;
    EvalStats e;
    e.name = name;
    e.first = points.front();
    e.last = points.back();
    e.best = points.front();
    for (const auto& p : points)
      if (p.value > e.best.value) e.best = p;
    e.evaluations = static_cast<int64_t>(points.size());
    if (e.first.step == kBeforeTraining) s.eval_before_train = true;
    s.evals.push_back(e);
  }
  s.sft = is_sft_run(run);
  const std::vector<StepValue> reward = s.sft ? std::vector<StepValue>{} : series(run, "rollout/raw_reward");
  if (!reward.empty()) {
    const size_t n = std::min<size_t>(5, reward.size());
    std::vector<double> first, last;
    for (size_t i = 0; i < n; ++i) {
      first.push_back(reward[i].value);
      last.push_back(reward[reward.size() - n + i].value);
    }
    s.reward_window = static_cast<int64_t>(n);
    s.reward_first = mean(first);
    s.reward_last = mean(last);
  }
  bool overlapped = false;
  const std::vector<StepTimes> times = step_times(run, &overlapped);
  if (!times.empty()) {
    TimeSplit t;
    t.steps = static_cast<int64_t>(times.size());
    t.rollout_overlapped = overlapped;
    for (const auto& st : times) {
      t.step += st.step_time;
      t.rollout += st.rollout;
      t.train += st.train;
      t.update_weights += st.update_weights;
      t.eval += st.eval;
      t.other += st.other;
    }
    for (double* v : {&t.step, &t.rollout, &t.train, &t.update_weights, &t.eval, &t.other})
      *v /= static_cast<double>(t.steps);
    s.time = t;
  }
  s.tokens_per_sec = mean_of(run, "perf/tokens_per_sec");
  s.tokens_per_gpu_per_sec = mean_of(run, "perf/tokens_per_gpu_per_sec");
  s.mfu = mean_of(run, "perf/mfu");
  const std::vector<StepValue> loss = series(run, "train/loss");
  if (!loss.empty()) s.final_loss = loss.back();
  return s;
}

// ---------------------------------------------------------------------------------------------------------------
// summary.md

std::string summary_markdown(const RunSummary& s, const std::string& run_dir, const std::vector<PlotOutcome>& plots,
                             bool drawn) {
  std::ostringstream md;
  md << "# Run report: `" << run_dir << "`\n\n";
  md << "- metrics: `" << s.metrics_path << "` (" << s.records << " records)\n";
  if (s.steps == 0) {
    md << "- training steps: none recorded\n";
  } else {
    md << "- training steps: " << s.steps << " (rollout_id " << s.first_step << " to " << s.last_step << ")";
    if (s.redone_steps.empty()) {
      md << ", none redone\n";
    } else {
      md << ", " << s.redone_steps.size() << " redone after a resume (the later record is used): ";
      for (size_t i = 0; i < s.redone_steps.size(); ++i) md << (i ? ", " : "") << s.redone_steps[i];
      md << "\n";
    }
  }
  if (s.reward_first)
    md << "- reward (`rollout/raw_reward`): " << fmt("%.4f", *s.reward_first) << " (mean of the first "
       << s.reward_window << " steps) -> " << fmt("%.4f", *s.reward_last) << " (mean of the last " << s.reward_window
       << ")\n";
  else if (s.sft)
    md << "- reward: none (an SFT run: no `train/pg_loss`, and `rollout/raw_reward` is 0 at every step)\n";
  else
    md << "- reward: no `rollout/raw_reward` recorded\n";
  if (s.final_loss)
    md << "- final `train/loss`: " << fmt("%.6g", s.final_loss->value) << " (step " << s.final_loss->step << ")\n";
  if (s.tokens_per_sec)
    md << "- rollout generation: " << fmt("%.0f", *s.tokens_per_sec) << " tokens/s (mean `perf/tokens_per_sec`)\n";
  if (s.tokens_per_gpu_per_sec)
    md << "- training: " << fmt("%.0f", *s.tokens_per_gpu_per_sec)
       << " tokens/s per GPU (mean `perf/tokens_per_gpu_per_sec`)\n";
  if (s.mfu) md << "- MFU: " << fmt("%.4g", *s.mfu) << " (mean `perf/mfu`)\n";

  md << "\n## Evaluation\n\n";
  if (s.evals.empty()) {
    md << "No `eval/<name>` metrics.\n";
  } else {
    md << "| eval set | evaluations | first | last | best |\n|---|---:|---|---|---|\n";
    for (const auto& e : s.evals) {
      auto cell = [](const StepValue& p) { return cat(fmt("%.4f", p.value), " (", step_name(p.step), ")"); };
      md << "| `eval/" << e.name << "` | " << e.evaluations << " | " << cell(e.first) << " | " << cell(e.last)
         << " | " << cell(e.best) << " |\n";
    }
  }

  md << "\n## Time per step\n\n";
  if (!s.time) {
    md << "No `perf/step_time` recorded.\n";
  } else {
    const TimeSplit& t = *s.time;
    auto row = [&](const char* phase, const char* keys, double seconds) {
      md << "| " << phase << " | " << keys << " | " << fmt("%.3f", seconds) << " | "
         << fmt("%.1f", t.step > 0 ? 100.0 * seconds / t.step : 0.0) << "% |\n";
    };
    md << "Mean over " << t.steps << " steps.\n\n| part | metric | seconds | % of step |\n|---|---|---:|---:|\n";
    if (t.rollout_overlapped)
      row("rollout (trainer waiting)", "`perf/buffer_wait_time`", t.rollout);
    else
      row("rollout", "`perf/rollout_time`", t.rollout);
    row("train", "`perf/train_time`", t.train);
    row("update weights", "`perf/update_weights_time`", t.update_weights);
    row("eval", "`perf/eval_time`", t.eval);
    row("other", "step minus the above, at least 0", t.other);
    row("**step**", "`perf/step_time`", t.step);
    if (t.rollout_overlapped)
      md << "\nThe rollouts overlapped training (`--train-async`): the rollout part is the trainer's wait for it, "
            "not the generation time.\n";
  }

  md << "\n## Plots\n\n";
  std::vector<const PlotOutcome*> skipped;
  for (const auto& p : plots) {
    if (!p.made) skipped.push_back(&p);
    else if (drawn) md << "![" << p.title << "](" << p.file << ")\n\n";
  }
  if (!drawn)
    md << "Not drawn (--no-plots): the .dat and .gp files are here; `gnuplot <name>.gp` in this directory draws "
          "<name>.png.\n";
  if (!skipped.empty()) {
    md << (drawn ? "" : "\n") << "Skipped (no data):\n\n";
    for (const auto* p : skipped) md << "- " << p->file << ": " << p->reason << "\n";
  }
  return md.str();
}

// ---------------------------------------------------------------------------------------------------------------
// Plots: .dat + .gp

namespace {

struct Line {
  std::string title;                  // legend entry (the metric key)
  std::vector<StepValue> points;
  std::string style;                  // gnuplot "with ..." clause
  bool right_axis = false;            // plotted against y2
  double scale = 1;                   // multiplies the values in the .dat
};

struct Plot {
  std::string name;  // file stem
  std::string title, ylabel, y2label;
  std::vector<Line> lines;
  std::vector<std::string> settings;  // extra gnuplot commands
  std::string skip_reason;            // why it is skipped when no line has a point
};

// gnuplot single-quoted string: no escapes, a quote is doubled.
std::string gp_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += (c == '\'') ? std::string("''") : std::string(1, c);
  return out + "'";
}

std::string terminal_line(const std::string& terminal) {
  if (terminal == "png") return "set terminal png size 900,500 noenhanced";
  return "set terminal pngcairo size 900,500 noenhanced font 'sans,10'";
}

std::string gp_header(const std::string& name, const std::string& title, const std::string& terminal,
                      const std::string& source, int64_t min_step, int64_t max_step) {
  std::ostringstream gp;
  gp << "# " << title << ": drawn by slime-report from " << source << "\n# Re-run from this directory: gnuplot "
     << name << ".gp\n";
  gp << terminal_line(terminal) << "\nset output " << gp_quote(name + ".png") << "\n";
  gp << "set title " << gp_quote(title) << "\nset xlabel 'rollout step'\nset grid\n";
  gp << "set key below\n";
  // The x axis spans the steps (plus half a step each side), not the next round tic.
  gp << "set autoscale xfix\nset offsets 0.5, 0.5, graph 0.05, graph 0.05\n";
  if (max_step - min_step <= 20) gp << "set xtics 1\n";
  return gp.str();
}

bool dense(const Line& line) { return line.points.size() > 60; }
// A right-axis series: thin and gray, under the main ones.
std::string secondary_style(const Line& line) {
  return dense(line) ? "lines lw 1 lc rgb 'gray40'" : "linespoints pt 2 ps 0.8 lw 1 lc rgb 'gray40'";
}

// Writes <name>.dat and <name>.gp; false (nothing written) when no line has a point.
bool write_plot(Plot plot, const std::string& out_dir, const std::string& terminal, const std::string& source) {
  plot.lines.erase(std::remove_if(plot.lines.begin(), plot.lines.end(),
                                  [](const Line& l) { return l.points.empty(); }),
                   plot.lines.end());
  if (plot.lines.empty()) return false;
  int64_t min_step = plot.lines[0].points.front().step, max_step = min_step;
  bool right = false;
  std::ostringstream dat;
  dat << "# " << plot.title << " (slime-report, from " << source << ")\n";
  for (size_t i = 0; i < plot.lines.size(); ++i) {
    const Line& line = plot.lines[i];
    dat << (i ? "\n\n" : "") << "# index " << i << ": " << line.title << "\n# step value\n";
    for (const auto& p : line.points) {
      dat << p.step << " " << fmt("%.10g", p.value * line.scale) << "\n";
      min_step = std::min(min_step, p.step);
      max_step = std::max(max_step, p.step);
    }
    right = right || line.right_axis;
  }
  std::ostringstream gp;
  gp << gp_header(plot.name, plot.title, terminal, source, min_step, max_step);
  gp << "set ylabel " << gp_quote(plot.ylabel) << "\n";
  if (right) gp << "set ytics nomirror\nset y2tics\nset y2label " << gp_quote(plot.y2label) << "\n";
  for (const auto& s : plot.settings) gp << s << "\n";
  gp << "plot ";
  for (size_t i = 0; i < plot.lines.size(); ++i) {
    const Line& line = plot.lines[i];
    std::string style = line.style;
    if (style.empty()) style = dense(line) ? "lines lw 2" : "linespoints pt 7 ps 0.8 lw 2";
    gp << (i ? ", \\\n     " : "") << (i ? "''" : gp_quote(plot.name + ".dat")) << " index " << i
       << " using 1:2" << (line.right_axis ? " axes x1y2" : "") << " with " << style << " title "
       << gp_quote(line.title + (line.right_axis && right ? " (right axis)" : ""));
  }
  gp << "\n";
  write_file_atomic(path_join(out_dir, plot.name + ".dat"), dat.str());
  write_file_atomic(path_join(out_dir, plot.name + ".gp"), gp.str());
  return true;
}

// The trailing moving average over `window` steps (fewer at the start).
std::vector<StepValue> moving_average(const std::vector<StepValue>& points, int64_t window) {
  std::vector<StepValue> out;
  double sum = 0;
  for (size_t i = 0; i < points.size(); ++i) {
    sum += points[i].value;
    if (i >= static_cast<size_t>(window)) sum -= points[i - static_cast<size_t>(window)].value;
    const double n = static_cast<double>(std::min<size_t>(i + 1, static_cast<size_t>(window)));
    out.push_back({points[i].step, sum / n});
  }
  return out;
}

std::vector<Plot> line_plots(const RunMetrics& run, int64_t window) {
  std::vector<Plot> plots;
  {
    const bool sft = is_sft_run(run);
    Plot p{"reward", "Training reward per rollout step", "mean raw reward", "", {}, {},
           sft ? "an SFT run: rollout/raw_reward 0 throughout, no train/pg_loss" : "rollout/raw_reward absent"};
    const auto reward = sft ? std::vector<StepValue>{} : series(run, "rollout/raw_reward");
    const bool many = reward.size() > 60;
    p.lines.push_back({"rollout/raw_reward", reward,
                       many ? "lines lw 1 lc rgb '#9ecae1'" : "linespoints pt 7 ps 0.8 lw 1 lc rgb '#6baed6'"});
    if (!reward.empty())
      p.lines.push_back({cat("moving average (", window, " steps)"), moving_average(reward, window),
                         "lines lw 3 lc rgb '#08519c'"});
    plots.push_back(p);
  }
  {
    Plot p{"eval", "Evaluation accuracy", "accuracy (mean reward)", "", {}, {}, "eval/<name> absent"};
    std::vector<StepValue> before;
    int label = 0;
    for (const std::string& name : eval_names(run)) {
      const auto points = eval_series(run, "eval/" + name);
      p.lines.push_back({"eval/" + name, points, "linespoints pt 7 ps 1 lw 2"});
      if (!points.empty() && points.front().step == kBeforeTraining) {
        before.push_back(points.front());
        if (++label <= 3)
          p.settings.push_back(cat("set label ", label, " 'before training' at ", kBeforeTraining, ", ",
                                   fmt("%.10g", points.front().value), " offset char 1, char -1"));
      }
    }
    p.lines.push_back({cat("before training (plotted at step ", kBeforeTraining, ")"), before,
                       "points pt 6 ps 2.5 lw 2 lc rgb 'black'"});
    plots.push_back(p);
  }
  {
    Plot p{"response_length", "Response length", "mean response length (tokens)", "truncated ratio",
           {}, {}, "rollout/response_len/mean, eval/<name>/response_len/mean absent"};
    p.lines.push_back({"rollout/response_len/mean", series(run, "rollout/response_len/mean"), ""});
    for (const std::string& name : eval_names(run))
      p.lines.push_back({"eval/" + name + "/response_len/mean", eval_series(run, "eval/" + name + "/response_len/mean"),
                         "linespoints pt 5 ps 0.8 lw 2 dt 2"});
    const bool any = std::any_of(p.lines.begin(), p.lines.end(), [](const Line& l) { return !l.points.empty(); });
    if (any) {
      Line truncated{"rollout/truncated_ratio", series(run, "rollout/truncated_ratio"), "", true};
      truncated.style = secondary_style(truncated);
      p.lines.push_back(truncated);
      p.settings.push_back("set y2range [0:*]");
    }
    plots.push_back(p);
  }
  {
    Plot p{"kl", "KL divergence", "KL", "", {}, {}, "train/ppo_kl, train/kl_loss absent"};
    p.lines.push_back({"train/ppo_kl", series(run, "train/ppo_kl"), ""});
    p.lines.push_back({"train/kl_loss", series(run, "train/kl_loss"), ""});
    plots.push_back(p);
  }
  {
    Plot p{"entropy", "Policy entropy", "entropy (nats/token)", "", {}, {}, "train/entropy_loss absent"};
    p.lines.push_back({"train/entropy_loss", series(run, "train/entropy_loss"), ""});
    plots.push_back(p);
  }
  {
    Plot p{"loss", "Training loss", "loss", "gradient norm", {}, {}, "train/loss, train/pg_loss absent"};
    p.lines.push_back({"train/loss", series(run, "train/loss"), ""});
    p.lines.push_back({"train/pg_loss", series(run, "train/pg_loss"), ""});
    p.lines[1].style = dense(p.lines[1]) ? "lines lw 2 dt 2" : "linespoints pt 4 ps 1.2 lw 2 dt 2";
    if (!p.lines[0].points.empty() || !p.lines[1].points.empty()) {
      Line grad{"train/grad_norm", series(run, "train/grad_norm"), "", true};
      grad.style = secondary_style(grad);
      p.lines.push_back(grad);
    }
    plots.push_back(p);
  }
  {
    Plot p{"throughput", "Throughput", "tokens/s", "MFU (%)", {}, {},
           "perf/tokens_per_sec, perf/tokens_per_gpu_per_sec, perf/mfu absent"};
    p.lines.push_back({"perf/tokens_per_sec (rollout generation)", series(run, "perf/tokens_per_sec"), ""});
    p.lines.push_back({"perf/tokens_per_gpu_per_sec (training, per GPU)",
                       series(run, "perf/tokens_per_gpu_per_sec"), ""});
    Line mfu{"perf/mfu", series(run, "perf/mfu"), "", true};
    // MFU is a fraction; a run that logged percent already (a value above 1) is drawn as it is.
    const bool fraction = std::all_of(mfu.points.begin(), mfu.points.end(), [](const StepValue& v) {
      return v.value <= 1.0;
    });
    if (fraction) mfu.scale = 100;
    mfu.title += fraction ? " x 100" : "";
    p.lines.push_back(mfu);
    p.settings.push_back("set yrange [0:*]\nset y2range [0:*]\nset offsets 0.5, 0.5, graph 0.05, 0");
    plots.push_back(p);
  }
  return plots;
}

// time_split: one row per step, stacked boxes (each box is the sum of its part and those below it).
bool write_time_split(const RunMetrics& run, const std::string& out_dir, const std::string& terminal,
                      const std::string& source) {
  bool overlapped = false;
  const std::vector<StepTimes> times = step_times(run, &overlapped);
  if (times.empty()) return false;
  std::ostringstream dat;
  dat << "# Time per step in seconds (slime-report, from " << source << ")\n";
  dat << "# other = step_time - (rollout + train + update_weights + eval), at least 0\n";
  if (overlapped) dat << "# rollout = perf/buffer_wait_time: the rollouts overlapped training (--train-async)\n";
  dat << "# step rollout train update_weights eval other step_time\n";
  for (const auto& t : times)
    dat << t.step << " " << fmt("%.6f", t.rollout) << " " << fmt("%.6f", t.train) << " "
        << fmt("%.6f", t.update_weights) << " " << fmt("%.6f", t.eval) << " " << fmt("%.6f", t.other) << " "
        << fmt("%.6f", t.step_time) << "\n";
  const std::string title = "Time per step";
  std::ostringstream gp;
  gp << gp_header("time_split", title, terminal, source, times.front().step, times.back().step);
  gp << "set ylabel 'seconds (s)'\nset yrange [0:*]\nset offsets 0.5, 0.5, graph 0.05, 0\n";
  gp << "set style fill solid 0.9 noborder\nset key outside right center vertical invert  # the stack's order\n";
  // Each part is a box from the sum of the parts below it to that sum plus itself (columns 2-6 bottom to top).
  const bool dense_steps = times.size() > 60;
  gp << "w = " << (dense_steps ? "0.5" : "0.4") << "  # half a bar's width, in steps\n";
  const std::string rollout = overlapped ? "rollout: trainer waiting (perf/buffer_wait_time)" : "rollout";
  const char* parts[][3] = {{"0", "$2", "'#1f77b4'"}, {"$2", "$2+$3", "'#ff7f0e'"}, {"$2+$3", "$2+$3+$4", "'#2ca02c'"},
                            {"$2+$3+$4", "$2+$3+$4+$5", "'#d62728'"}, {"$2+$3+$4+$5", "$2+$3+$4+$5+$6", "'#b0b0b0'"}};
  const std::string titles[] = {rollout, "train", "update weights", "eval", "other (rest of the step)"};
  gp << "plot ";
  for (int i = 0; i < 5; ++i)
    gp << (i ? ", \\\n     '' " : "'time_split.dat' ") << "using 1:(" << parts[i][1] << "):($1-w):($1+w):("
       << parts[i][0] << "):(" << parts[i][1] << ") with boxxyerror lc rgb " << parts[i][2] << " title "
       << gp_quote(titles[i]);
  // A bar's top is the step time unless its parts add up to more ("other" clamped at 0): on many steps, the step
  // time is marked only there.
  if (dense_steps)
    gp << ", \\\n     '' using 1:($2+$3+$4+$5 > 1.001*$7 ? $7 : NaN) with points pt 7 ps 0.5 lc rgb 'black' "
          "title 'step time, where below the top'";
  else
    gp << ", \\\n     '' using 1:7 with points pt 7 ps 0.8 lc rgb 'black' title 'step time (perf/step_time)'";
  gp << "\n";
  write_file_atomic(path_join(out_dir, "time_split.dat"), dat.str());
  write_file_atomic(path_join(out_dir, "time_split.gp"), gp.str());
  return true;
}

// ---------------------------------------------------------------------------------------------------------------
// Running gnuplot

struct ProcessResult {
  int exit_code = 0;
  std::string stderr_text;
};

// Runs argv[0] (searched on PATH) in `cwd` with stdin and stdout on /dev/null; returns its status and stderr.
ProcessResult run_process(const std::vector<std::string>& argv, const std::string& cwd) {
  int err_pipe[2];
  SLIME_CHECK(::pipe(err_pipe) == 0, "pipe: ", std::strerror(errno));
  const pid_t pid = ::fork();
  SLIME_CHECK(pid >= 0, "fork: ", std::strerror(errno));
  if (pid == 0) {
    ::close(err_pipe[0]);
    ::dup2(err_pipe[1], STDERR_FILENO);
    ::close(err_pipe[1]);
    const int devnull = ::open("/dev/null", O_RDWR);
    if (devnull >= 0) {
      ::dup2(devnull, STDIN_FILENO);
      ::dup2(devnull, STDOUT_FILENO);
    }
    if (::chdir(cwd.c_str()) != 0) {
      std::fprintf(stderr, "cannot enter %s: %s\n", cwd.c_str(), std::strerror(errno));
      ::_exit(126);
    }
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    std::fprintf(stderr, "cannot run %s: %s\n", args[0], std::strerror(errno));
    ::_exit(127);
  }
  ::close(err_pipe[1]);
  ProcessResult result;
  char buf[4096];
  for (ssize_t n; (n = ::read(err_pipe[0], buf, sizeof buf)) != 0;) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    result.stderr_text.append(buf, static_cast<size_t>(n));
  }
  ::close(err_pipe[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

// The program's path: `name` itself when it has a '/', else the first executable match on PATH; "" if none.
std::string find_program(const std::string& name) {
  auto executable = [](const std::string& path) {
    struct stat st;
    return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
  };
  if (name.find('/') != std::string::npos) return executable(name) ? name : "";
  const char* env = std::getenv("PATH");
  std::istringstream dirs(env ? env : "/usr/local/bin:/usr/bin:/bin");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    const std::string candidate = path_join(dir.empty() ? "." : dir, name);
    if (executable(candidate)) return candidate;
  }
  return "";
}

// "pngcairo" when gnuplot has it (antialiased), else "png".
std::string png_terminal(const std::string& gnuplot, const std::string& cwd) {
  const ProcessResult cairo = run_process({gnuplot, "-e", "set terminal pngcairo"}, cwd);
  if (cairo.exit_code == 0) return "pngcairo";
  const ProcessResult gd = run_process({gnuplot, "-e", "set terminal png"}, cwd);
  SLIME_CHECK(gd.exit_code == 0, gnuplot, " has neither the pngcairo nor the png terminal (install gnuplot-nox: "
              "apt-get install gnuplot-nox):\n", cairo.stderr_text, gd.stderr_text);
  return "png";
}

void remove_if_present(const std::string& path) {
  std::error_code ignored;
  std::filesystem::remove(path, ignored);
}

}  // namespace

ReportResult make_report(const ReportOptions& options) {
  SLIME_CHECK(options.moving_average >= 1, "--moving-average: expected a window of at least 1 step, got ",
              options.moving_average);
  SLIME_CHECK(path_exists(options.run_dir), "run directory ", options.run_dir, " does not exist");
  std::string metrics_path = options.run_dir, base_dir = options.run_dir;
  if (is_directory(options.run_dir)) {
    metrics_path = path_join(options.run_dir, "metrics.jsonl");
    SLIME_CHECK(path_exists(metrics_path), options.run_dir, " has no metrics.jsonl (slime-train writes it into its "
                "--save directory, or to --metrics-file)");
  } else {
    base_dir = std::filesystem::path(options.run_dir).parent_path().string();
    if (base_dir.empty()) base_dir = ".";
  }
  const RunMetrics run = read_metrics(metrics_path);
  SLIME_CHECK(run.records > 0, metrics_path, ": no records (the run has not logged a step or an evaluation yet)");

  ReportResult result;
  result.out_dir = options.out_dir.empty() ? path_join(base_dir, "report") : options.out_dir;
  std::string gnuplot;
  if (options.plots) {
    gnuplot = find_program(options.gnuplot);
    SLIME_CHECK(!gnuplot.empty(), "slime-report draws its plots with gnuplot, and '", options.gnuplot,
                "' was not found", options.gnuplot.find('/') == std::string::npos ? " on PATH" : "",
                ": install it with `apt-get install gnuplot-nox` (or run with --no-plots for summary.md alone)");
  }
  make_directories(result.out_dir);
  const std::string out_dir = std::filesystem::absolute(result.out_dir).string();
  result.terminal = options.plots ? png_terminal(gnuplot, out_dir) : "";
  const std::string terminal = options.plots ? result.terminal : "pngcairo";
  const std::string source = std::filesystem::absolute(metrics_path).lexically_normal().string();

  struct Made {
    std::string name, title, skip_reason;
    bool made;
  };
  std::vector<Made> made;
  for (const Plot& plot : line_plots(run, options.moving_average))
    made.push_back({plot.name, plot.title, plot.skip_reason, write_plot(plot, out_dir, terminal, source)});
  made.push_back({"time_split", "Time per step", "perf/step_time absent",
                  write_time_split(run, out_dir, terminal, source)});
  for (const Made& m : made) {
    PlotOutcome outcome;
    outcome.file = m.name + ".png";
    outcome.title = m.title;
    outcome.made = m.made;
    if (!m.made) {
      outcome.reason = m.skip_reason;
      for (const char* ext : {".png", ".dat", ".gp"}) remove_if_present(path_join(out_dir, m.name + ext));
    } else if (options.plots) {
      const std::string png = path_join(out_dir, outcome.file);
      remove_if_present(png);
      const ProcessResult run_gp = run_process({gnuplot, m.name + ".gp"}, out_dir);
      SLIME_CHECK(run_gp.exit_code == 0, "gnuplot failed on ", path_join(out_dir, m.name + ".gp"), " (exit status ",
                  run_gp.exit_code, "):\n", run_gp.stderr_text);
      struct stat st;
      SLIME_CHECK(::stat(png.c_str(), &st) == 0 && st.st_size > 0, "gnuplot ran ",
                  path_join(out_dir, m.name + ".gp"), " but wrote no ", png, ":\n", run_gp.stderr_text);
    }
    result.plots.push_back(outcome);
  }
  result.summary_path = path_join(out_dir, "summary.md");
  write_file_atomic(result.summary_path, summary_markdown(summarize(run), options.run_dir, result.plots,
                                                                options.plots));
  return result;
}

}  // namespace slime::obs
