#!/usr/bin/env python3
"""Golden files for the CPU model: small random-init HF models and what transformers computes on them.

For each model family (Qwen2 with QKV bias and tied embeddings, Qwen2 MHA untied, Qwen3 with QK-norm and an
explicit head_dim saved as sharded safetensors, Llama 3 with llama3 rope scaling stored in bf16) this writes
    golden/<name>/config.json, model*.safetensors   the HF checkpoint, as save_pretrained writes it
    golden/<name>/golden.safetensors                inputs and reference outputs:
        input_ids, position_ids, cu_seqlens, targets (I64): a packed batch of several sequences
        temperature, entropy_coef (F64 [1]), advantages (F64 [T])
        logits (F32 [T, vocab]), logprobs, entropy (F64 [T]), loss (F64 [1])
        grad.<hf parameter name> (F32): d loss / d parameter
    loss = sum_t advantages_t * logprob_t + entropy_coef * sum_t entropy_t,
    logprob_t = log_softmax(logits_t / temperature)[target_t], entropy over the same distribution.
Everything is computed in float64 (weights upcast from what was saved); each sequence runs on its own with
position ids 0..L-1, which defines what packing must reproduce. Eager attention, no dropout.

Run on a machine with torch + transformers (the GPU host has them; CPU is enough):
    python3 regression/hf_parity/make_golden.py --out regression/hf_parity/golden
"""
import argparse
import json
import os
import shutil

import torch
import transformers
from safetensors.torch import save_file
from transformers import AutoConfig, AutoModelForCausalLM

MODELS = {
    "qwen2_tied": dict(
        model_type="qwen2", vocab_size=1000, hidden_size=64, intermediate_size=160, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, rms_norm_eps=1e-6, tie_word_embeddings=True,
        max_position_embeddings=512, rope_theta=10000.0, dtype="float32", shard=None),
    "qwen2_mha_untied": dict(
        model_type="qwen2", vocab_size=300, hidden_size=32, intermediate_size=80, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=2, rms_norm_eps=1e-6, tie_word_embeddings=False,
        max_position_embeddings=512, rope_theta=1000000.0, dtype="float32", shard=None),
    "qwen3_sharded": dict(
        model_type="qwen3", vocab_size=777, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=32, rms_norm_eps=1e-6, tie_word_embeddings=False,
        max_position_embeddings=512, rope_theta=1000000.0, dtype="float32", shard="200KB"),
    "llama3_bf16": dict(
        model_type="llama", vocab_size=1200, hidden_size=96, intermediate_size=192, num_hidden_layers=3,
        num_attention_heads=6, num_key_value_heads=2, head_dim=16, rms_norm_eps=1e-5, tie_word_embeddings=False,
        max_position_embeddings=512, rope_theta=500000.0,
        rope_scaling=dict(rope_type="llama3", factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
                          original_max_position_embeddings=64),
        dtype="bfloat16", shard=None),
}
SEQUENCE_LENGTHS = [37, 64, 1, 90]
TEMPERATURE = 0.7
ENTROPY_COEF = 0.3


def make_config(spec):
    kwargs = {k: v for k, v in spec.items() if k not in ("model_type", "dtype", "shard", "rope_scaling", "rope_theta")}
    rope = {"rope_type": "default", "rope_theta": spec["rope_theta"]}
    if "rope_scaling" in spec:
        rope.update(spec["rope_scaling"])
    try:  # transformers >= 5
        config = AutoConfig.for_model(spec["model_type"], rope_parameters=rope, **kwargs)
    except TypeError:  # transformers 4
        scaling = spec.get("rope_scaling")
        config = AutoConfig.for_model(spec["model_type"], rope_theta=spec["rope_theta"], rope_scaling=scaling,
                                      **kwargs)
    config.attention_dropout = 0.0
    return config


def randomize(model, generator):
    """Weights with enough spread that logits are far from uniform (HF's std 0.02 init makes a weak test)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=generator, dtype=torch.float64))
            elif name.endswith(".bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=generator, dtype=torch.float64))
            elif "embed_tokens" in name:
                # 2/sqrt(hidden): with tied embeddings this is also the LM head, and it keeps logits in the range of
                # real models (|logit| ~ 10-20) rather than fully saturated softmaxes.
                p.copy_(2.0 / p.shape[1] ** 0.5 * torch.randn(p.shape, generator=generator, dtype=torch.float64))
            else:
                fan_in = p.shape[1]
                p.copy_(torch.randn(p.shape, generator=generator, dtype=torch.float64) / fan_in ** 0.5)


def load(path, dtype):
    try:
        return AutoModelForCausalLM.from_pretrained(path, dtype=dtype, attn_implementation="eager")
    except TypeError:
        return AutoModelForCausalLM.from_pretrained(path, torch_dtype=dtype, attn_implementation="eager")


def build(name, spec, out_dir, seed):
    generator = torch.Generator().manual_seed(seed)
    config = make_config(spec)
    model = AutoModelForCausalLM.from_config(config, attn_implementation="eager").to(torch.float64)
    randomize(model, generator)
    model_dir = os.path.join(out_dir, name)
    shutil.rmtree(model_dir, ignore_errors=True)
    save_dtype = torch.bfloat16 if spec["dtype"] == "bfloat16" else torch.float32
    kwargs = {"max_shard_size": spec["shard"]} if spec["shard"] else {}
    model.to(save_dtype).save_pretrained(model_dir, safe_serialization=True, **kwargs)

    # The reference computation runs on exactly what was saved, upcast to float64.
    model = load(model_dir, torch.float64)
    model.eval()
    vocab = config.vocab_size
    seqs = [torch.randint(0, vocab, (n,), generator=generator) for n in SEQUENCE_LENGTHS]
    total = sum(SEQUENCE_LENGTHS)
    targets = torch.randint(0, vocab, (total,), generator=generator)
    offset = 0
    for s in seqs:  # next-token targets inside each sequence; the last position keeps its random target
        targets[offset:offset + len(s) - 1] = s[1:]
        offset += len(s)
    advantages = torch.randn(total, generator=generator, dtype=torch.float64)

    model.zero_grad()
    logits = torch.cat([
        model(input_ids=s[None], position_ids=torch.arange(len(s))[None], use_cache=False).logits[0] for s in seqs])
    scaled = logits / TEMPERATURE
    log_probs_all = torch.log_softmax(scaled, dim=-1)
    logprobs = log_probs_all.gather(1, targets[:, None])[:, 0]
    entropy = -(log_probs_all.exp() * log_probs_all).sum(-1)
    loss = (advantages * logprobs).sum() + ENTROPY_COEF * entropy.sum()
    loss.backward()

    golden = {
        "input_ids": torch.cat(seqs).to(torch.int64),
        "position_ids": torch.cat([torch.arange(len(s)) for s in seqs]).to(torch.int64),
        "cu_seqlens": torch.tensor([0] + list(torch.tensor(SEQUENCE_LENGTHS).cumsum(0)), dtype=torch.int64),
        "targets": targets.to(torch.int64),
        "temperature": torch.tensor([TEMPERATURE], dtype=torch.float64),
        "entropy_coef": torch.tensor([ENTROPY_COEF], dtype=torch.float64),
        "advantages": advantages,
        "logits": logits.detach().to(torch.float32).contiguous(),
        "logprobs": logprobs.detach(),
        "entropy": entropy.detach(),
        "loss": loss.detach().reshape(1),
    }
    for pname, p in model.named_parameters():
        golden["grad." + pname] = p.grad.detach().to(torch.float32).contiguous()
    # Yardstick: how far PyTorch's own fp32 forward lands from the float64 reference on the same weights.
    model32 = load(model_dir, torch.float32)
    with torch.no_grad():
        logits32 = torch.cat([
            model32(input_ids=s[None], position_ids=torch.arange(len(s))[None], use_cache=False).logits[0]
            for s in seqs]).to(torch.float64)
    logprobs32 = torch.log_softmax(logits32 / TEMPERATURE, dim=-1).gather(1, targets[:, None])[:, 0]
    torch_fp32_logits_rel = ((logits32 - logits).norm() / logits.norm()).item()
    torch_fp32_logprob_abs = (logprobs32 - logprobs).abs().max().item()
    metadata = {"torch": torch.__version__, "transformers": transformers.__version__, "seed": str(seed),
                "loss": "sum(advantages * logprobs) + entropy_coef * sum(entropy)",
                "torch_fp32_logits_rel_err": f"{torch_fp32_logits_rel:.3e}",
                "torch_fp32_logprob_abs_err": f"{torch_fp32_logprob_abs:.3e}"}
    save_file({k: v.contiguous() for k, v in golden.items()}, os.path.join(model_dir, "golden.safetensors"),
              metadata=metadata)
    print(f"{name}: params {sum(p.numel() for p in model.parameters())}, tokens {total}, "
          f"loss {loss.item():.6f}, max |logit| {logits.abs().max().item():.1f}, "
          f"target logprob range [{logprobs.min().item():.2f}, {logprobs.max().item():.2f}], "
          f"torch fp32 vs fp64: logits rel {torch_fp32_logits_rel:.2e}, logprob abs {torch_fp32_logprob_abs:.2e}, "
          f"files {sorted(os.listdir(model_dir))}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden"))
    parser.add_argument("--seed", type=int, default=1234)
    args = parser.parse_args()
    torch.set_num_threads(min(8, os.cpu_count() or 1))
    os.makedirs(args.out, exist_ok=True)
    for i, (name, spec) in enumerate(MODELS.items()):
        build(name, spec, args.out, args.seed + i)
    with open(os.path.join(args.out, "VERSIONS.json"), "w") as f:
        json.dump({"torch": torch.__version__, "transformers": transformers.__version__}, f, indent=2)


if __name__ == "__main__":
    main()
