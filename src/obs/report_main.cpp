// slime-report: plots and a one-page summary of a training run (obs/report.h; docs/observability.md).
//   slime-report RUN_DIR [--out DIR] [--moving-average N] [--gnuplot PROGRAM] [--no-plots]
// RUN_DIR is slime-train's --save directory (it holds metrics.jsonl) or a metrics .jsonl file. Needs gnuplot
// (Debian: gnuplot-nox) unless --no-plots.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>

#include "core/error.h"
#include "obs/report.h"

int main(int argc, char** argv) {
  slime::obs::ReportOptions options;
  CLI::App app{"slime-report: PNG plots (gnuplot) and summary.md for a slime-train run directory"};
  app.add_option("run_dir", options.run_dir, "run directory holding metrics.jsonl (slime-train's --save), or a "
                 "metrics .jsonl file")->required();
  app.add_option("--out", options.out_dir, "output directory (default: RUN_DIR/report)");
  app.add_option("--moving-average", options.moving_average, "window of the reward's moving average, in steps")
      ->capture_default_str();
  app.add_option("--gnuplot", options.gnuplot, "gnuplot program to run")->capture_default_str();
  bool no_plots = false;
  app.add_flag("--no-plots", no_plots, "write summary.md and the .dat/.gp files without running gnuplot");
  CLI11_PARSE(app, argc, argv);
  options.plots = !no_plots;
  try {
    const slime::obs::ReportResult result = slime::obs::make_report(options);
    int drawn = 0;
    std::string skipped;
    for (const auto& plot : result.plots) {
      if (plot.made) ++drawn;
      else skipped += slime::cat("\n  skipped ", plot.file, ": ", plot.reason);
    }
    std::printf("slime-report: %d plots%s and summary.md in %s%s\n", drawn,
                options.plots ? slime::cat(" (gnuplot ", result.terminal, ")").c_str() : " (.dat/.gp only)",
                result.out_dir.c_str(), skipped.c_str());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "slime-report: error: %s\n", e.what());
    return 1;
  }
}
