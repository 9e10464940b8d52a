#!/usr/bin/env python3
"""Writes the CPU demo's data (deterministic, stdlib only): two-digit addition "a+b=" -> "c".

  sft.jsonl    supervised examples  {"messages": [user "a+b=", assistant "c"]}
  train.jsonl  RL prompts           {"prompt": [user "a+b="], "label": "c"}
  eval.jsonl   held-out RL prompts  (no problem of eval appears in sft or train)

Usage: python3 make_data.py [--seed 1234] [--sft 4000] [--train 2000] [--eval 128] [--out DIR]
"""
import argparse
import json
import os
import random


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--sft", type=int, default=4000)
    ap.add_argument("--train", type=int, default=2000)
    ap.add_argument("--eval", type=int, default=128)
    ap.add_argument("--max-operand", type=int, default=99)
    ap.add_argument("--teacher-accuracy", type=float, default=1.0,
                    help="share of SFT answers that are right; the others have one digit replaced")
    ap.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)))
    a = ap.parse_args()

    rng = random.Random(a.seed)
    problems = [(x, y) for x in range(a.max_operand + 1) for y in range(a.max_operand + 1)]
    rng.shuffle(problems)
    eval_set = problems[: a.eval]
    rest = problems[a.eval:]
    # SFT and RL prompts both come from the non-eval problems (they may overlap each other, never eval).
    sft_set = [rest[rng.randrange(len(rest))] for _ in range(a.sft)]
    train_set = [rest[rng.randrange(len(rest))] for _ in range(a.train)]

    def teacher(x, y):
        answer = str(x + y)
        if rng.random() < a.teacher_accuracy:
            return answer
        pos = rng.randrange(len(answer))
        digits = [d for d in "0123456789" if d != answer[pos] and not (pos == 0 and len(answer) > 1 and d == "0")]
        return answer[:pos] + rng.choice(digits) + answer[pos + 1:]

    def question(x, y):
        return f"{x}+{y}="

    def write(name, rows):
        with open(os.path.join(a.out, name), "w") as f:
            for row in rows:
                f.write(json.dumps(row) + "\n")

    write("sft.jsonl", [{"messages": [{"role": "user", "content": question(x, y)},
                                      {"role": "assistant", "content": teacher(x, y)}]} for x, y in sft_set])
    write("train.jsonl", [{"prompt": [{"role": "user", "content": question(x, y)}], "label": str(x + y)}
                          for x, y in train_set])
    write("eval.jsonl", [{"prompt": [{"role": "user", "content": question(x, y)}], "label": str(x + y)}
                         for x, y in eval_set])


if __name__ == "__main__":
    main()
