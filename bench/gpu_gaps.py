"""Where a profiled training step leaves the GPU idle, and which Python code it was waiting on.

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("trace", type=Path)
    parser.add_argument("--min-gap-ms", type=float, default=0.2)
    args = parser.parse_args()
    print(summarize(args.trace, args.min_gap_ms))


if __name__ == "__main__":
    main()
