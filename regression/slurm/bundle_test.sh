#!/usr/bin/env bash
# make bundle's output, unpacked on another path, runs the demo: slurm/make_bundle.sh into a temporary directory,
# the tarball unpacked elsewhere and the build's copy deleted, then the bundle's own slurm/run_demo.sh with the
# bundle's bin/ (shortened: SFT 60 steps, GRPO 4 steps). Also checks that every library the programs load comes
# from the bundle or from the libraries a site provides (C runtime, MPI, CUDA), not from this machine's packages.
# Usage: bundle_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
out=$(mktemp -d /tmp/slime_bundle.XXXXXX)
trap 'rm -rf "$out"' EXIT
bash "$src/slurm/make_bundle.sh" "$build" "$out/dist"
mkdir -p "$out/elsewhere"
tar xzf "$out/dist/slime-hpc.tar.gz" -C "$out/elsewhere"
rm -rf "$out/dist"
b=$out/elsewhere/slime-hpc

# Libraries: each resolved either inside the bundle or to one the site provides.
provided=$(cat "$b/SITE_LIBRARIES")  # make_bundle.sh's rule for what the site provides
for p in slime-train slime-convert slime-generate; do
  while read -r name path; do
    [[ "$name" =~ $provided ]] && continue
    [[ "$path" == "$b/lib/"* ]] || { echo "bundle_test: $p loads $name from $path, not from the bundle"; exit 1; }
  done < <(LD_LIBRARY_PATH="$b/lib" ldd "$b/libexec/$p" | awk '/=>/ { print $1, $3 }')
done
echo "bundle_test: $(ls "$b/lib" | wc -l) libraries in the bundle; every other one is the site's (C runtime, MPI, CUDA)"

SFT_STEPS=60 GRPO_STEPS=4 EVAL_EVERY=2 bash "$b/slurm/run_demo.sh" "$b/bin" "$out/run" >"$out/demo.log" 2>&1 ||
  { tail -30 "$out/demo.log"; exit 1; }
grep -q "launch: mpirun .*$b/bin/slime-train" "$out/demo.log" || { echo "bundle_test: not the bundle's slime-train"; exit 1; }
grep '^demo:' "$out/demo.log"
[ "$(cat "$out/run/rl/latest_checkpointed_iteration.txt")" = 3 ] || { echo "bundle_test: no GRPO checkpoint"; exit 1; }
echo "bundle_test: passed"
