# schedule part of the trainer (owned by its author)
