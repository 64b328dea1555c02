"""A training process checks the machine's requirements and imports Unsloth first once, wherever it starts:
the `train_sft` step training in its own process, or `train_lora` called directly."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from types import SimpleNamespace

import pytest

from tests.helpers import training_spec
from twinsft import runtime
from twinsft.config import LoraSpec, ModelSpec

# Every module that could reach these functions in the one-process path, and the rank entry point beside it.
MODULES = ("twinsft.steps.train_sft", "twinsft.training.launch", "twinsft.training.fit", "twinsft.training.rank")


def count_calls(monkeypatch: pytest.MonkeyPatch, function: Callable) -> list[tuple]:
    """Calls of `function` from anywhere in twinsft: each module's own name for it is replaced, and runtime's,
    which an import inside a function would find."""
    calls: list[tuple] = []

    def counted(*args, **kwargs):
        calls.append(args)
        return function(*args, **kwargs)

    for name in MODULES:
        importlib.import_module(name)
    for module in [m for name, m in sys.modules.items() if name.split(".")[0] == "twinsft"]:
        if getattr(module, function.__name__, None) is function:
            monkeypatch.setattr(module, function.__name__, counted)
    return calls


@pytest.fixture
def calls(monkeypatch):
    return {f.__name__: count_calls(monkeypatch, f)
            for f in (runtime.check_training_requirements, runtime.import_unsloth_first)}


def test_the_train_sft_step_prepares_its_process_once(tmp_path, tiny_model_dir, text_splits, monkeypatch, calls):
    step = importlib.import_module("twinsft.steps.train_sft")  # the package's `train_sft` is the step itself
    monkeypatch.setattr(step, "get_step_context",
                        lambda: SimpleNamespace(pipeline_run=SimpleNamespace(name="probe"), model_version=None))
    monkeypatch.setattr(step, "log_metadata", lambda *args, **kwargs: None)
    training = training_spec(tmp_path, max_steps=2, num_processes=1)
    _, report = step.train_sft.entrypoint(*text_splits, ModelSpec(name=str(tiny_model_dir), max_seq_length=128),
                                          LoraSpec(r=4, alpha=8), training)
    assert report.steps == 2 and report.num_processes == 1  # it trained, in this process
    assert {name: len(made) for name, made in calls.items()} == {
        "check_training_requirements": 1, "import_unsloth_first": 1}


def test_train_lora_prepares_its_process_once(tmp_path, tiny_model_dir, text_splits, calls):
    from twinsft.training import train_lora

    report = train_lora(*text_splits, ModelSpec(name=str(tiny_model_dir), max_seq_length=128), LoraSpec(r=4, alpha=8),
                        training_spec(tmp_path, max_steps=2), tmp_path / "adapter")
    assert report.steps == 2
    assert {name: len(made) for name, made in calls.items()} == {
        "check_training_requirements": 1, "import_unsloth_first": 1}
