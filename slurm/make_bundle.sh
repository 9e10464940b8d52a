#!/usr/bin/env bash
# Builds a relocatable bundle of slime-hpc: the executables, every shared library they need that a cluster cannot
# be assumed to have (HDF5, Kokkos, OpenBLAS, yaml-cpp, PCRE2, utf8proc, ... and their dependencies), and
# wrappers that set LD_LIBRARY_PATH. Left out on purpose, because the site must provide its own: the C runtime
# (glibc, libstdc++, libgcc_s), MPI (libmpi and Open MPI's own libraries and their hwloc/libevent, so the site's
# mpirun/srun match), and the
# CUDA driver and toolkit libraries (libcuda, cudart, cuBLAS, NCCL).
#
# Usage: slurm/make_bundle.sh BUILD_DIR OUT_DIR [--with-tests]
#   -> OUT_DIR/slime-hpc/{bin,libexec,lib,plugins,include/slime,slurm,inputs/demo,tests,SITE_LIBRARIES},
#      OUT_DIR/slime-hpc.tar.gz
# Run on the target:  tar xzf slime-hpc.tar.gz && slime-hpc/bin/slime-train --help
#                     mpirun -np 4 slime-hpc/bin/slime-train ...
#                     slime-hpc/slurm/run_demo.sh slime-hpc/bin runs/demo      (the CPU demo)
#                     cd slime-hpc && sbatch slurm/single_node.sbatch          (job scripts: docs/slurm.md)
set -euo pipefail

build_dir=${1:?usage: make_bundle.sh BUILD_DIR OUT_DIR [--with-tests]}
out_dir=${2:?usage: make_bundle.sh BUILD_DIR OUT_DIR [--with-tests]}
with_tests=${3:-}
root="$out_dir/slime-hpc"
rm -rf "$root"
mkdir -p "$root/bin" "$root/libexec" "$root/lib"

programs=(slime-train slime-generate slime-convert slime-report)
binaries=()
for p in "${programs[@]}"; do
  [[ -x "$build_dir/$p" ]] || { echo "make_bundle.sh: $build_dir/$p not built (run make first)" >&2; exit 1; }
  cp "$build_dir/$p" "$root/libexec/"
  binaries+=("$root/libexec/$p")
done
# The example plug-ins (calculator tool, answer-tag reward) and the C ABI headers to build one's own.
if [[ -d "$build_dir/plugins" ]]; then
  mkdir -p "$root/plugins"
  cp "$build_dir"/plugins/*.so "$root/plugins/"
fi
src_dir="$(cd "$(dirname "$0")/.." && pwd)"
mkdir -p "$root/include/slime"
cp "$src_dir/src/rollout/generate_plugin.h" "$root/include/slime/generate_plugin.h"
cp "$src_dir/src/reward/plugin.h" "$root/include/slime/reward_plugin.h"
# The job scripts (they find the programs in bin/ when run from the bundle) and the demo's model and data, so that
# `slime-hpc/slurm/run_demo.sh slime-hpc/bin RUN_DIR` or `sbatch slime-hpc/slurm/demo.sbatch` work on the target.
mkdir -p "$root/slurm/recipes" "$root/inputs"
cp "$src_dir"/slurm/*.sh "$src_dir"/slurm/*.sbatch "$root/slurm/"
cp "$src_dir"/slurm/recipes/*.sh "$root/slurm/recipes/"
rm -f "$root/slurm/make_bundle.sh"
cp -r "$src_dir/inputs/demo" "$root/inputs/"
if [[ "$with_tests" == "--with-tests" ]]; then
  mkdir -p "$root/tests"
  while IFS= read -r t; do
    cp "$t" "$root/tests/"
    binaries+=("$root/tests/$(basename "$t")")
  done < <(find "$build_dir" -type f -executable \( -name '*_test' -o -name 'bench_*' \) -not -path '*/CMakeFiles/*')
fi

# Libraries the site provides (matched against the library's file name).
provided='^(linux-vdso|ld-linux|libc\.|libm\.|libpthread|libdl\.|librt\.|libresolv|libutil\.|libstdc\+\+|libgcc_s|libmpi|libopen-(pal|rte)|libpmix|libmca_common|libhwloc|libevent|libudev|libcuda\.|libcudart|libcublas|libcublasLt|libnccl|libnvidia|libcudnn)'
# The same rule, for users and for regression/slurm/bundle_test.sh: what the site must provide.
echo "$provided" > "$root/SITE_LIBRARIES"
declare -A copied=()
for bin in "${binaries[@]}"; do
  while read -r name path; do
    [[ -z "$path" || "$path" == "not" ]] && { echo "make_bundle.sh: $bin needs $name, which is not found" >&2; exit 1; }
    [[ "$name" =~ $provided ]] && continue
    [[ -n "${copied[$name]:-}" ]] && continue
    cp -L "$path" "$root/lib/$name"
    copied[$name]=1
  done < <(ldd "$bin" | awk '/=>/ { print $1, $3 } !/=>/ && /^\s*\// { n=$1; sub(".*/", "", n); print n, $1 }')
done

cat > "$root/env.sh" <<'ENV'
# Source this to use the bundle's programs directly: . slime-hpc/env.sh
_slime_root="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export PATH="$_slime_root/bin:$PATH"
export LD_LIBRARY_PATH="$_slime_root/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
ENV
for p in "${programs[@]}"; do
  cat > "$root/bin/$p" <<WRAP
#!/usr/bin/env bash
root="\$(cd "\$(dirname "\${BASH_SOURCE[0]}")/.." && pwd)"
export LD_LIBRARY_PATH="\$root/lib\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
exec "\$root/libexec/$p" "\$@"
WRAP
  chmod +x "$root/bin/$p"
done
git -C "$(dirname "$0")/.." describe --always --dirty > "$root/VERSION" 2>/dev/null || echo unknown > "$root/VERSION"
tar -C "$out_dir" -czf "$out_dir/slime-hpc.tar.gz" slime-hpc
echo "bundle: $root ($(du -sh "$root" | cut -f1), ${#copied[@]} libraries) -> $out_dir/slime-hpc.tar.gz"
