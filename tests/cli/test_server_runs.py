"""`run.py rerun` / `run.py snapshot` without a server: --set parsing and checking, the step overrides, the
one-line errors. The server itself: tests/server/ (`pytest -m server`)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from twinsft.cli.server_runs import parse_set, rerun_command, step_overrides
from twinsft.config import RunConfig
from twinsft.errors import ConfigError

DATA = {"sources": [{"name": "twin", "path": "twin.jsonl"}]}


def fake_snapshot() -> SimpleNamespace:
    """A snapshot as the server returns it: the run's parameters, and each step's own parameters."""
    cfg = RunConfig.model_validate({"data": DATA}).model_dump(mode="json")
    step = lambda *sections: SimpleNamespace(config=SimpleNamespace(parameters={s: cfg[s] for s in sections}))  # noqa: E731
    return SimpleNamespace(
        name="tiny", pipeline_configuration=SimpleNamespace(parameters={"data": DATA, "promotion": None}),
        step_configurations={"split": step("split"), "train_sft": step("model", "lora", "training"),
                             "push_merged": step("model", "lora", "training", "export")})


def test_set_values_are_yaml_scalars_nested_by_their_dots():
    assert parse_set(["training.learning_rate=2e-4", "training.max_steps=3", "lora.r=8"]) == {
        "training": {"learning_rate": 2e-4, "max_steps": 3}, "lora": {"r": 8}}


@pytest.mark.parametrize(("item", "expected"), [
    ("training.learning_rate", "--set 'training.learning_rate': expected SECTION.KEY=VALUE"),
    ("learning_rate=1", "--set 'learning_rate=1': expected SECTION.KEY=VALUE"),
    ("model.name=x", "--set model.name: a rerun changes only lora, split, training"),
    ("data.sources=[]", "'data' is fixed in the snapshot"),
])
def test_a_bad_set_item_is_one_line(item, expected):
    with pytest.raises(ConfigError, match=expected.replace("[", r"\[").replace(".", r"\.")):
        parse_set([item])


def test_a_changed_section_goes_to_every_step_that_takes_it():
    steps = step_overrides(fake_snapshot(), {"training": {"max_steps": 3}})
    assert set(steps) == {"train_sft", "push_merged"}
    for step in steps.values():
        assert set(step["parameters"]) == {"training"}
        training = step["parameters"]["training"]
        assert training["max_steps"] == 3 and training["learning_rate"] == RunConfig.model_fields[
            "training"].default_factory().learning_rate  # the rest as in the snapshot


def test_a_misspelt_set_key_is_refused_with_run_pys_line():
    with pytest.raises(ConfigError) as caught:
        step_overrides(fake_snapshot(), {"training": {"learnign_rate": 1e-4}})
    assert str(caught.value) == "--set: parameters.training.learnign_rate: unknown key; remove it or check its spelling"


def test_rerun_without_a_server_is_one_line_and_exit_2(capsys):
    assert rerun_command(["tiny"]) == 2  # the session's ZenML store is a local one
    err = capsys.readouterr().err
    assert err.startswith("error: no ZenML server: this client uses a local store") and err.count("\n") == 1
