#!/usr/bin/env bash
# slime-report end to end on a real GRPO run's metrics (testdata/grpo_metrics.jsonl: lines 1-7 are a 6-step run of
# the demo model with an evaluation before training; then steps 6 and 7, a resume that writes them again with new
# timings (a resumed run repeats its values bit for bit, not its timings), and step 8 with an evaluation, written
# by hand in the same style). Checks: every plot is a real 900x500 PNG of some size, its .gp and .dat are there and
# the .gp re-runs by hand, summary.md has the numbers worked out below (the later line of a redone step wins), and
# bad inputs fail with a message. Skipped (77) without gnuplot.
# Usage: report_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1
src=$2
report="$build/slime-report"
[ -x "$report" ] || { echo "missing $report: build the slime-report target"; exit 1; }
command -v gnuplot >/dev/null || { echo "SKIP: gnuplot not installed (apt-get install gnuplot-nox)"; exit 77; }
out=$(mktemp -d /tmp/slime_report.XXXXXX)
trap 'rm -rf "$out"' EXIT

mkdir -p "$out/run"
cp "$src/regression/obs/testdata/grpo_metrics.jsonl" "$out/run/metrics.jsonl"
"$report" "$out/run" --moving-average 3 | tee "$out/stdout"
grep -q "^slime-report: 8 plots (gnuplot png" "$out/stdout"

plots="reward eval response_length kl entropy loss throughput time_split"
python3 - "$out/run/report" $plots <<'PY'
import struct, sys
directory, names = sys.argv[1], sys.argv[2:]
for name in names:
    data = open(f"{directory}/{name}.png", "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", (name, data[:8])
    assert data[12:16] == b"IHDR", (name, data[12:16])
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (900, 500), (name, width, height)
    assert len(data) > 8000, (name, len(data))  # axes, labels and lines, not an empty canvas
    assert data[-8:-4] == b"IEND", name
print(f"{len(names)} PNGs of 900x500, {min(len(open(f'{directory}/{n}.png','rb').read()) for n in names)} bytes "
      "or more")
PY
for p in $plots; do
  [ -s "$out/run/report/$p.gp" ] && [ -s "$out/run/report/$p.dat" ] || { echo "missing $p.gp or $p.dat"; exit 1; }
done
grep -q "moving average (3 steps)" "$out/run/report/reward.gp"
grep -q "^-1 0.001953125$" "$out/run/report/eval.dat"  # the evaluation before training, at step -1

# The scripts re-run by hand from the report directory.
rm "$out/run/report/loss.png"
(cd "$out/run/report" && gnuplot loss.gp)
[ -s "$out/run/report/loss.png" ]

# summary.md. Rewards 0.0078125 0.0078125 0 0 0.00390625 | 0.00390625 0.0078125 0.01171875 0.015625 (steps 0-8):
# the first five average 0.00390625, the last five 0.00859375. Mean step time over the 9 steps with the redone
# steps' later lines: 30.538 / 9 = 3.393 s (their earlier lines would give 3.345); rollout 0.252 s (7.4%), train
# 2.710 (79.9%), update weights 0.130 (3.8%), eval 0.275 (8.1%), other 0.026 (0.8%); 3512 tokens/s.
summary="$out/run/report/summary.md"
cat "$summary"
for expected in \
    "- training steps: 9 (rollout_id 0 to 8), 2 redone after a resume (the later record is used): 6, 7" \
    "- metrics: \`$out/run/metrics.jsonl\` (12 records)" \
    "0.0039 (mean of the first 5 steps) -> 0.0086 (mean of the last 5)" \
    "- final \`train/loss\`: 2.79397e-09 (step 8)" \
    "- rollout generation: 3512 tokens/s (mean \`perf/tokens_per_sec\`)" \
    "| \`eval/eval\` | 4 | 0.0020 (before training) | 0.0059 (step 8) | 0.0059 (step 8) |" \
    "| rollout | \`perf/rollout_time\` | 0.252 | 7.4% |" \
    "| train | \`perf/train_time\` | 2.710 | 79.9% |" \
    "| update weights | \`perf/update_weights_time\` | 0.130 | 3.8% |" \
    "| eval | \`perf/eval_time\` | 0.275 | 8.1% |" \
    "| other | step minus the above, at least 0 | 0.026 | 0.8% |" \
    "| **step** | \`perf/step_time\` | 3.393 | 100.0% |"; do
  grep -qF -- "$expected" "$summary" || { echo "summary.md lacks: $expected"; exit 1; }
done
for p in $plots; do grep -qF "]($p.png)" "$summary" || { echo "summary.md does not embed $p.png"; exit 1; }; done
if grep -q "Skipped" "$summary"; then echo "summary.md skips a plot of the full run"; exit 1; fi

# A run without some metrics: no KL, no entropy, no throughput -> those plots are skipped and listed.
mkdir -p "$out/partial"
python3 - "$out/run/metrics.jsonl" "$out/partial/metrics.jsonl" <<'PY'
import json, sys
with open(sys.argv[2], "w") as out:
    for line in open(sys.argv[1]):
        if line.strip():
            record = json.loads(line)
            for key in [k for k in record if k.startswith(("train/ppo_kl", "train/entropy", "perf/tokens"))]:
                del record[key]
            out.write(json.dumps(record) + "\n")
PY
"$report" "$out/partial" --out "$out/partial-report" >"$out/stdout"
grep -q "^slime-report: 5 plots" "$out/stdout"
for p in kl entropy throughput; do
  [ ! -e "$out/partial-report/$p.png" ] || { echo "$p.png drawn without data"; exit 1; }
  grep -qF -- "- $p.png: " "$out/partial-report/summary.md"
done

# Errors: exit status 1 and a message.
expect_error() {  # expect_error MESSAGE ARGS...
  local message=$1; shift
  if "$report" "$@" >"$out/stdout" 2>"$out/stderr"; then echo "slime-report $* succeeded"; exit 1; fi
  grep -qF -- "$message" "$out/stderr" || { echo "expected '$message', got:"; cat "$out/stderr"; exit 1; }
}
expect_error "does not exist" "$out/nowhere"
mkdir -p "$out/empty"
expect_error "has no metrics.jsonl" "$out/empty"
mkdir -p "$out/bad"
{ head -n 3 "$out/run/metrics.jsonl"; echo '{"rollout_id": 3, "rollout/raw_reward": '; } >"$out/bad/metrics.jsonl"
expect_error "$out/bad/metrics.jsonl:4: malformed JSON" "$out/bad"
expect_error "apt-get install gnuplot-nox" "$out/run" --gnuplot /nonexistent/gnuplot
echo "report_test: OK"
