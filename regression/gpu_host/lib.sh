# Shared by the GPU host session scripts (source it): unpack the carried dist/gpu.tar.gz, and run() a step with a
# time limit, logging to $OUT/<name>.log and appending its status and the lines matching $SUMMARY_PATTERN to
# $OUT/summary.txt.
export NCCL_NVLS_ENABLE=0 OPENBLAS_NUM_THREADS=8
mkdir -p "$OUT" /tmp/gb
tar xzf dist/gpu.tar.gz -C /tmp/gb
B=/tmp/gb/slime-hpc
export LD_LIBRARY_PATH="$B/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/summary.txt"
run() {  # name, command...
  local name=$1; shift
  local t0=$SECONDS
  if timeout "${LIMIT:-300}" "$@" > "$OUT/$name.log" 2>&1; then r=ok; else r="FAILED ($?)"; fi
  echo "== $name: $r in $((SECONDS - t0)) s" | tee -a "$OUT/summary.txt"
  grep -E "$SUMMARY_PATTERN" "$OUT/$name.log" | head -120 | tee -a "$OUT/summary.txt"
}
