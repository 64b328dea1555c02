"""Progress for the long parts of a run: data sources as they load, generated tokens as they come.

Lines go to the `twinsft.progress` logger; run.py shows it on the console and ZenML stores it with
each step's logs. (Training progress is a Trainer callback: `twinsft.training.callbacks`.)
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

log = logging.getLogger("twinsft.progress")
T = TypeVar("T")


def format_duration(seconds: float) -> str:
    if math.isnan(seconds) or seconds < 0:
        return "?"
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def each(items: Iterable[T], what: str, label: Callable[[T], str] = str) -> Iterator[T]:
    """Yield items, logging `what i/n 'label' ... done in 1.2s` around each."""
    items = list(items)
    for i, item in enumerate(items, start=1):
        log.info("%s %d/%d '%s': loading", what, i, len(items), label(item))
        started = time.perf_counter()
        yield item
        log.info("%s %d/%d '%s': done in %s", what, i, len(items), label(item),
                 format_duration(time.perf_counter() - started))


class TokenProgress:
    """A `generate(streamer=...)` that logs the count of new tokens every `every` tokens and at the end."""

    def __init__(self, max_new_tokens: int, every: int = 32) -> None:
        self.max_new_tokens = max_new_tokens
        self.every = every
        self.count = 0
        self._prompt_seen = False
        self._started = 0.0

    def put(self, value: Any) -> None:
        if not self._prompt_seen:  # generate() first hands over the prompt
            self._prompt_seen = True
            self._started = time.perf_counter()
            return
        self.count += int(value.numel()) if hasattr(value, "numel") else len(value)
        if self.count % self.every == 0:
            self._report("generating")

    def end(self) -> None:
        self._report("generated")

    def _report(self, verb: str) -> None:
        elapsed = time.perf_counter() - self._started
        rate = f", {self.count / elapsed:.1f} tok/s" if elapsed > 0 else ""
        log.info("%s %d/%d new tokens%s", verb, self.count, self.max_new_tokens, rate)


def show_progress() -> None:
    """Show twinsft's INFO lines (progress, eval losses) when the root logger would drop them.

    ZenML stores whatever a step logs or prints with that step's run, whichever way it is shown.
    """
    logger = logging.getLogger("twinsft")
    logger.setLevel(logging.INFO)
    if logging.getLogger().getEffectiveLevel() > logging.INFO and not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.propagate = False
