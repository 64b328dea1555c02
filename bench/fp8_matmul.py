"""The frozen base's matrix products in a LoRA step, per projection of a Llama-3.1-8B layer: bf16 against FP8.

    python -m bench.fp8_matmul [--tokens 8192] [--out FILE.json]

For each of the seven projections (weight out x in) at M tokens (a micro-batch: 4 x 2048 = 8192):
- bf16: the forward Y = X W^T and the backward to the activations dX = dY W (a frozen base has no weight gradient);
- what Unsloth's `load_in_fp8=True` runs: torchao's Float8Tensor forward (per-row activation scales computed on the
  fly, then an FP8 product), and in the backward the weight dequantized to bf16 and a bf16 product;
- the pieces of a full FP8 path: the row quantization of X (eager and compiled), `torch._scaled_mm` alone, and an
  FP8 backward: the weight's row scales folded into dY (dX = (dY diag(s_w)) W_q), dY quantized per row, the
  product against a transposed FP8 copy of the weight (made once: 1 byte a weight);
- the error of each FP8 result against bf16 with the original weights, ||out - ref|| / ||ref||.
Totals are over the 32 layers: the time one micro-batch spends in the base's products under each scheme.
Timings are medians of triton.testing.do_bench. On a CPU only the numerics run (--check).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

PROJECTIONS = {"q_proj": (4096, 4096), "k_proj": (1024, 4096), "v_proj": (1024, 4096), "o_proj": (4096, 4096),
               "gate_proj": (14336, 4096), "up_proj": (14336, 4096), "down_proj": (4096, 14336)}  # (out, in)
LAYERS = 32
E4M3_MAX = 448.0


def quantize_rows(x: Any) -> tuple[Any, Any]:
    """Per-row e4m3 with an fp32 scale per row (as torchao's PerRow and Unsloth's _quantize_fp8_per_row)."""
    import torch

    scale = (x.abs().amax(dim=-1, keepdim=True).float() / E4M3_MAX).clamp(min=1e-12)
    return (x.float() / scale).clamp(-E4M3_MAX, E4M3_MAX).to(torch.float8_e4m3fn), scale


def fold_and_quantize(dy: Any, w_scale_row: Any) -> tuple[Any, Any]:
    """dY diag(s_w): the weight's per-output-row scales move onto dY's columns, then dY is quantized per row."""
    return quantize_rows(dy.float() * w_scale_row)


def fp8_forward(x: Any, w_q: Any, w_scale: Any, quantize: Any = quantize_rows, fast: bool = True) -> Any:
    """Y = X W^T with X and W in e4m3, one scale per row of X and per row (output) of W."""
    import torch

    x_q, x_s = quantize(x)
    return torch._scaled_mm(x_q, w_q.t(), scale_a=x_s, scale_b=w_scale.view(1, -1), out_dtype=torch.bfloat16,
                            use_fast_accum=fast)


def fp8_backward(dy: Any, w_q_t: Any, w_scale: Any, fold: Any = fold_and_quantize, fast: bool = False) -> Any:
    """dX = dY W = (dY diag(s_w)) W_q; `w_q_t` is W_q transposed and contiguous (in x out), the column-major
    operand _scaled_mm takes."""
    import torch

    g_q, g_s = fold(dy, w_scale.view(1, -1))
    ones = torch.ones(1, w_q_t.shape[0], dtype=torch.float32, device=dy.device)
    return torch._scaled_mm(g_q, w_q_t.t(), scale_a=g_s, scale_b=ones, out_dtype=torch.bfloat16, use_fast_accum=fast)


def emulated(x_q: Any, x_s: Any, w_q: Any, w_s: Any) -> Any:
    """What an FP8 product computes, in float64 (CPU check): (x_q * x_s) @ (w_q * w_s)^T."""
    import torch

    return (x_q.to(torch.float64) * x_s.double()) @ (w_q.to(torch.float64) * w_s.double()).t()


def rel(out: Any, ref: Any) -> float:
    return float((out.double() - ref.double()).norm() / ref.double().norm())


def check_on_cpu(m: int = 64, out_f: int = 96, in_f: int = 128) -> dict[str, float]:
    """The FP8 backward's algebra: folding W's row scales into dY gives dY W up to FP8 rounding."""
    import torch

    g = torch.Generator().manual_seed(0)
    w = torch.randn(out_f, in_f, generator=g) * 0.02
    dy = torch.randn(m, out_f, generator=g) * 1e-3
    w_q, w_s = quantize_rows(w)  # (out, in), (out, 1)
    g_q, g_s = fold_and_quantize(dy, w_s.view(1, -1))
    dx = (g_q.to(torch.float64) * g_s.double()) @ w_q.to(torch.float64)
    x = torch.randn(m, in_f, generator=g)
    x_q, x_s = quantize_rows(x)
    return {"backward_rel_err": rel(dx, dy.double() @ w.double()),
            "forward_rel_err": rel(emulated(x_q, x_s, w_q, w_s), x.double() @ w.double().t())}


def measure_projection(out_f: int, in_f: int, tokens: int, bench: Any, quant_c: Any, fold_c: Any) -> dict:
    """One projection's timings (ms) and errors: bf16, Unsloth's load_in_fp8 path, the pieces of a full FP8 path."""
    import torch
    from torchao.quantization import Float8DynamicActivationFloat8WeightConfig, PerRow, quantize_

    torch.manual_seed(0)
    w = (torch.randn(out_f, in_f, device="cuda") * 0.02).to(torch.bfloat16)
    x = torch.randn(tokens, in_f, device="cuda", dtype=torch.bfloat16)
    dy = (torch.randn(tokens, out_f, device="cuda") * 1e-3).to(torch.bfloat16)
    w_q, w_s = quantize_rows(w)
    w_q_t = w_q.t().contiguous()
    holder = torch.nn.Sequential(torch.nn.Linear(in_f, out_f, bias=False, device="cuda", dtype=torch.bfloat16))
    holder[0].weight.data.copy_(w)
    quantize_(holder, Float8DynamicActivationFloat8WeightConfig(granularity=PerRow()))
    ao = holder[0]
    x_q, x_s = quant_c(x)
    y_ref, dx_ref = x @ w.t(), dy @ w
    r: dict[str, float] = {
        "bf16_fwd_ms": bench(lambda: x @ w.t()),
        "bf16_bwd_ms": bench(lambda: dy @ w),
        "torchao_fwd_ms": bench(lambda: torch.nn.functional.linear(x, ao.weight)),
        "dequant_bwd_ms": bench(lambda: dy @ ao.weight.dequantize()),  # Unsloth's backward through the base
        "quant_eager_ms": bench(lambda: quantize_rows(x)),
        "quant_compiled_ms": bench(lambda: quant_c(x)),
        "scaled_mm_only_ms": bench(lambda: torch._scaled_mm(x_q, w_q.t(), scale_a=x_s, scale_b=w_s.view(1, -1),
                                                            out_dtype=torch.bfloat16, use_fast_accum=True)),
        "fp8_fwd_compiled_ms": bench(lambda: fp8_forward(x, w_q, w_s, quant_c)),
        "fp8_bwd_compiled_ms": bench(lambda: fp8_backward(dy, w_q_t, w_s, fold_c)),
        "fp8_bwd_fast_accum_ms": bench(lambda: fp8_backward(dy, w_q_t, w_s, fold_c, fast=True)),
        "transpose_w_ms": bench(lambda: w_q.t().contiguous()),
        "torchao_fwd_rel_err": rel(torch.nn.functional.linear(x, ao.weight), y_ref),
        "fp8_fwd_rel_err": rel(fp8_forward(x, w_q, w_s, quant_c), y_ref),
        "fp8_fwd_exact_accum_rel_err": rel(fp8_forward(x, w_q, w_s, quant_c, fast=False), y_ref),
        "dequant_bwd_rel_err": rel(dy @ ao.weight.dequantize(), dx_ref),
        "fp8_bwd_rel_err": rel(fp8_backward(dy, w_q_t, w_s, fold_c), dx_ref),
    }
    r.update(unsloth_kernels(w, x, dy, y_ref, dx_ref, bench))
    return r


def quantize_blocks(w: Any, block: int = 128) -> tuple[Any, Any]:
    """128 x 128 blocks of e4m3 with an fp32 scale each (DeepSeek-V3's and transformers' FineGrainedFP8 layout)."""
    import torch

    o, i = w.shape
    blocks = w.float().view(o // block, block, i // block, block)
    scale = (blocks.abs().amax(dim=(1, 3)) / E4M3_MAX).clamp(min=1e-12)
    q = (blocks / scale[:, None, :, None]).clamp(-E4M3_MAX, E4M3_MAX).to(torch.float8_e4m3fn)
    return q.view(o, i), scale


def unsloth_kernels(w: Any, x: Any, dy: Any, y_ref: Any, dx_ref: Any, bench: Any) -> dict[str, float]:
    """Unsloth's own FP8 kernels, the ones a pre-quantized FP8 checkpoint trains through (not load_in_fp8's
    torchao path): its compiled row-scaled linear (activation quantization + torch._scaled_mm) and its Triton
    128 x 128 block linear, each with its dequantize-then-bf16 backward."""
    try:
        from unsloth.kernels.fp8 import fp8_linear, weight_dequant

        w_q, w_s = quantize_rows(w)
        w_bq, w_bs = quantize_blocks(w)
        return {
            "unsloth_row_fwd_ms": bench(lambda: fp8_linear(x, w_q, w_s)),
            "unsloth_block_fwd_ms": bench(lambda: fp8_linear(x, w_bq, w_bs)),
            "unsloth_row_bwd_ms": bench(lambda: dy @ weight_dequant(w_q, w_s, dy.dtype)),
            "unsloth_block_bwd_ms": bench(lambda: dy @ weight_dequant(w_bq, w_bs, dy.dtype)),
            "unsloth_row_fwd_rel_err": rel(fp8_linear(x, w_q, w_s), y_ref),
            "unsloth_block_fwd_rel_err": rel(fp8_linear(x, w_bq, w_bs), y_ref),
            "unsloth_block_bwd_rel_err": rel(dy @ weight_dequant(w_bq, w_bs, dy.dtype), dx_ref),
        }
    except Exception as e:  # a kernel this stack lacks: say so, keep the rest of the table
        print(f"unsloth kernels failed: {e!r}"[:400], flush=True)
        return {}


def measure(tokens: int) -> dict[str, Any]:
    import torch
    import triton

    def bench(fn: Any) -> float:
        return float(triton.testing.do_bench(fn, warmup=5, rep=25, return_mode="median"))

    try:
        import unsloth  # noqa: F401  (its kernels, measured beside torchao's)
    except Exception as e:
        print(f"no unsloth: {e!r}"[:300], flush=True)
    quant_c = torch.compile(quantize_rows, dynamic=False)
    fold_c = torch.compile(fold_and_quantize, dynamic=False)
    rows: dict[str, dict[str, float]] = {}
    for name, (out_f, in_f) in PROJECTIONS.items():
        r = measure_projection(out_f, in_f, tokens, bench, quant_c, fold_c)
        rows[name] = {k: round(v, 5) for k, v in r.items()}
        print(name, json.dumps(rows[name]), flush=True)
    keys = [k for k in next(iter(rows.values())) if k.endswith("_ms") and all(k in r for r in rows.values())]
    totals = {k: round(LAYERS * sum(r[k] for r in rows.values()), 2) for k in keys}
    schemes = {
        "bf16 (forward + backward)": totals["bf16_fwd_ms"] + totals["bf16_bwd_ms"],
        "Unsloth load_in_fp8 (torchao forward, dequantized bf16 backward)":
            totals["torchao_fwd_ms"] + totals["dequant_bwd_ms"],
        "FP8 forward (compiled quantization) + dequantized backward":
            totals["fp8_fwd_compiled_ms"] + totals["dequant_bwd_ms"],
        "FP8 forward and FP8 backward (compiled quantization, stored transposed copy)":
            totals["fp8_fwd_compiled_ms"] + totals["fp8_bwd_compiled_ms"],
        "the FP8 products alone, no quantization (a floor)": 2 * totals["scaled_mm_only_ms"],
    }
    if "unsloth_row_fwd_ms" in totals:
        schemes["Unsloth's compiled row-scaled FP8 linear + dequantized backward (pre-quantized checkpoints)"] = (
            totals["unsloth_row_fwd_ms"] + totals["unsloth_row_bwd_ms"])
        schemes["Unsloth's Triton 128x128 block FP8 linear + dequantized backward (FineGrainedFP8)"] = (
            totals["unsloth_block_fwd_ms"] + totals["unsloth_block_bwd_ms"])
    return {"tokens": tokens, "card": torch.cuda.get_device_name(), "torch": torch.__version__,
            "per_projection": rows, "totals_ms_per_micro_batch": totals,
            "schemes_ms_per_micro_batch": {k: round(v, 1) for k, v in schemes.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=8192, help="rows of X: micro-batch x sequence length")
    parser.add_argument("--check", action="store_true", help="only the CPU check of the FP8 algebra")
    parser.add_argument("--out", help="write the result as JSON here")
    args = parser.parse_args()
    import torch

    result: dict[str, Any] = {"cpu_check": check_on_cpu()}
    print("cpu check", json.dumps(result["cpu_check"]), flush=True)
    if not args.check and torch.cuda.is_available():
        result.update(measure(args.tokens))
        bf16 = result["schemes_ms_per_micro_batch"]["bf16 (forward + backward)"]
        print(f"base products per micro-batch of {args.tokens} tokens, 32 layers, {result['card']}:")
        print("| scheme | ms | vs bf16 |\n|---|---|---|")
        for k, v in result["schemes_ms_per_micro_batch"].items():
            print(f"| {k} | {v:.1f} | {bf16 / v:.2f}x |")
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(result, fh, indent=1)


if __name__ == "__main__":
    main()
