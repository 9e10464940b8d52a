#!/usr/bin/env python3
"""Writes slime_golden.jsonl: rewards computed by slime's own rm_hub verifiers (Python, sympy, pylatexenc) on a
grid of answers, for reward_golden_test to compare our C++ verifiers against.

Usage: make_slime_golden.py /path/to/slime/repo(.git) > slime_golden.jsonl
Needs: git, python3 with sympy and pylatexenc (Debian: python3-sympy python3-pylatexenc). The slime commit used
is written in the first line.
"""
import importlib.util
import itertools
import json
import os
import subprocess
import sys
import tempfile

RM_HUB = ["math_utils", "math_dapo_utils", "deepscaler", "f1", "gpqa"]

# Groups of answers written in different ways; every pair inside a group is graded, plus the first form of each
# group against the first form of every other group.
MATH_GROUPS = [
    ["42", "42.0", "42.00", "042", "4.2e1", r"42\%", r"\$42", r"42^\circ", r"42^{\circ}", "42 cm", r"42\text{ cm}",
     r"\text{42}", "x = 42", "k=42", r"\boxed{42}", "43"],
    ["1000", "1,000", "1{,}000", r"1,\!000", "1000.0", "10^3", "1 thousand", "1e3"],
    ["1000000", "1,000,000", "10^6", "10^{6}", "1 million", r"10^6"],
    ["1/2", "0.5", ".5", r"\frac{1}{2}", r"\frac12", r"\dfrac{1}{2}", r"\tfrac{1}{2}", "2/4", r"\frac{2}{4}",
     "0.50", r"50\%", r"\frac {1} {2}", r"\left(\frac{1}{2}\right)"],
    ["-1/2", "-0.5", r"-\frac{1}{2}", r"\frac{-1}{2}", r"\frac{1}{-2}", r"-\frac12", "- 0.5"],
    ["3/2", "1.5", r"1\frac{1}{2}", "1 1/2", r"\frac{3}{2}", r"\frac32", r"\dfrac{3}{2}", "1.50"],
    ["1/3", "0.333", r"\frac{1}{3}", r"0.\overline{3}", r"\frac{2}{6}"],
    [r"\sqrt{2}", r"\sqrt2", r"\frac{\sqrt{2}}{2}", r"\frac{1}{\sqrt{2}}", r"2\sqrt{2}", r"\sqrt{8}", "1.414"],
    [r"2\sqrt{3}", r"\sqrt{12}", r"2\sqrt3", r"\sqrt{3}\cdot 2", r"\sqrt{3}+\sqrt{3}"],
    [r"\pi", r"2\pi", r"\frac{\pi}{2}", r"\pi/2", "3.14", r"\frac{1}{2}\pi", r"0.5\pi"],
    ["x+1", "1+x", "x + 1", "(x+1)", "x+2"],
    ["x^2+2x+1", "(x+1)^2", "x^2 + 2x + 1", "(x+1)(x+1)", "x^2+1"],
    ["2x", "x*2", "2*x", r"2\cdot x", "x+x", "3x"],
    ["(1,2)", "(1, 2)", "[1,2]", "(2,1)", r"\left(1,2\right)", "(1,2,3)", "1,2", "(1.0, 2)"],
    [r"\infty", r"-\infty", "oo"],
    ["A", "(A)", r"\text{(A)}", "a", r"\textbf{A}", "B"],
    ["5!", "120", "5*24"],
    [r"\frac{1}{1+\sqrt{2}}", r"\sqrt{2}-1", r"-1+\sqrt{2}"],
    [r"\frac{a+1}{2}", r"\frac{1+a}{2}", "(a+1)/2", "a/2+1/2"],
    [r"\sqrt[3]{2}", r"2^{1/3}", r"\sqrt{2}"],
    ["12 inches", "12", "12 feet", "12 degrees", r"12\text{ inches}"],
    ["7 3/4", r"7\frac{3}{4}", "31/4", "7.75"],
    [r"\dfrac{5}{2}", r"2\frac{1}{2}", r"2 \frac12", "2.5", "5/2", r"\frac{10}{4}"],
    [r"3\times 10^5", "300000", r"3\cdot10^5", r"3 \cdot 10^{5}", "300,000", "3e5"],
    ["0", "-0", "0.0", r"\frac{0}{1}", r"0\%"],
    [r"\frac{\sqrt{3}}{2}", r"\sqrt{3}/2", r"\frac{1}{2}\sqrt{3}", "0.866", r"\frac{\sqrt3}2"],
    [r"\ln 2", r"\log 2", r"\ln(2)", "0.693", r"\log_2 8", "3"],
    ["e", "e^1", "e^{1}", "2.718"],
    ["i", "2i", "1+i", "i+1", r"\sqrt{-1}"],
    [r"\sin(\pi/6)", r"\frac{1}{2}", r"\cos(\pi/3)", r"\sin 30^\circ"],
    [r"(-\infty, 3)", r"(-\infty,3)", r"(-\infty, 3]", "x<3"],
    [r"\{1,2\}", r"\{1, 2\}", "1,2", r"\{2,1\}", r"1 \text{ and } 2", "1 and 2", "2 or 1"],
    ["y=2x+3", "2x+3", "y = 2x + 3", "3+2x", "2(x+1)+1"],
    [r"\text{Monday}", "Monday", "monday", r"\textbf{Monday}", r"\text{monday}"],
    [r"\frac{3}{4}x", "0.75x", r"\frac34x", r"\frac{3x}{4}", "3x/4"],
    [r"10\%", "0.1", "10", r"\frac{1}{10}", "10 percent"],
    [r"\$1,000", "1000", r"\$1000.00", "1,000 dollars", r"1000 \text{ dollars}"],
    ["x^{2}", "x^2", r"x \cdot x", "x**2"],
    ["2^{10}", "1024", "2^10"],
]

DAPO_CASES = [
    ("Answer: 42", "42"), ("answer: 42", "42"), ("Answer : 42", "42"), ("Answer: $42$", "42"),
    ("Answer: 42.", "42"), ("Answer: 42.0", "42"), ("Answer: 1,000", "1000"), ("Answer: x = 7", "7"),
    ("Answer: \\boxed{7}", "7"), ("Answer: 7 dollars", "7"), ("Answer: \\frac{1}{2}", "0"),
    ("Answer: 41\nAnswer: 42", "42"), ("The answer is 42", "42"), ("Answer: 42", "42.0"),
    ("Answer: \\text{42}", "42"), ("Answer: -3", "-3"), ("Answer: 10^{3}", "1000"),
    ("Answer: 42 <|im_end|>", "42"), ("Final Answer: The final answer is $42$.", "42"),
    ("Answer: 2 \\sqrt{3}", "2"),
]

F1_CASES = [
    ("The quick brown fox", "a quick brown dog"), ("Paris", "paris!"), ("yes", "Yes."), ("no", "yes"),
    ("noanswer", "no answer"), ("the the the", "the"), ("New York City", "new york"), ("", "x"),
    ("Barack Obama, president", "Barack Hussein Obama"), ("1,000 apples", "1000 apples"),
    ("théâtre the a an", "theatre"), ("a_b the", "a_b"), ("l'an the", "lan"), ("THE An A", "x"),
    ("Thea an apple", "thea apple"), ("an", "an"), ("ân a", "ân"), ("a\tb  c", "b c"),
]

GPQA_CASES = [
    ("The answer is B.", "B", {}), ("The answer is (b)", "B", {}), ("Answer: E", "E", {"valid_letters": ["A", "B"]}),
    ("I pick option C", 2, {"choices": ["x", "y", "z", "w"]}), ("paris", "Paris", {"choices": ["Rome", "Paris"]}),
    ("<think>A?</think> so D", "D", {}), ("Final answer: A", "a", {"correct_letter": "B"}),
    ("B is the correct answer", "B", {}), ("it must be photosynthesis", "Photosynthesis", {}),
    ("Choice: c", "C", {}), ("none of these", "A", {}),
    ("answer is the B", "B", {}), ("The answer: is C", "C", {}), ("option:   d", "D", {}),
    ("A  is  the  correct one", "A", {}), ("Bis correct", "B", {}), ("final answer is\nC", "C", {}),
    ("ANSWER IS B", "B", {}), ("the final option: x, so G", "G", {}), ("answer:", "A", {}), ("Answer is 5", "A", {}),
    ("答案是B", "B", {}), ("Answer: é then C", "C", {}), ("C is the correct", "C", {}),
    ("Hmm. D. Or maybe A. I go with B_", "B", {}), ("answer\t:\tH", "H", {}), ("choiceis F", "F", {}),
    ("thefinalanswerisE", "E", {}), ("(C) is correct", "C", {}), ("I think B is the correct answer", "B", {}),
]

DEEPSCALER_RESPONSES = [
    r"<think>hmm</think>The answer is \boxed{42}.", r"\boxed{42}", r"###Response \boxed{42} ###Response \boxed{1}",
    r"</think>\boxed{\frac{1}{2}}", r"</think>\boxed{0.5}", r"</think>no box",
]
DEEPSCALER_LABELS = ["42", "0.5", r"\boxed{42}", 42, 42.0, ""]


def load_rm_hub(repo):
    commit = subprocess.check_output(["git", "-C", repo, "rev-parse", "HEAD"], text=True).strip()
    directory = tempfile.mkdtemp()
    package = os.path.join(directory, "rm_hub")
    os.makedirs(package)
    open(os.path.join(package, "__init__.py"), "w").close()
    for name in RM_HUB:
        source = subprocess.check_output(["git", "-C", repo, "show", f"HEAD:slime/rollout/rm_hub/{name}.py"], text=True)
        with open(os.path.join(package, name + ".py"), "w") as f:
            f.write(source)
    sys.path.insert(0, directory)
    modules = {}
    for name in RM_HUB:
        spec = importlib.util.spec_from_file_location("rm_hub." + name, os.path.join(package, name + ".py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules["rm_hub." + name] = module
        spec.loader.exec_module(module)
        modules[name] = module
    return commit, modules


def main():
    commit, hub = load_rm_hub(sys.argv[1])
    out = sys.stdout
    out.write(json.dumps({"slime_commit": commit}) + "\n")

    def emit(kind, response, label, metadata, expected):
        out.write(json.dumps({"kind": kind, "response": response, "label": label, "metadata": metadata,
                              "expected": expected}, ensure_ascii=False) + "\n")

    pairs = []
    for group in MATH_GROUPS:
        pairs += list(itertools.permutations(group, 2))
    firsts = [group[0] for group in MATH_GROUPS]
    pairs += list(itertools.permutations(firsts, 2))
    for given, truth in pairs:
        response = "So the answer is $\\boxed{" + given + "}$."
        emit("math", response, truth, {}, 1 if hub["math_utils"].grade_answer_verl(response, truth) else 0)
    for response, label in DAPO_CASES:
        emit("dapo", response, label, {}, hub["math_dapo_utils"].compute_score(response, label))
    for prediction, truth in F1_CASES:
        emit("f1", prediction, truth, {}, hub["f1"].f1_score(prediction, truth)[0])
    for response, label, metadata in GPQA_CASES:
        emit("gpqa", response, label, metadata, hub["gpqa"].compute_gpqa_reward(response, label, dict(metadata)))
    for response in DEEPSCALER_RESPONSES:
        for label in DEEPSCALER_LABELS:
            emit("deepscaler", response, label, {}, hub["deepscaler"].get_deepscaler_rule_based_reward(response, label))


if __name__ == "__main__":
    main()
