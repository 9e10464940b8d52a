# Prints the wgmma_ss / wgmma_rs wrappers of wgmma.cuh (m64nNk16, bf16 operands, fp32 accumulators, N = 32, 64, 128):
# inline PTX needs one literal operand list per shape.
def wrap_list(items, indent, width=112):
    lines, cur = [], ""
    for it in items:
        piece = it + ", "
        if len(indent) + len(cur) + len(piece) > width:
            lines.append(cur.rstrip()); cur = ""
        cur += piece
    lines.append(cur.rstrip().rstrip(","))
    return lines
out = []
for n in (32, 64, 128):
    regs = n // 2; tiles = n // 8
    dl = [f"%{i}" for i in range(regs)]
    # operand list as string pieces
    dl_lines = wrap_list(dl, "      \"")
    dstr = "\n".join(f'      "{l} "' for l in dl_lines)
    cons = [f'"+f"(d[{i//4}][{i%4}])' for i in range(regs)]
    cons_lines = wrap_list(cons, "      ")
    cstr = "\n".join("      " + l for l in cons_lines)
    out.append(f"""__device__ __forceinline__ void wgmma_ss(float (&d)[{tiles}][4], uint64_t a, uint64_t b, int accumulate,
                                         WgmmaTrans<0, 0>) {{
  asm volatile(
      "{{\\n.reg .pred p;\\nsetp.ne.b32 p, %{regs+2}, 0;\\n"
      "wgmma.mma_async.sync.aligned.m64n{n}k16.f32.bf16.bf16 {{"
{dstr}
      "}}, %{regs}, %{regs+1}, p, 1, 1, 0, 0;\\n}}\\n"
      :
{cstr}
      : "l"(a), "l"(b), "r"(accumulate));
}}
__device__ __forceinline__ void wgmma_ss(float (&d)[{tiles}][4], uint64_t a, uint64_t b, int accumulate,
                                         WgmmaTrans<1, 1>) {{
  asm volatile(
      "{{\\n.reg .pred p;\\nsetp.ne.b32 p, %{regs+2}, 0;\\n"
      "wgmma.mma_async.sync.aligned.m64n{n}k16.f32.bf16.bf16 {{"
{dstr}
      "}}, %{regs}, %{regs+1}, p, 1, 1, 1, 1;\\n}}\\n"
      :
{cstr}
      : "l"(a), "l"(b), "r"(accumulate));
}}
__device__ __forceinline__ void wgmma_rs(float (&d)[{tiles}][4], const uint32_t (&a)[4], uint64_t b, int accumulate) {{
  asm volatile(
      "{{\\n.reg .pred p;\\nsetp.ne.b32 p, %{regs+5}, 0;\\n"
      "wgmma.mma_async.sync.aligned.m64n{n}k16.f32.bf16.bf16 {{"
{dstr}
      "}}, {{%{regs}, %{regs+1}, %{regs+2}, %{regs+3}}}, %{regs+4}, p, 1, 1, 1;\\n}}\\n"
      :
{cstr}
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(accumulate));
}}
""")
print("\n".join(out))
