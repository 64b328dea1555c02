"""smoke_generate refuses more held-out samples than the test split has before it loads the model (the
case preflight cannot count: Hub and artifact sources)."""

import importlib
from pathlib import Path

import pytest
from datasets import Dataset

from twinsft.config import GenerationSpec, ModelSpec
from twinsft.errors import ConfigError


def test_too_many_eval_samples_stop_the_step_before_the_model_loads(monkeypatch):
    module = importlib.import_module("twinsft.steps.smoke_generate")  # the package attribute is the step

    def no_load(*args, **kwargs):
        raise AssertionError("the model loaded")

    monkeypatch.setattr(module, "load_adapted", no_load)
    test = Dataset.from_list([{"text": f"row {i}"} for i in range(3)])
    with pytest.raises(ConfigError, match=r"generation.eval_samples 4 is more than the 3 rows of the test split"):
        module.smoke_generate.entrypoint(Path("adapter"), test, ModelSpec(), GenerationSpec(eval_samples=4))
