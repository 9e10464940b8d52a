"""The PyTorch peer of bench_cuda_decode: transformers' generate (static cache, bf16, SDPA, greedy) on Qwen2.5-0.5B-
and 1.5B-shaped models (random init). B prompts of `context` random tokens; decode tokens/s = B (steps - 1) over the
time of generate(steps) minus generate(1) (the prefill and first token). Eager (no torch.compile). Prints lines bench_decode.sh parses.
    python3 bench_torch_decode.py [context=1024] [steps=128] [batches=1,64,256] [shapes=0.5b,1.5b]"""
import sys
import time

import torch
from transformers import Qwen2Config, Qwen2ForCausalLM

context = int(sys.argv[1]) if len(sys.argv) > 1 else 1024
steps = int(sys.argv[2]) if len(sys.argv) > 2 else 128
batches = [int(b) for b in (sys.argv[3] if len(sys.argv) > 3 else "1,64,256").split(",")]
wanted = sys.argv[4] if len(sys.argv) > 4 else "0.5b,1.5b"
print(f"device: {torch.cuda.get_device_name(0)}, torch {torch.__version__}")
shapes = {"qwen2.5-0.5b": (896, 4864, 24, 14), "qwen2.5-1.5b": (1536, 8960, 28, 12)}
for name, (hidden, ffn, layers, heads) in shapes.items():
    if name.split("-")[1] not in wanted:
        continue
    torch.manual_seed(0)
    config = Qwen2Config(vocab_size=151936, hidden_size=hidden, intermediate_size=ffn, num_hidden_layers=layers,
                         num_attention_heads=heads, num_key_value_heads=2, tie_word_embeddings=True,
                         max_position_embeddings=32768, rope_theta=1e6, attn_implementation="sdpa")
    with torch.device("cuda"):
        model = Qwen2ForCausalLM(config).to(dtype=torch.bfloat16).eval()
    # generate() would torch.compile the static-cache forward and recompile for every cache length: minutes per
    # shape. The eager static-cache path is what we compare against.
    model.generation_config.disable_compile = True
    for B in batches:
        ids = torch.randint(0, 151936, (B, context), device="cuda")
        mask = torch.ones_like(ids)

        def gen(n):
            torch.cuda.synchronize()
            t = time.perf_counter()
            with torch.no_grad():
                model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=n, min_new_tokens=n,
                               do_sample=False, cache_implementation="static", pad_token_id=0)
            torch.cuda.synchronize()
            return time.perf_counter() - t

        gen(2)
        first = gen(1)
        total = gen(steps)
        tps = B * (steps - 1) / (total - first)
        print(f"torch {name} batch {B}: decode {tps:.0f} tokens/s ({1e3 * (total - first) / (steps - 1):.2f} ms/step)")
        torch.cuda.empty_cache()
    del model
    torch.cuda.empty_cache()
