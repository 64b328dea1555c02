"""Where a step runs, asked two ways: by `run.py` before the run (the active stack and the step operators the
configuration names) and by the running step itself (its stack and the environment ZenML's step launcher sets
for a step operator). Both must give the same answer on every stack, or preflight checks the wrong machine and
`push_merged` writes (or skips) the client's output folder wrongly."""

from __future__ import annotations

import pytest
from zenml.constants import ENV_ZENML_STEP_OPERATOR

from tests.isolated_process import register_stack
from twinsft.checks import placement
from twinsft.checks.stack import locate_steps
from twinsft.pipelines.steps_table import SFT_STEPS

GPU_STEPS = [step.name for step in SFT_STEPS if step.gpu]


@pytest.fixture(scope="module")
def stacks():
    """`local` (the default stack), `local` with a step operator, and `local_docker` (nothing runs on them)."""
    from zenml.client import Client
    from zenml.enums import StackComponentType as T

    client = Client()
    register_stack("placement-operator")
    client.create_stack_component("placement-docker", "local_docker", T.ORCHESTRATOR, {})
    client.create_stack("placement-docker",
                        components={T.ORCHESTRATOR: "placement-docker", T.ARTIFACT_STORE: "default"})
    yield client
    client.activate_stack("default")
    client.delete_stack("placement-docker")
    client.delete_stack_component("placement-docker", T.ORCHESTRATOR)


def step_operator_config(operator: str | None) -> dict:
    """A run configuration that puts every GPU step on `operator` (as the step-operator overlays do)."""
    return {"steps": {step: {"step_operator": operator} for step in GPU_STEPS}} if operator else {}


CASES = {  # stack -> (step operator named on the GPU steps, what each step should answer)
    "default": (None, dict.fromkeys((s.name for s in SFT_STEPS), True)),
    "placement-operator": ("placement-operator",
                           {s.name: not s.gpu for s in SFT_STEPS}),  # the GPU steps go to the operator
    "placement-docker": (None, dict.fromkeys((s.name for s in SFT_STEPS), False)),
}


@pytest.mark.parametrize("stack", sorted(CASES))
def test_the_client_and_the_running_step_agree_on_where_each_step_runs(stacks, stack, monkeypatch):
    operator, expected = CASES[stack]
    stacks.activate_stack(stack)
    raw = step_operator_config(operator)
    before_the_run = locate_steps(raw, "the config", SFT_STEPS)

    in_the_step = {}
    for step in SFT_STEPS:
        on_operator = step.name in before_the_run.step_operators
        # What ZenML's step launcher sets in the environment of a step it hands to a step operator.
        if on_operator:
            monkeypatch.setenv(ENV_ZENML_STEP_OPERATOR, "True")
        else:
            monkeypatch.delenv(ENV_ZENML_STEP_OPERATOR, raising=False)
        in_the_step[step.name] = placement.this_step_runs_on_client()

    assert {s.name: before_the_run.runs_on_client(s.name) for s in SFT_STEPS} == in_the_step == expected
    assert before_the_run.on_this_machine is (stack == "default")
    # Without the pipeline's steps, the stack still decides (a remote orchestrator never means this machine).
    assert locate_steps(raw, "the config", ()).on_this_machine is (stack != "placement-docker")
