# custom generate plug-ins: loader, host glue, tests (owned by its author)
