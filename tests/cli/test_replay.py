"""--from-step bookkeeping: the steps before one, and which upstream sections a config changed."""

from __future__ import annotations

import pytest

from twinsft.cli.replay import changed_upstream, steps_before
from twinsft.config import RunConfig
from twinsft.errors import UserError


def test_from_step_names_and_changed_upstream():
    assert steps_before("train_sft") == ["load_datasets", "format_alpaca", "split"]
    assert steps_before("load_datasets") == []
    with pytest.raises(UserError, match="pick one of"):
        steps_before("train")
    base = {"data": {"sources": [{"name": "a", "path": "a.jsonl"}]}}
    cfg = RunConfig.model_validate(base)
    assert changed_upstream({**base, "lora": None}, cfg, "train_sft") == []
    assert changed_upstream({**base, "split": {"test_size": 0.5}}, cfg, "train_sft") == ["split"]
    assert changed_upstream({**base, "split": {"test_size": 0.5}}, cfg, "split") == []
    assert changed_upstream({"data": {"sources": []}, "bogus": 1}, cfg, "split") == ["data", "model"]
