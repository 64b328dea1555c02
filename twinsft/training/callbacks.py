"""Trainer callbacks: a progress line per logged step (with ETA), and metrics for an experiment tracker."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping

from transformers import TrainerCallback

from twinsft.progress import format_duration

log = logging.getLogger("twinsft.progress")


class Throughput:
    """Tokens per second since the previous call, from the trainer's running token count."""

    def __init__(self) -> None:
        self._last: tuple[float, int] | None = None

    def update(self, tokens_seen: int) -> float | None:
        now = time.perf_counter()
        last, self._last = self._last, (now, tokens_seen)
        if last is None or now <= last[0]:
            return None
        return (tokens_seen - last[1]) / (now - last[0])


class ProgressCallback(TrainerCallback):
    """`step 12/90  loss 1.2345  lr 2.0e-04  312 tok/s  ETA 4m05s`, at every `logging_steps`.

    ZenML keeps the step's log with the run, so the dashboard shows these lines too.
    """

    def __init__(self) -> None:
        self.throughput = Throughput()
        self.started = 0.0
        self.first_step = 0

    def on_train_begin(self, args, state, control, **kwargs):
        self.started = time.perf_counter()
        self.first_step = state.global_step
        self.throughput.update(state.num_input_tokens_seen or 0)
        log.info("training: %d steps", state.max_steps)

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        if "loss" not in logs or not self.started:
            if "eval_loss" in logs:
                where = f"step {state.global_step}/{state.max_steps}  " if state.max_steps else ""
                log.info("%seval loss %.4f", where, logs["eval_loss"])
            return
        done = state.global_step - self.first_step
        elapsed = time.perf_counter() - self.started
        eta = elapsed / done * (state.max_steps - state.global_step) if done > 0 else float("nan")
        rate = self.throughput.update(state.num_input_tokens_seen or 0)
        parts = [f"step {state.global_step}/{state.max_steps}", f"loss {logs['loss']:.4f}"]
        if "learning_rate" in logs:
            parts.append(f"lr {logs['learning_rate']:.1e}")
        if rate is not None:
            parts.append(f"{rate:,.0f} tok/s")
        parts.append(f"ETA {format_duration(eta)}")
        log.info("  ".join(parts))


class MetricsCallback(TrainerCallback):
    """Every trainer log (loss, eval_loss, learning_rate, grad_norm, ...) plus tokens/s, to `sink`."""

    def __init__(self, sink: Callable[[Mapping[str, float], int], None]) -> None:
        self.sink = sink
        self.throughput = Throughput()

    def on_train_begin(self, args, state, control, **kwargs):
        self.throughput.update(state.num_input_tokens_seen or 0)

    def on_log(self, args, state, control, logs=None, **kwargs):
        metrics = {k: float(v) for k, v in (logs or {}).items() if isinstance(v, (int, float))}
        if "loss" in metrics:
            rate = self.throughput.update(state.num_input_tokens_seen or 0)
            if rate is not None:
                metrics["tokens_per_s"] = rate
        self.sink(metrics, state.global_step)
