# slime_safetensors: reader/writer (owned by its author)
