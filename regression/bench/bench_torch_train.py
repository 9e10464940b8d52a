"""The PyTorch peer of bench_cuda_train: one training step of transformers' Qwen2 model (random init, bf16, SDPA
attention, torch.optim.AdamW fused) on one 4096-token sequence. Prints tokens/s, MFU over the bf16 GEMM rate measured
the same way (torch.matmul 8192^3) and peak memory, in the format bench_train.sh parses."""
import sys
import time

import torch
from transformers import Qwen2Config, Qwen2ForCausalLM

T = int(sys.argv[1]) if len(sys.argv) > 1 else 4096
STEPS = int(sys.argv[2]) if len(sys.argv) > 2 else 10

def gemm_tflops():
    n = 8192
    a = torch.full((n, n), 0.0115, dtype=torch.bfloat16, device="cuda")
    b = torch.full((n, n), 0.0115, dtype=torch.bfloat16, device="cuda")
    for _ in range(3):
        a @ b.t()
    torch.cuda.synchronize()
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(20):
        a @ b.t()
    stop.record()
    torch.cuda.synchronize()
    return 2.0 * n ** 3 * 20 / (start.elapsed_time(stop) * 1e-3) / 1e12

peak = gemm_tflops()
print(f"device: {torch.cuda.get_device_name(0)}, torch {torch.__version__}, measured bf16 GEMM {peak:.1f} TFLOP/s")
shapes = {"qwen2.5-0.5b": (896, 4864, 24, 14), "qwen2.5-1.5b": (1536, 8960, 28, 12)}
for name, (hidden, ffn, layers, heads) in shapes.items():
    torch.manual_seed(0)
    config = Qwen2Config(vocab_size=151936, hidden_size=hidden, intermediate_size=ffn, num_hidden_layers=layers,
                         num_attention_heads=heads, num_key_value_heads=2, tie_word_embeddings=True,
                         max_position_embeddings=32768, rope_theta=1e6, attn_implementation="sdpa")
    torch.cuda.reset_peak_memory_stats()
    model = Qwen2ForCausalLM(config).to(device="cuda", dtype=torch.bfloat16)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5, weight_decay=0.01, fused=True)
    ids = torch.randint(0, 151936, (1, T), device="cuda")
    labels = torch.randint(0, 151936, (1, T), device="cuda")
    def step():
        loss = model(input_ids=ids, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss
    for _ in range(2):
        step()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(STEPS):
        loss = step()
    torch.cuda.synchronize()
    sec = (time.perf_counter() - t0) / STEPS
    n_params = sum(p.numel() for p in model.parameters())
    flops = 6.0 * n_params * T + 6.0 * layers * T * T * heads * (hidden // heads)
    mem = torch.cuda.max_memory_allocated() / 2 ** 30
    print(f"torch {name}: {sec * 1e3:.1f} ms/step, {T / sec:.0f} tokens/s, {flops / sec / 1e12:.1f} TFLOP/s, "
          f"MFU {100 * flops / sec / 1e12 / peak:.1f}%, peak memory {mem:.2f} GiB (params {n_params / 1e9:.2f}B, "
          f"loss {loss.item():.4f})")
    del model, opt
    torch.cuda.empty_cache()
