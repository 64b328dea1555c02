"""The training progress lines the callbacks log, from the real trainer on the tiny model."""

from __future__ import annotations

import logging

from tests.helpers import load_mix, tiny_parameters
from twinsft.config import LoraSpec, ModelSpec, RunConfig, TrainingSpec


def test_training_progress_lines(tmp_path, tiny_model_dir, data_files, caplog):
    """The real trainer on the tiny model: one line per logged step, with loss, tok/s and ETA."""
    from twinsft.data.formatting import render_alpaca, split_dataset
    from twinsft.training import train_lora

    caplog.set_level(logging.INFO, logger="twinsft.progress")
    params = tiny_parameters(tiny_model_dir, *data_files, tmp_path, logging_steps=1)
    cfg = RunConfig.model_validate(params)
    raw, _ = load_mix(cfg.data)
    train, test = split_dataset(render_alpaca(raw, eos_token="</s>"), test_size=0.2, seed=0)
    train_lora(train, test, ModelSpec(**params["model"]), LoraSpec(**params["lora"]),
               TrainingSpec(**params["training"]), tmp_path / "adapter")
    lines = [r.getMessage() for r in caplog.records]
    steps = [line for line in lines if line.startswith("step ") and "  loss " in line]
    assert [line.split()[1] for line in steps] == ["1/2", "2/2"]
    assert all("tok/s" in line and "ETA" in line for line in steps[1:])
    assert any(line.startswith("data source 1/2 'twin'") for line in lines)
