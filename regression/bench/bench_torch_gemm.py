"""The same GEMMs as bench_cuda_gemm in PyTorch (torch.matmul, bf16), timed the same way, for the ratio."""
import torch

def time_ms(fn, reps=20):
    fn()
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(reps):
        fn()
    stop.record()
    torch.cuda.synchronize()
    return start.elapsed_time(stop) / reps

T = 4096
models = {"qwen2.5-0.5b": ([("qkv", 896, 1152), ("o", 896, 896), ("fc1", 896, 2 * 4864), ("fc2", 4864, 896),
                            ("lm_head", 896, 151936)], 24),
          "qwen2.5-1.5b": ([("qkv", 1536, 2048), ("o", 1536, 1536), ("fc1", 1536, 2 * 8960), ("fc2", 8960, 1536),
                            ("lm_head", 1536, 151936)], 28)}
print("device:", torch.cuda.get_device_name(0), "torch", torch.__version__)
for name, (linears, layers) in models.items():
    step_flops = step_ms = 0.0
    for lname, k, n in linears:
        x = torch.full((T, k), 0.0115, dtype=torch.bfloat16, device="cuda")
        w = torch.full((n, k), 0.0115, dtype=torch.bfloat16, device="cuda")
        dy = torch.full((T, n), 0.0115, dtype=torch.bfloat16, device="cuda")
        dw = torch.zeros((n, k), dtype=torch.float32, device="cuda")
        flops = 2.0 * T * k * n
        fwd = time_ms(lambda: x @ w.t())
        dgrad = time_ms(lambda: dy @ w)
        wgrad = time_ms(lambda: dw.add_((dy.t() @ x).float()))  # what autograd + fp32 main grads do
        tf = lambda ms: flops / (ms * 1e-3) / 1e12
        print(f"{name} {lname:<8} [{T} x {k} -> {n}]  fwd NT {tf(fwd):6.1f} TFLOP/s  dgrad NN {tf(dgrad):6.1f}  "
              f"wgrad TN->fp32 {tf(wgrad):6.1f}")
        count = 1 if lname == "lm_head" else layers
        step_flops += count * 3 * flops
        step_ms += count * (fwd + dgrad + wgrad)
    print(f"{name}: all linears of a training step (torch): {step_ms:.2f} ms, "
          f"{step_flops / (step_ms * 1e-3) / 1e12:.1f} TFLOP/s")
