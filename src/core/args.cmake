# slime_args: option registry, parsing, YAML config, validation (owned by its author)
