"""Progress lines: durations, per-source progress, generated tokens."""

from __future__ import annotations

import logging

from twinsft.progress import TokenProgress, each, format_duration


def test_format_duration():
    assert [format_duration(s) for s in (4.2, 65, 3720, float("nan"))] == ["4s", "1m05s", "1h02m", "?"]


def test_each_logs_per_source_progress(caplog):
    caplog.set_level(logging.INFO, logger="twinsft.progress")
    assert list(each(["twin", "general"], "data source")) == ["twin", "general"]
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == "data source 1/2 'twin': loading" and lines[-1].startswith("data source 2/2 'general': done")


def test_token_progress_counts_new_tokens_only(caplog):
    import torch

    caplog.set_level(logging.INFO, logger="twinsft.progress")
    streamer = TokenProgress(max_new_tokens=8, every=2)
    streamer.put(torch.tensor([[5, 6, 7, 8, 9]]))  # the prompt
    for token in (1, 2, 3):
        streamer.put(torch.tensor([token]))
    streamer.end()
    assert streamer.count == 3
    assert [r.getMessage().split(",")[0] for r in caplog.records] == [
        "generating 2/8 new tokens", "generated 3/8 new tokens"]
