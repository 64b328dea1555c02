"""Where Comet comes from, what transformers reports to, and the parameters as flat keys."""

from __future__ import annotations

import types

import pytest

from twinsft import tracking
from twinsft.errors import ConfigError
from twinsft.tracking import choose_mode, flatten, hf_report_to


@pytest.mark.parametrize(
    ("report_to", "flavor", "env", "mode"),
    [
        ([], "comet", {"COMET_API_KEY": "k"}, "off"),  # the config decides; a stack tracker alone does not
        (["tensorboard"], None, {}, "off"),
        (["comet_ml"], "comet", {}, "stack"),  # the stack's tracker has its own credentials
        (["comet_ml"], "comet", {"COMET_MODE": "offline"}, "stack"),
        (["comet_ml"], "mlflow", {"COMET_MODE": "OFFLINE"}, "offline"),
        (["comet_ml"], None, {"COMET_MODE": "offline", "COMET_API_KEY": "k"}, "offline"),
        (["comet_ml"], None, {"COMET_API_KEY": "k"}, "online"),
    ],
)
def test_choose_mode(report_to, flavor, env, mode):
    assert choose_mode(report_to, flavor, env) == mode


def test_comet_asked_without_key_fails_clearly():
    with pytest.raises(ConfigError, match="COMET_API_KEY is not set"):
        choose_mode(["comet_ml"], None, {})


def test_transformers_gets_every_integration_but_comet():
    assert hf_report_to(["comet_ml"]) == "none"
    assert hf_report_to(["comet_ml", "tensorboard"]) == ["tensorboard"]


def test_flatten_nested_parameters():
    assert flatten({"lora": {"r": 4, "target_modules": ["q", "v"]}, "seed": 0}) == {
        "lora.r": 4, "lora.target_modules": "['q', 'v']", "seed": 0}


@pytest.mark.parametrize("report_to, tracker, expected", [
    (["comet_ml"], "comet-stack", {"experiment_tracker": "comet-stack"}),
    (["comet_ml"], None, None),  # the stack has no Comet tracker: the step as it is (Comet from the environment)
    ([], "comet-stack", None),  # the run does not report to Comet
])
def test_a_training_step_logs_to_the_stacks_comet_tracker_only_when_asked(monkeypatch, report_to, tracker,
                                                                           expected):
    class Step:
        options = None

        def with_options(self, **options):
            configured = Step()
            configured.options = options
            return configured

    found = types.SimpleNamespace(name=tracker) if tracker else None
    monkeypatch.setattr(tracking, "stack_comet_tracker", lambda: found)
    assert tracking.with_stack_comet(Step(), report_to).options == expected
