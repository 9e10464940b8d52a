#!/usr/bin/env python3
"""Greedy continuations by transformers for the golden models (the rollout engine's parity test).

For every golden/<model>/ made by make_golden.py this writes golden/<model>/greedy.safetensors:
    prompt_tokens  I64 [sum of prompt lengths]   prompts back to back
    prompt_offsets I64 [P + 1]
    tokens         I64 [P, NEW]                   model.generate(do_sample=False) continuations
    margins        F64 [P, NEW]                   top-1 minus top-2 logit at each step (a near-tie is where float32
                                                  and float64 may legitimately pick different tokens)
computed in float64 on the saved weights, eager attention, no sampling, no EOS stop.

    python3 regression/hf_parity/make_greedy_golden.py --golden regression/hf_parity/golden
"""
import argparse
import os

import torch
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM

PROMPT_LENGTHS = [5, 17, 1, 33]
NEW_TOKENS = 16


def load(path):
    try:
        return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float64, attn_implementation="eager")
    except TypeError:
        return AutoModelForCausalLM.from_pretrained(path, torch_dtype=torch.float64, attn_implementation="eager")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--golden", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden"))
    parser.add_argument("--seed", type=int, default=77)
    args = parser.parse_args()
    for name in sorted(os.listdir(args.golden)):
        path = os.path.join(args.golden, name)
        if not os.path.exists(os.path.join(path, "config.json")):
            continue
        model = load(path).eval()
        vocab = model.config.vocab_size
        generator = torch.Generator().manual_seed(args.seed)
        prompts = [torch.randint(0, vocab, (n,), generator=generator) for n in PROMPT_LENGTHS]
        tokens, margins = [], []
        for prompt in prompts:
            out = model.generate(prompt[None], max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS, do_sample=False,
                                 output_scores=True, return_dict_in_generate=True, pad_token_id=0, eos_token_id=None)
            tokens.append(out.sequences[0, len(prompt):])
            top2 = torch.stack([s[0].topk(2).values for s in out.scores])
            margins.append(top2[:, 0] - top2[:, 1])
        offsets = torch.tensor([0] + list(torch.tensor(PROMPT_LENGTHS).cumsum(0)), dtype=torch.int64)
        save_file({"prompt_tokens": torch.cat(prompts).to(torch.int64), "prompt_offsets": offsets,
                   "tokens": torch.stack(tokens).to(torch.int64).contiguous(),
                   "margins": torch.stack(margins).to(torch.float64).contiguous()},
                  os.path.join(path, "greedy.safetensors"))
        print(f"{name}: {len(prompts)} prompts x {NEW_TOKENS} tokens, smallest margin "
              f"{torch.stack(margins).min().item():.3e}")


if __name__ == "__main__":
    main()
