"""How a step is timed: from one optimizer step's end to the next, the GPU synchronised there, with one more
step recorded by torch.profiler when asked."""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Any


def sync_gpu() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


class StepTimer:
    """Wall time and tokens from each optimizer step's end to the next, synchronised with the GPU there.

    `profile_dir`: record the step after the last measured one with torch.profiler (not timed).
    """

    def __init__(self, measured_until: int, profile_dir: Path | None = None, name: str = "") -> None:
        self.marks: list[tuple[float, int]] = []
        self.measured_until, self.profile_dir, self.name = measured_until, profile_dir, name
        self.profiler: Any = None
        self.trace: Path | None = None

    def steps(self, warmup: int) -> list[tuple[float, int]]:
        marks = self.marks[max(warmup - 1, 0): self.measured_until]
        return [(t1 - t0, n1 - n0) for (t0, n0), (t1, n1) in itertools.pairwise(marks)]

    def mark(self, tokens: int) -> None:
        sync_gpu()
        if self.profiler is not None:
            self.profiler.stop()
            self.trace = save_trace(self.profiler, self.profile_dir, self.name)
            self.profiler = None
        self.marks.append((time.perf_counter(), tokens))
        if self.profile_dir and len(self.marks) == self.measured_until:
            self.profiler = start_profiler()

    def callback(self) -> Any:
        from transformers import TrainerCallback

        timer = self

        class _Timer(TrainerCallback):
            def on_step_end(self, args, state, control, **kw):
                timer.mark(int(state.num_input_tokens_seen or 0))

        return _Timer()


def start_profiler() -> Any:
    import torch

    prof = torch.profiler.profile(
        activities=[torch.profiler.ProfilerActivity.CPU, torch.profiler.ProfilerActivity.CUDA], with_stack=True)
    prof.start()
    return prof


def save_trace(prof: Any, out_dir: Path | None, name: str) -> Path:
    import gzip
    import shutil

    assert out_dir is not None
    out_dir.mkdir(parents=True, exist_ok=True)
    raw = out_dir / f"{name}.json"
    prof.export_chrome_trace(str(raw))
    with open(raw, "rb") as src, gzip.open(f"{raw}.gz", "wb") as dst:
        shutil.copyfileobj(src, dst)
    raw.unlink()
    return Path(f"{raw}.gz")
