#!/usr/bin/env bash
# The checkpoint files are plain HDF5: the standard tools (h5ls, h5dump from hdf5-tools) read them.
# Usage: h5tools_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1
src=$2
out=$(mktemp -d /tmp/slime_h5tools.XXXXXX)
trap 'rm -rf "$out"' EXIT
mpirun --allow-run-as-root --oversubscribe -np 2 "$build/slime-convert" hf-to-mcore \
  --hf-dir "$src/regression/hf_parity/golden/qwen3_sharded" --save "$out/ckpt" >/dev/null
model="$out/ckpt/iter_0000000/model.h5"
listing=$(h5ls -r "$model")
echo "$listing" | grep -q 'decoder.layers.1.self_attention.linear_qkv.weight Dataset {256, 64}' \
  || { echo "h5ls did not list the fused QKV dataset:"; echo "$listing"; exit 1; }
echo "$listing" | grep -q 'embedding.word_embeddings.weight Dataset {1024, 64}' \
  || { echo "h5ls did not list the padded embedding:"; echo "$listing"; exit 1; }
header=$(h5dump -A -H "$model")
echo "$header" | grep -q 'ATTRIBUTE "model_config"' || { echo "h5dump shows no model_config attribute"; exit 1; }
config=$(h5dump -a /model_config "$model")
echo "$config" | grep -q 'Qwen3ForCausalLM' || { echo "h5dump shows no architecture in model_config"; exit 1; }
values=$(h5dump -d /decoder.final_layernorm.weight "$model")
echo "$values" | grep -q 'DATATYPE  H5T_IEEE_F32LE' || { echo "h5dump cannot read a dataset"; echo "$values"; exit 1; }
echo "h5ls and h5dump read $model: $(echo "$listing" | grep -c Dataset) datasets"
