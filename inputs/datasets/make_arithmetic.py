#!/usr/bin/env python3
"""Writes arithmetic-64.jsonl: 64 two-operand integer problems in slime's prompt format (a message list under
"prompt", the answer under "label", metadata with rm_type "math"), for smoke runs on the tiny models:
--prompt-data inputs/datasets/arithmetic-64.jsonl --input-key prompt --label-key label --apply-chat-template.
Deterministic: the same file every run."""
import json
import random

rng = random.Random(2024)
with open("arithmetic-64.jsonl", "w", encoding="utf-8") as out:
    for i in range(64):
        a, b = rng.randint(2, 99), rng.randint(2, 99)
        op = ["+", "-", "*"][i % 3]
        answer = {"+": a + b, "-": a - b, "*": a * b}[op]
        question = f"What is {a} {op} {b}? Put the final answer in \\boxed{{}}."
        row = {
            "prompt": [{"role": "user", "content": question}],
            "label": str(answer),
            "metadata": {"source_name": "arithmetic", "rm_type": "math"},
        }
        out.write(json.dumps(row, ensure_ascii=False) + "\n")
