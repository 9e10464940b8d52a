# BPE tokenizer: sources and tests (owned by its author)
