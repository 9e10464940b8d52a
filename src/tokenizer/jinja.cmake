# Jinja interpreter + chat templates: sources and tests (owned by its author)
