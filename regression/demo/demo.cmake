# Demo task prototype and regression tests (owned by the demo-task author).
