"""Where a profiled training step leaves the GPU idle, and which Python code it was waiting on; and where its
GPU time goes, by kernel family and by kernel.

    python -m bench.gpu_gaps TRACE.json[.gz] [--min-gap-ms 0.2]

Reads a torch.profiler Chrome trace recorded with `with_stack=True`. GPU time is the union of
kernels, copies and memsets; an idle gap ends when the next one starts. Each gap is charged to
the host code that ran while the GPU waited: the innermost frames from our code or the libraries
we call (transformers, trl, peft, unsloth, accelerate, bitsandbytes) that cover the gap's middle.
A `.item()` or `.tolist()` that drains the queue shows up as a gap right after the sync returns.
"""

from __future__ import annotations

import argparse
import bisect
import gzip
import itertools
import json
from collections import defaultdict
from pathlib import Path

GPU_CATS = {"kernel", "gpu_memcpy", "gpu_memset"}
OURS = ("twinsft/", "bench/", "transformers/", "trl/", "peft/", "unsloth", "accelerate/", "bitsandbytes/")


def load_events(path: Path) -> list[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as fh:
        data = json.load(fh)
    events = data["traceEvents"] if isinstance(data, dict) else data
    return [e for e in events if e.get("ph") == "X" and "dur" in e]


def busy_blocks(events: list[dict]) -> list[tuple[float, float]]:
    spans = sorted((e["ts"], e["ts"] + e["dur"]) for e in events if e.get("cat") in GPU_CATS)
    merged: list[list[float]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(s, e) for s, e in merged]


def _frame(name: str) -> str | None:
    """'…/site-packages/transformers/trainer.py(1859): _track_num_input_tokens' -> short form."""
    for marker in OURS:
        i = name.find(marker)
        if i >= 0:
            return name[i:]
    return None


def host_stack_at(python_events: list[dict], starts: list[float], t: float, depth: int = 3) -> str:
    """The innermost `depth` frames of our code or our libraries running at time t."""
    covering = []
    for e in python_events[: bisect.bisect_right(starts, t)]:
        if e["ts"] + e["dur"] >= t:
            frame = _frame(e["name"])
            if frame:
                covering.append((e["ts"], frame))
    covering.sort()
    frames = [f for _, f in covering][-depth:]
    return " > ".join(frames) if frames else "(no Python frame of ours)"


def summarize(path: Path, min_gap_ms: float = 0.2, top: int = 12) -> str:
    events = load_events(path)
    blocks = busy_blocks(events)
    if not blocks:
        return f"{path}: no GPU activity in the trace"
    python_events = sorted((e for e in events if e.get("cat") == "python_function"), key=lambda e: e["ts"])
    starts = [e["ts"] for e in python_events]
    window = blocks[-1][1] - blocks[0][0]
    busy = sum(e - s for s, e in blocks)
    by_stack: dict[str, list[float]] = defaultdict(list)
    for (_, end), (nxt, _) in itertools.pairwise(blocks):
        gap = nxt - end
        if gap >= min_gap_ms * 1000:
            by_stack[host_stack_at(python_events, starts, end + gap / 2)].append(gap)
    idle = window - busy
    listed = sum(sum(g) for g in by_stack.values())
    out = [f"trace {path.name}: {window / 1000:.1f} ms from first to last GPU work, GPU busy {busy / window:.1%}, "
           f"idle {idle / 1000:.1f} ms ({sum(len(g) for g in by_stack.values())} gaps >= {min_gap_ms} ms hold "
           f"{listed / 1000:.1f} ms)",
           "| idle ms | gaps | host code running while the GPU waited (innermost last) |", "|---|---|---|"]
    for stack, gaps in sorted(by_stack.items(), key=lambda kv: -sum(kv[1]))[:top]:
        out.append(f"| {sum(gaps) / 1000:.1f} | {len(gaps)} | {stack} |")
    return "\n".join(out)


# Kernel families by name (cuBLAS/cuBLASLt, CUTLASS, Triton, flash attention): first match wins.
KERNEL_FAMILIES = (
    # cuBLASLt's nvjet kernels name FP8 operands "qq" (nvjet_sm90_qqtst_..._ovscale_TNT, seen on an H100).
    ("FP8 matmul", ("e4m3", "e5m2", "f8f8", "fp8", "_f8_", "qgmma", "nvjet_sm90_qq")),
    ("attention", ("flash", "fmha", "attention", "attn", "varlen")),
    ("bf16/fp32 matmul", ("gemm", "nvjet", "xmma", "cutlass", "matmul", "gemv", "splitk")),
    ("fused loss / optimizer", ("cross_entropy", "optimizer", "adam", "kOptimizer")),
    ("Triton fused (norms, rope, SwiGLU, quantize, casts)", ("triton",)),
    ("copies, casts, elementwise", ("elementwise", "copy", "cat", "fill", "memset", "memcpy", "reduce", "index")),
)


def family(name: str) -> str:
    low = name.lower()
    return next((fam for fam, keys in KERNEL_FAMILIES if any(k.lower() in low for k in keys)), "other")


def kernel_time(path: Path, top: int = 15) -> str:
    """GPU time by kernel family and the `top` kernels by total time, from a Chrome trace."""
    kernels = [e for e in load_events(path) if e.get("cat") in GPU_CATS]
    total = sum(e["dur"] for e in kernels) or 1.0
    by_family: dict[str, float] = defaultdict(float)
    by_name: dict[str, list[float]] = defaultdict(list)
    for e in kernels:
        by_family[family(e["name"])] += e["dur"]
        by_name[e["name"]].append(e["dur"])
    out = [f"GPU time by kernel family ({total / 1000:.1f} ms of kernels, copies and memsets):",
           "| family | ms | share |", "|---|---|---|"]
    for fam, us in sorted(by_family.items(), key=lambda kv: -kv[1]):
        out.append(f"| {fam} | {us / 1000:.1f} | {us / total:.1%} |")
    out += [f"top {top} kernels:", "| ms | calls | share | family | kernel |", "|---|---|---|---|---|"]
    for name, durs in sorted(by_name.items(), key=lambda kv: -sum(kv[1]))[:top]:
        out.append(f"| {sum(durs) / 1000:.1f} | {len(durs)} | {sum(durs) / total:.1%} | {family(name)} | "
                   f"{name[:110]} |")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("trace", type=Path)
    parser.add_argument("--min-gap-ms", type=float, default=0.2)
    args = parser.parse_args()
    print(summarize(args.trace, args.min_gap_ms))
    print(kernel_time(args.trace))


if __name__ == "__main__":
    main()
